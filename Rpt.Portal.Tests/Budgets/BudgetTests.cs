using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Rpt.Portal.Api;
using Rpt.Portal.Budgets;
using Rpt.Portal.Data;
using Rpt.Portal.Ledger;

namespace Rpt.Portal.Tests.Budgets;

/// <summary>Budgets below the account, as an admin sets them over the API and a job runner meets them.</summary>
[Trait("Kind", "Sqlite")]
public sealed class BudgetTests
{
    private static object Call(string id, DateTimeOffset at, string? user = null, string? project = null) =>
        new { id, occurred_at = at, model = "gpt-4o", input_tokens = 100_000, output_tokens = 0, user_id = user, project }; // 30 credits

    private static async Task<JsonNode> Json(HttpResponseMessage response, HttpStatusCode expected)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"{(int)response.StatusCode}: {body}");
        return body.Length == 0 ? new JsonObject() : JsonNode.Parse(body)!;
    }

    private static async Task Send(HttpClient client, params object[] events)
    {
        var answer = await Json(await client.PostAsJsonAsync("/v1/usage/events", new { events }), HttpStatusCode.OK);
        Assert.True((int)answer["accepted"]! == events.Length, answer.ToJsonString());
    }

    [Fact]
    public async Task AKeyThatHitsItsDailyHardCap_IsRefusedByTheQuotaCheckAndHolds_ButItsUsageIsStillBilled_AndYesterdayIsAnotherWindow()
    {
        await using var app = new ApiFactory();
        var (_, admin) = await app.TenantAsync("acme", "professional", ApiScopes.Admin | ApiScopes.Read);
        var keys = app.Get<ApiKeyService>();
        var batch = await keys.TryCreateAsync("acme", "batch jobs", ApiScopes.Ingest | ApiScopes.Read);
        var other = app.ClientWithKey((await keys.TryCreateAsync("acme", "chat", ApiScopes.Ingest | ApiScopes.Read)).Secret);
        var runner = app.ClientWithKey(batch.Secret);

        var budget = await Json(await admin.PostAsJsonAsync("/v1/budgets",
            new { scope = "api_key", api_key_id = batch.Key!.Id, credits = 100, window = "day", mode = "hard" }), HttpStatusCode.Created);
        Assert.Equal((100m, 0m, "hard"), ((decimal)budget["credits"]!, (decimal)budget["used"]!, (string?)budget["mode"]));
        Assert.Equal([50, 75, 90], budget["alert_at"]!.AsArray().Select(a => (int)a!));

        var now = app.Time.GetUtcNow();
        // Yesterday's 120 credits were yesterday's window: today starts empty.
        await Send(runner, Call("y1", now.AddDays(-1)), Call("y2", now.AddDays(-1)), Call("y3", now.AddDays(-1)), Call("y4", now.AddDays(-1)));
        Assert.True((bool)(await Json(await runner.PostAsJsonAsync("/v1/quota/check", new { estimated_credits = 100 }), HttpStatusCode.OK))["allowed"]!);
        await Send(runner, Call("a1", now), Call("a2", now), Call("a3", now)); // 90 of 100
        var refused = await Json(await runner.PostAsJsonAsync("/v1/quota/check", new { estimated_credits = 20 }), HttpStatusCode.OK);
        Assert.False((bool)refused["allowed"]!);
        Assert.Contains("hard budget of 100 credits a day for API key", (string?)refused["reason"]);
        Assert.Equal((90m, 10m), ((decimal)refused["budget"]!["used"]!, (decimal)refused["budget"]!["remaining"]!));
        // The refusal names the budget as the budgets' list does: its id, scope, window (today's) and credits.
        Assert.Equal(((string?)budget["id"], "api_key", batch.Key.Id.ToString("D"), "day", DateOnly.FromDateTime(now.UtcDateTime).ToString("yyyy-MM-dd"), 100m),
            ((string?)refused["budget"]!["id"], (string?)refused["budget"]!["scope"], (string?)refused["budget"]!["subject"], (string?)refused["budget"]!["window"],
             (string?)refused["budget"]!["window_start"], (decimal)refused["budget"]!["credits"]!));
        Assert.True((bool)(await Json(await runner.PostAsJsonAsync("/v1/quota/check", new { estimated_credits = 10 }), HttpStatusCode.OK))["allowed"]!);
        // The other key of the account is not capped by it.
        Assert.True((bool)(await Json(await other.PostAsJsonAsync("/v1/quota/check", new { estimated_credits = 20 }), HttpStatusCode.OK))["allowed"]!);

        // Usage that happened anyway is recorded and billed, never dropped: the budget is passed, the balance counts it.
        await Send(runner, Call("a4", now), Call("a5", now));
        var past = await Json(await runner.PostAsJsonAsync("/v1/quota/check", new { estimated_credits = 1 }), HttpStatusCode.OK);
        Assert.False((bool)past["allowed"]!);
        Assert.Equal((150m, 0m), ((decimal)past["budget"]!["used"]!, (decimal)past["budget"]!["remaining"]!));
        var hold = await Json(await runner.PostAsJsonAsync("/v1/credits/reservations", new { id = "big-job", credits = 5 }), HttpStatusCode.PaymentRequired);
        Assert.Equal("Budget reached", (string?)hold["title"]);
        // (yesterday lies before the account's first period, opened today: the balance is of this period)
        Assert.Equal(150L, (long)JsonNode.Parse(await admin.GetStringAsync("/v1/credits/balance"))!["credits"]!["consumed"]!);
        var listed = (await Json(await admin.GetAsync("/v1/budgets"), HttpStatusCode.OK)).AsArray().Single()!;
        Assert.Equal((150m, 0m, 150m), ((decimal)listed["used"]!, (decimal)listed["remaining"]!, (decimal)listed["share"]!));

        // Deleted, it caps nothing.
        await Json(await admin.DeleteAsync($"/v1/budgets/{budget["id"]}"), HttpStatusCode.NoContent);
        await Json(await admin.DeleteAsync($"/v1/budgets/{budget["id"]}"), HttpStatusCode.NotFound);
        Assert.Empty((await Json(await admin.GetAsync("/v1/budgets"), HttpStatusCode.OK)).AsArray());
        await app.FlushAsync();
        Assert.True((await app.Get<VerifyLedger>().ExecuteAsync("acme", deep: true)).Intact);
    }

    [Fact]
    public async Task AKeyBoundToAProject_StampsItsEvents_AndBudgetsForProjectsAndForEachEndUser_AreCountedApart()
    {
        await using var app = new ApiFactory();
        var (_, admin) = await app.TenantAsync("acme", "professional", ApiScopes.Admin | ApiScopes.Read);
        var bound = await app.Get<ApiKeyService>().TryCreateAsync("acme", "search service", ApiScopes.Ingest | ApiScopes.Read, project: "search");
        var search = app.ClientWithKey(bound.Secret);
        var (_, free) = await app.TenantAsync("acme-2", "professional");
        var now = app.Time.GetUtcNow();

        await Send(search, Call("s1", now, "u1"), Call("s2", now, "u1"), Call("s3", now, "u2", "search"));
        var wrong = await Json(await search.PostAsJsonAsync("/v1/usage/events", new { events = new[] { Call("s4", now, "u1", "billing") } }), HttpStatusCode.OK);
        Assert.Contains("does not match the project 'search' the API key is bound to", (string?)wrong["results"]![0]!["error"]);

        await Json(await admin.PostAsJsonAsync("/v1/budgets", new { scope = "user", user_id = "*", credits = 50, window = "day" }), HttpStatusCode.Created);
        var soft = await Json(await admin.PostAsJsonAsync("/v1/budgets", new { scope = "project", project = "search", credits = 60, window = "period", mode = "soft" }), HttpStatusCode.Created);
        Assert.Equal([100], soft["alert_at"]!.AsArray().Select(a => (int)a!));

        // u1 used 60 today: past each end user's 50; u2 (30) is not; a soft budget refuses nothing.
        var u1 = await Json(await search.PostAsJsonAsync("/v1/quota/check", new { estimated_credits = 1, user_id = "u1" }), HttpStatusCode.OK);
        Assert.False((bool)u1["allowed"]!);
        Assert.Equal(("user", "u1", 60m), ((string?)u1["budget"]!["scope"], (string?)u1["budget"]!["subject"], (decimal)u1["budget"]!["used"]!));
        Assert.True((bool)(await Json(await search.PostAsJsonAsync("/v1/quota/check", new { estimated_credits = 20, user_id = "u2" }), HttpStatusCode.OK))["allowed"]!);
        Assert.False((bool)(await Json(await search.PostAsJsonAsync("/v1/quota/check", new { estimated_credits = 21, user_id = "u2" }), HttpStatusCode.OK))["allowed"]!);
        await Json(await search.PostAsJsonAsync("/v1/quota/check", new { estimated_credits = 1, project = "billing" }), HttpStatusCode.BadRequest);

        var budgets = (await Json(await admin.GetAsync("/v1/budgets"), HttpStatusCode.OK)).AsArray();
        var each = budgets.Single(b => (string?)b!["user_id"] == "*")!;
        Assert.Equal(("u1", 60m, 1L), ((string?)each["top_user"], (decimal)each["used"]!, (long)each["users_at_limit"]!));
        Assert.Equal((90m, 150m), ((decimal)budgets.Single(b => (string?)b!["project"] == "search")!["used"]!, (decimal)budgets.Single(b => (string?)b!["project"] == "search")!["share"]!));

        // Reports: by project and by end user, most credits first; another tenant's usage is not there.
        await Send(free, Call("f1", now, "u1", "search"));
        var byProject = await Json(await admin.GetAsync("/v1/usage/groups?group_by=project"), HttpStatusCode.OK);
        Assert.Equal(("search", 3L, 90m), ((string?)byProject["rows"]![0]!["value"], (long)byProject["rows"]![0]!["calls"]!, (decimal)byProject["rows"]![0]!["credits"]!));
        var byUser = await Json(await admin.GetAsync("/v1/usage/groups?group_by=user&window=day"), HttpStatusCode.OK);
        Assert.Equal(["u1:60", "u2:30"], byUser["rows"]!.AsArray().Select(r => $"{r!["value"]}:{(decimal)r["credits"]!}"));
        var byKey = await Json(await admin.GetAsync("/v1/usage/groups?group_by=api_key"), HttpStatusCode.OK);
        Assert.Equal(bound.Key!.Id.ToString("D"), (string?)byKey["rows"]![0]!["value"]);

        // The audit records carry the project and the key; the chain verifies with them in the canonical form.
        await app.FlushAsync();
        Assert.True((await app.Get<VerifyLedger>().ExecuteAsync("acme", deep: true)).Intact);
    }

    [Fact]
    public async Task BadInput_IsRefusedNamingTheField_ADuplicateIs409_AndOnlyAdminKeysManageBudgets()
    {
        await using var app = new ApiFactory();
        var (_, admin) = await app.TenantAsync("acme", "professional", ApiScopes.Admin | ApiScopes.Read);
        var (_, reader) = await app.TenantAsync("acme-read", "professional");
        foreach (var (body, field) in new (object, string)[]
                 {
                     (new { scope = "team", credits = 1 }, "scope"), (new { scope = "api_key", api_key_id = "nope", credits = 1 }, "api_key_id"),
                     (new { scope = "api_key", api_key_id = Guid.NewGuid(), credits = 1 }, "api_key_id"), (new { scope = "project", credits = 1 }, "project"),
                     (new { scope = "project", project = new string('p', 129), credits = 1 }, "project"), (new { scope = "user", credits = 1 }, "user_id"),
                     (new { scope = "user", user_id = "u\u0000", credits = 1 }, "user_id"), (new { scope = "user", user_id = "u", credits = 0 }, "credits"),
                     (new { scope = "user", user_id = "u", credits = 1.0000001m }, "credits"), (new { scope = "user", user_id = "u", credits = 100_000_000_001L }, "credits"),
                     (new { scope = "user", user_id = "u", credits = 1, window = "week" }, "window"), (new { scope = "user", user_id = "u", credits = 1, mode = "strict" }, "mode"),
                     (new { scope = "user", user_id = "u", credits = 1, alert_at = new[] { 0 } }, "alert_at"),
                     (new { scope = "user", user_id = "u", credits = 1, alert_at = new[] { 50, 50 } }, "alert_at"),
                     (new { scope = "user", user_id = "u", credits = 1, alert_at = new[] { 10, 20, 30, 40, 50, 60 } }, "alert_at"),
                 })
        {
            var problem = await Json(await admin.PostAsJsonAsync("/v1/budgets", body), HttpStatusCode.BadRequest);
            Assert.True(problem["errors"]![field] is not null, $"{field}: {problem.ToJsonString()}");
        }
        await Json(await admin.PostAsJsonAsync("/v1/budgets", new { scope = "user", user_id = "u", credits = 1 }), HttpStatusCode.Created);
        var twice = await Json(await admin.PostAsJsonAsync("/v1/budgets", new { scope = "user", user_id = "u", credits = 2 }), HttpStatusCode.Conflict);
        Assert.Contains("exists already", (string?)twice["detail"]);
        Assert.Equal(HttpStatusCode.Forbidden, (await reader.GetAsync("/v1/budgets")).StatusCode);
        foreach (var (query, field) in new[] { ("group_by=team", "group_by"), ("group_by=user&window=week", "window"), ("group_by=user&day=2026-13-01", "day"), ("group_by=user&limit=1001", "limit") })
        {
            var problem = await Json(await admin.GetAsync($"/v1/usage/groups?{query}"), HttpStatusCode.BadRequest);
            Assert.True(problem["errors"]![field] is not null, $"{field}: {problem.ToJsonString()}");
        }
        await Json(await admin.PostAsJsonAsync("/v1/quota/check", new { estimated_credits = 1, user_id = new string('u', 129) }), HttpStatusCode.BadRequest);
        var empty = await Json(await reader.PostAsJsonAsync("/v1/usage/events", new { events = new[] { Call("e1", app.Time.GetUtcNow(), project: "") } }), HttpStatusCode.OK);
        Assert.Equal("project is empty; leave it out for usage outside any project", (string?)empty["results"]![0]!["error"]);
    }

    /// <summary>
    /// Every quota check and hold reads the hard budgets that name its key, project and end user. What it reads must not grow
    /// with the budgets the tenant has: a tenant with a budget for each of its projects checks as fast as one with none.
    /// The database's own account of the statement says how much it read: PostgreSQL's buffers (its statistics are stale
    /// here, as they are just after budgets are created, when its planner once chose to read every budget of the tenant);
    /// SQLite's plan, each budgets lookup by the tenant, scope and subject.
    /// </summary>
    [Fact]
    public async Task TheBudgetCheck_ReadsTheBudgetsThatNameTheRequest_NotEveryBudgetOfTheTenant()
    {
        await using var app = new ApiFactory();
        var (_, admin) = await app.TenantAsync("acme", "professional", ApiScopes.Admin | ApiScopes.Read);
        const int projects = 300;
        for (var p = 0; p < projects; p++)
            await Json(await admin.PostAsJsonAsync("/v1/budgets", new { scope = "project", project = $"p{p}", credits = 10, window = "period", mode = "hard" }),
                HttpStatusCode.Created);
        var key = await app.Get<ApiKeyService>().TryCreateAsync("acme", "runner", ApiScopes.Ingest | ApiScopes.Read);
        await Json(await admin.PostAsJsonAsync("/v1/budgets", new { scope = "api_key", api_key_id = key.Key!.Id, credits = 10, window = "day", mode = "hard" }),
            HttpStatusCode.Created);
        await Json(await admin.PostAsJsonAsync("/v1/budgets", new { scope = "user", user_id = "*", credits = 5, window = "day", mode = "hard" }), HttpStatusCode.Created);

        var now = app.Time.GetUtcNow();
        var lookup = new BudgetService.HardBudgetLookup("acme", key.Key.Id, "p17", "u1", now, DateOnly.FromDateTime(now.UtcDateTime));
        await using var connection = app.Get<PortalDatabase>().Open();
        await using (var read = connection.CreateCommand())
        {
            read.CommandText = lookup.Sql;
            lookup.Bind(read);
            await using var r = await read.ExecuteReaderAsync();
            lookup.Read(r);
        }
        // The three budgets that name the request, and none of the other 299 projects'.
        Assert.Equal(["api_key " + key.Key.Id.ToString("D"), "project p17", "user *"],
            lookup.Found.Select(b => $"{b.Scope} {b.Subject}").Order(StringComparer.Ordinal));

        await using var explain = connection.CreateCommand();
        explain.CommandText = (TestEngine.IsPostgres ? "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " : "EXPLAIN QUERY PLAN ") + lookup.Sql;
        lookup.Bind(explain);
        await using var plan = await explain.ExecuteReaderAsync();
        if (TestEngine.IsPostgres)
        {
            Assert.True(await plan.ReadAsync());
            var root = JsonNode.Parse(plan.GetString(0))![0]!["Plan"]!;
            var buffers = (int)root["Shared Hit Blocks"]! + (int)root["Shared Read Blocks"]!;
            // Four budget lookups and four usage rows by their keys: 17 pages. Reading every budget of the tenant was 65 here (1,007 with 1,009 budgets).
            Assert.True(buffers < 40, $"the budget check read {buffers} pages for {projects + 2} budgets:\n{root.ToJsonString()}");
        }
        else
        {
            var details = new List<string>();
            while (await plan.ReadAsync()) details.Add(plan.GetString(3));
            var budgets = details.Where(d => d.Contains(" b ", StringComparison.Ordinal) || d.EndsWith(" b", StringComparison.Ordinal)).ToList();
            Assert.NotEmpty(budgets);
            Assert.All(budgets, d => Assert.StartsWith("SEARCH b USING INDEX ix_budgets_subject (tenant_id=? AND scope=? AND subject=?", d));
        }
    }
}
