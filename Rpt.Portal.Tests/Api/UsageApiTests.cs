using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;
using Rpt.Portal.Api;

namespace Rpt.Portal.Tests.Api;

[Trait("Kind", "Http")]
public class UsageApiTests : IAsyncLifetime
{
    private readonly ApiFactory _app = new();
    public Task InitializeAsync() => Task.CompletedTask;
    public async Task DisposeAsync() => await _app.DisposeAsync();

    private object Event(string id, string model = "gpt-4o-mini", long input = 3200, long output = 740, string job = "job_1", string? tenant = null,
        string status = "succeeded") =>
        new { id, tenant_id = tenant, occurred_at = _app.Time.GetUtcNow(), provider = "openai", model, input_tokens = input, output_tokens = output,
              job_id = job, feature = "document_summary", status };

    private static async Task<JsonObject> Body(HttpResponseMessage r) => JsonNode.Parse(await r.Content.ReadAsStringAsync())!.AsObject();

    [Fact]
    public async Task PostEvents_Batch_AnswersItemByItem_AndEveryAcceptedEventIsDurable()
    {
        var (_, client) = await _app.TenantAsync("acme");
        var response = await client.PostAsJsonAsync("/v1/usage/events", new { events = new[] { Event("a"), Event("b", model: "gpt-9"), Event("a") } });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = await Body(response);
        Assert.Equal((1, 1, 1), ((int)body["accepted"]!, (int)body["duplicates"]!, (int)body["rejected"]!));
        var results = body["results"]!.AsArray();
        Assert.Equal(["accepted", "rejected", "duplicate"], results.Select(r => (string?)r!["status"]));
        Assert.Equal("unknown model 'gpt-9'", (string?)results[1]!["error"]);
        Assert.Null(results[0]!["error"]);

        // Read back by an outside connection to the file: committed before the answer.
        using var c = _app.OpenDb();
        Assert.Equal(1L, c.Command("SELECT COUNT(*) FROM usage_events WHERE tenant_id = 'acme'").ScalarLong());
    }

    [Fact]
    public async Task PostEvents_OneEventAlone_IsABatchOfOne()
    {
        var (_, client) = await _app.TenantAsync("acme");
        var body = await Body(await client.PostAsJsonAsync("/v1/usage/events", Event("solo")));
        Assert.Equal(1, (int)body["accepted"]!);
        Assert.Equal("solo", (string?)body["results"]![0]!["id"]);
    }

    [Fact]
    public async Task PostEvents_MoreThanTenThousand_Answers413AndAcceptsNothing()
    {
        var (_, client) = await _app.TenantAsync("acme");
        var events = Enumerable.Range(0, 10_001).Select(i => Event($"e{i}")).ToArray();
        var response = await client.PostAsJsonAsync("/v1/usage/events", new { events });
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Contains("10001 events; at most 10000", (string?)(await Body(response))["detail"]);
        var ok = await client.PostAsJsonAsync("/v1/usage/events", new { events = events[..10_000] });
        Assert.Equal(10_000, (int)(await Body(ok))["accepted"]!);
    }

    [Fact]
    public async Task PostEvents_BodyThatIsNotJson_Answers400NamingWhere()
    {
        var (_, client) = await _app.TenantAsync("acme");
        var response = await client.PostAsync("/v1/usage/events",
            new StringContent("""{"events":[{"id":"a","occurred_at":"2026-04-01T00:00:00Z","model":"gpt-4o-mini","input_tokens":12,}]""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = await Body(response);
        Assert.StartsWith("$.events[0]", (string?)problem["path"]);
        Assert.Contains("Nothing in this request was accepted", (string?)problem["detail"]);
    }

    [Theory]
    [InlineData("id")]
    [InlineData("occurred_at")]
    [InlineData("model")]
    [InlineData("feature")]
    public async Task PostEvents_InvalidUtf8InsideAnItem_RejectsThatItemNamingIt_AndKeepsTheOthers(string field)
    {
        var (_, client) = await _app.TenantAsync("acme");
        var good = System.Text.Json.JsonSerializer.Serialize(Event("good-1"));
        var bad = System.Text.Json.JsonSerializer.Serialize(Event("bad"));
        var original = field == "occurred_at" ? "\"occurred_at\":\"" : $"\"{field}\":\"";
        var badBytes = Encoding.UTF8.GetBytes(bad);
        var at = bad.IndexOf(original, StringComparison.Ordinal) + original.Length;
        var body = new List<byte>();
        body.AddRange(Encoding.UTF8.GetBytes("{\"events\":[" + good + ","));
        body.AddRange(badBytes[..at]);
        body.Add(0xff); // never valid in UTF-8
        body.AddRange(badBytes[at..]);
        body.AddRange(Encoding.UTF8.GetBytes("," + System.Text.Json.JsonSerializer.Serialize(Event("good-2")) + "]}"));
        var content = new ByteArrayContent(body.ToArray());
        content.Headers.ContentType = new("application/json");

        var response = await client.PostAsync("/v1/usage/events", content);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var answer = await Body(response);
        Assert.Equal((2, 1), ((int)answer["accepted"]!, (int)answer["rejected"]!));
        var results = answer["results"]!.AsArray();
        Assert.Equal(["accepted", "rejected", "accepted"], results.Select(r => (string?)r!["status"]));
        Assert.StartsWith("$.events[1]", (string?)results[1]!["error"]);
        Assert.Contains("UTF-8", (string?)results[1]!["error"]);
    }

    [Fact]
    public async Task PostEvents_InvalidUtf8OutsideAnyItem_Answers400NamingTheBody_ALoneEventIsRejectedAsAnItem()
    {
        var (_, client) = await _app.TenantAsync("acme");
        var body = Encoding.UTF8.GetBytes("{\"note\":\"x\",\"events\":[" + System.Text.Json.JsonSerializer.Serialize(Event("a")) + "]}");
        body[9] = 0xff; // inside the string of "note" ({"note":"x"…), outside every event
        var response = await client.PostAsync("/v1/usage/events", Json(body));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("UTF-8", (string?)(await Body(response))["detail"]);

        var single = Encoding.UTF8.GetBytes(System.Text.Json.JsonSerializer.Serialize(Event("solo")));
        single[8] = 0xfe; // inside the id of a lone event: a batch of one, rejected item by item
        response = await client.PostAsync("/v1/usage/events", Json(single));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var answer = await Body(response);
        Assert.Equal((0, 1), ((int)answer["accepted"]!, (int)answer["rejected"]!));
        Assert.StartsWith("$", (string?)answer["results"]![0]!["error"]);
        Assert.Contains("UTF-8", (string?)answer["results"]![0]!["error"]);
    }

    private static ByteArrayContent Json(byte[] bytes)
    {
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new("application/json");
        return content;
    }

    [Fact]
    public async Task PostEvents_ReadOnlyKey_Answers403()
    {
        var (_, client) = await _app.TenantAsync("acme", scopes: ApiScopes.Read);
        var response = await client.PostAsJsonAsync("/v1/usage/events", Event("a"));
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Contains("ingest or platform ingest scope", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task PostEvents_PlatformKey_NamesTheTenantPerEvent()
    {
        var (_, acme) = await _app.TenantAsync("acme");
        await _app.TenantAsync("globex");
        var platform = await _app.PlatformClientAsync();
        var body = await Body(await platform.PostAsJsonAsync("/v1/usage/events",
            new { events = new[] { Event("p1", tenant: "acme"), Event("p2", tenant: "globex"), Event("p3"), Event("p4", tenant: "initech") } }));
        Assert.Equal(["accepted", "accepted", "rejected", "rejected"], body["results"]!.AsArray().Select(r => (string?)r!["status"]));
        Assert.Equal("tenant_id is required with a platform key", (string?)body["results"]![2]!["error"]);
        Assert.Equal("unknown tenant 'initech'", (string?)body["results"]![3]!["error"]);
        var balance = JsonNode.Parse(await acme.GetStringAsync("/v1/credits/balance"))!;
        Assert.Equal(3940, (long)balance["tokens"]!["total"]!);
    }

    [Fact]
    public async Task PostEvents_TenantKeyNamingAnotherTenant_IsRejected()
    {
        var (_, acme) = await _app.TenantAsync("acme");
        await _app.TenantAsync("globex");
        var body = await Body(await acme.PostAsJsonAsync("/v1/usage/events", Event("x", tenant: "globex")));
        Assert.Equal("tenant_id 'globex' does not match the tenant of the API key", (string?)body["results"]![0]!["error"]);
    }

    [Fact]
    public async Task Job_ExplainsEveryCall_AndItsTotalsAddUpToWhatTheLedgerCharged()
    {
        var (_, client) = await _app.TenantAsync("acme");
        await client.PostAsJsonAsync("/v1/usage/events", new
        {
            events = new[]
            {
                Event("c1", "gpt-4o-mini", 3200, 740, "job_42"),
                Event("c2", "gpt-4o", 12_000, 900, "job_42"),
                Event("c3", "gpt-4o", 500, 0, "job_42", status: "failed"),
                Event("other", "gpt-4o", 1, 1, "job_7"),
            }
        });
        await _app.FlushAsync();
        var job = JsonNode.Parse(await client.GetStringAsync("/v1/usage/jobs/job_42"))!;
        var items = job["items"]!.AsArray();
        Assert.Equal(3, items.Count);
        var c2 = items.Single(i => (string?)i!["id"] == "c2")!;
        Assert.Equal(2.50m, (decimal)c2["price"]!["input_per_mtok"]!);
        Assert.Equal(0.039m, (decimal)c2["cost_usd"]!);          // (12,000 × 2.50 + 900 × 10.00) / 1e6
        Assert.Equal(0.0078m, (decimal)c2["overhead_usd"]!);     // 20 %
        Assert.Equal(4_680_000, (long)c2["micro_credits"]!);      // 0.039 × 1.2 / 0.01 = 4.68 credits
        Assert.Equal(0, (long)items.Single(i => (string?)i!["id"] == "c3")!["micro_credits"]!);
        Assert.Equal(110_880 + 4_680_000, (long)job["charged_micro_credits"]!);

        // The consumption entry that charged the job also charged job_7; the job's calls name it.
        var consumption = JsonNode.Parse(await client.GetStringAsync("/v1/credits/consumption"))!["items"]![0]!;
        Assert.Equal((long)consumption["seq"]!, (long)job["ledger_entries"]![0]!);
        var jobLink = consumption["jobs"]!.AsArray().Single(j => (string?)j!["job_id"] == "job_42")!;
        Assert.Equal((long)job["charged_micro_credits"]!, (long)jobLink["micro_credits"]!);
        Assert.Equal((long)consumption["micro_credits"]!, consumption["jobs"]!.AsArray().Sum(j => (long)j!["micro_credits"]!));
    }

    [Fact]
    public async Task Tokens_GroupsByJobModelAndFeature_AndRejectsAnUnknownGrouping()
    {
        var (_, client) = await _app.TenantAsync("acme");
        await client.PostAsJsonAsync("/v1/usage/events", new { events = new[] { Event("a", job: "j1"), Event("b", job: "j2"), Event("c", "gpt-4o", 100, 0, "j2") } });
        var byJob = JsonNode.Parse(await client.GetStringAsync("/v1/usage/tokens?group_by=job"))!;
        Assert.Equal(3940 * 2 + 100, (long)byJob["total_tokens"]!);
        Assert.Equal(["j2", "j1"], byJob["groups"]!["items"]!.AsArray().Select(g => (string?)g!["key"]));
        var byModel = JsonNode.Parse(await client.GetStringAsync("/v1/usage/tokens?group_by=model"))!;
        Assert.Equal(7880, (long)byModel["groups"]!["items"]![0]!["total_tokens"]!);
        var byFeature = JsonNode.Parse(await client.GetStringAsync("/v1/usage/tokens?group_by=feature&page_size=1"))!;
        Assert.Equal("document_summary", (string?)byFeature["groups"]!["items"]![0]!["key"]);
        var bad = await client.GetAsync("/v1/usage/tokens?group_by=user&from=yesterday");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        var errors = (await Body(bad))["errors"]!;
        Assert.Contains("not one of: job, model, feature", (string?)errors["group_by"]![0]);
        Assert.Contains("not an ISO 8601", (string?)errors["from"]![0]);
    }

    [Fact]
    public async Task RateLimit_PerKey_Answers429WithRetryAfter_AndLeavesOtherKeysAlone()
    {
        await using var app = new ApiFactory(new() { ["Rpt:Api:RequestsPerSecond"] = "1", ["Rpt:Api:Burst"] = "2" });
        var (_, limited) = await app.TenantAsync("acme");
        var (_, other) = await app.TenantAsync("globex");
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 3; i++) statuses.Add((await limited.GetAsync("/v1/credits/balance")).StatusCode);
        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK], statuses.Take(2));
        var throttled = await limited.GetAsync("/v1/credits/balance");
        Assert.Equal(HttpStatusCode.TooManyRequests, throttled.StatusCode);
        Assert.True(throttled.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1));
        Assert.Equal("application/problem+json", throttled.Content.Headers.ContentType?.MediaType);
        Assert.Equal(HttpStatusCode.OK, (await other.GetAsync("/v1/credits/balance")).StatusCode);
    }
}
