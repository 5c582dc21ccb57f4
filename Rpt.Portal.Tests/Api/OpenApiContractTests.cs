using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using Rpt.Portal.Api;

namespace Rpt.Portal.Tests.Api;

/// <summary>
/// The Credits API's document is a contract a generated client can trust: it passes the OpenAPI linter's recommended
/// rules without an error or a warning, and every /v1 operation's real answers, success and error, are what it says.
/// </summary>
[Trait("Kind", "Http")]
public sealed class OpenApiContractTests : IAsyncLifetime
{
    private readonly ApiFactory _app = new(new Dictionary<string, string?> { ["Rpt:Webhooks:AllowPrivateNetworks"] = "true" });
    public Task InitializeAsync() => Task.CompletedTask;
    public async Task DisposeAsync() => await _app.DisposeAsync();

    [Fact]
    public async Task TheDocument_PassesTheLinter_WithNoErrorAndNoWarning()
    {
        var document = await _app.CreateClient().GetStringAsync("/openapi/v1.json");
        var file = Path.Combine(_app.Directory, "openapi.json");
        await File.WriteAllTextAsync(file, document);
        var root = Browser.BrowserFixture.RepositoryRoot();
        var start = new ProcessStartInfo(Path.Combine(root, "tools", "api-lint", "node_modules", ".bin", "redocly"))
        {
            RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = _app.Directory,
        };
        foreach (var a in new[] { "lint", file, "--format", "stylish" }) start.ArgumentList.Add(a);
        start.Environment["REDOCLY_TELEMETRY"] = "off";
        start.Environment["REDOCLY_SUPPRESS_UPDATE_NOTICE"] = "true";
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await PortalProcess.WaitBoundedAsync(process, "redocly lint", output, error);
        var text = await output + await error;
        Assert.True(process.ExitCode == 0, text);
        Assert.Contains("using built in recommended configuration", text);
        Assert.Contains("Your API description is valid", text);
        Assert.DoesNotContain(" warning ", text);
        Assert.DoesNotContain(" error ", text);
    }

    [Fact]
    public async Task EveryOperation_AnswersSuccessAndErrorAsTheDocumentSays()
    {
        var contract = new OpenApiContract(await _app.CreateClient().GetStringAsync("/openapi/v1.json"));
        _app.Contract = contract;
        var (tenant, client) = await _app.TenantAsync("acme");
        var keys = _app.Get<ApiKeyService>();
        var admin = _app.ClientWithKey(await keys.CreateAsync(tenant, "admin", ApiScopes.Admin));
        var ingestOnly = _app.ClientWithKey(await keys.CreateAsync(tenant, "ingest", ApiScopes.Ingest));
        var anonymous = _app.ClientWithKey(null);
        var now = _app.Time.GetUtcNow();
        var day = now.ToString("yyyy-MM-dd");

        // Successes, in an order that gives each the data it reads.
        (await client.PostAsJsonAsync("/v1/usage/events", new
        {
            events = new object[]
            {
                new { id = "c1", occurred_at = now, model = "gpt-4o-mini", input_tokens = 3200, output_tokens = 740, job_id = "job_1", feature = "summary" },
                new { id = "c2", occurred_at = now, model = "gpt-9", input_tokens = 1, output_tokens = 1 },
            },
        })).EnsureSuccessStatusCode();
        await _app.FlushAsync();
        foreach (var url in new[]
        {
            "/v1/credits/balance", "/v1/credits/consumption", "/v1/credits/allocations?period=all", "/v1/credits/grants", "/v1/ledger/verify?deep=true",
            $"/v1/ledger/statement?period={day}", "/v1/ledger/statement/records?entry=2", "/v1/credits/conversion", "/v1/plans",
            "/v1/usage/tokens?group_by=model", "/v1/usage/daily", "/v1/usage/jobs/job_1",
        })
        {
            var ok = await client.GetAsync(url);
            Assert.True(ok.IsSuccessStatusCode, $"{url}: {(int)ok.StatusCode} {await ok.Content.ReadAsStringAsync()}");
        }
        (await client.PostAsJsonAsync("/v1/quota/check", new { estimated_credits = 10 })).EnsureSuccessStatusCode();
        Assert.Equal(HttpStatusCode.Created, (await ingestOnly.PostAsJsonAsync("/v1/credits/reservations", new { id = "hold-1", credits = 100, job_id = "job_1" })).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await ingestOnly.PostAsJsonAsync("/v1/credits/reservations", new { id = "hold-1", credits = 100, job_id = "job_1" })).StatusCode);
        (await ingestOnly.GetAsync("/v1/credits/reservations/hold-1")).EnsureSuccessStatusCode();
        (await ingestOnly.PatchAsJsonAsync("/v1/credits/reservations/hold-1", new { expires_in_seconds = 600 })).EnsureSuccessStatusCode();
        (await ingestOnly.PostAsync("/v1/credits/reservations/hold-1/release", null)).EnsureSuccessStatusCode();
        (await client.PostAsJsonAsync("/v1/quota/check", new { estimated_credits = 10, reservation_id = "hold-1" })).EnsureSuccessStatusCode();
        var rule = await admin.PostAsJsonAsync("/v1/alerts/rules", new { kind = "percent_consumed", threshold = 80, channels = new[] { "email" } });
        Assert.Equal(HttpStatusCode.Created, rule.StatusCode);
        var endpoint = await admin.PostAsJsonAsync("/v1/webhooks/endpoints", new { url = "http://127.0.0.1:9/hook" });
        Assert.Equal(HttpStatusCode.Created, endpoint.StatusCode);
        (await admin.GetAsync("/v1/alerts/rules")).EnsureSuccessStatusCode();
        (await admin.GetAsync("/v1/webhooks/endpoints")).EnsureSuccessStatusCode();
        (await admin.GetAsync("/v1/webhooks/deliveries")).EnsureSuccessStatusCode();
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/v1/alerts/rules/{(await rule.Content.ReadFromJsonAsync<IdOnly>())!.Id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/v1/webhooks/endpoints/{(await endpoint.Content.ReadFromJsonAsync<IdOnly>())!.Id}")).StatusCode);
        var budget = await admin.PostAsJsonAsync("/v1/budgets", new { scope = "user", user_id = "*", credits = 50, window = "day" });
        Assert.Equal(HttpStatusCode.Created, budget.StatusCode);
        (await admin.GetAsync("/v1/budgets")).EnsureSuccessStatusCode();
        (await client.GetAsync("/v1/usage/groups?group_by=user")).EnsureSuccessStatusCode();
        var budgetId = System.Text.Json.Nodes.JsonNode.Parse(await budget.Content.ReadAsStringAsync())!["id"]!.ToString();
        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/v1/budgets/{budgetId}")).StatusCode);

        // Errors: no key, a key without the scope, a parameter or a body at fault, something that is not there.
        await anonymous.GetAsync("/v1/credits/balance");
        await anonymous.GetAsync("/v1/credits/grants");
        await anonymous.GetAsync("/v1/ledger/verify");
        await anonymous.GetAsync("/v1/usage/jobs/job_1");
        await ingestOnly.GetAsync("/v1/credits/balance");
        await client.GetAsync("/v1/alerts/rules");
        await client.GetAsync("/v1/webhooks/endpoints");
        await client.GetAsync("/v1/webhooks/deliveries");
        await client.GetAsync("/v1/credits/consumption?days=0");
        await client.GetAsync("/v1/credits/allocations?period=last-year");
        await client.GetAsync("/v1/ledger/statement");
        await client.GetAsync("/v1/ledger/statement/records?entry=1");
        await client.GetAsync("/v1/ledger/statement/records?entry=99");
        await client.GetAsync("/v1/credits/conversion?at=yesterday");
        await client.GetAsync("/v1/usage/tokens?group_by=colour");
        await client.GetAsync("/v1/usage/daily?group_by=colour");
        await client.GetAsync("/v1/usage/jobs/no_such_job");
        await client.PostAsJsonAsync("/v1/quota/check", new { });
        await client.PostAsync("/v1/quota/check", new StringContent("{\"estimated_credits\": 1}", Encoding.UTF8, "text/plain"));
        await client.PostAsync("/v1/usage/events", new StringContent("{\"events\": [", Encoding.UTF8, "application/json"));
        await client.PostAsync("/v1/usage/events", new StringContent("{}", Encoding.UTF8, "text/csv"));
        await admin.PostAsJsonAsync("/v1/alerts/rules", new { kind = "weather", threshold = 80 });
        await admin.PostAsJsonAsync("/v1/webhooks/endpoints", new { url = "not a url" });
        await admin.DeleteAsync("/v1/alerts/rules/999999");
        await admin.DeleteAsync("/v1/webhooks/endpoints/999999");
        await anonymous.PostAsJsonAsync("/v1/credits/reservations", new { id = "x", credits = 1 });
        await ingestOnly.PostAsJsonAsync("/v1/credits/reservations", new { id = "hold-1", credits = 5, job_id = "job_1" });   // 409: the id names another hold
        await ingestOnly.PostAsJsonAsync("/v1/credits/reservations", new { id = "a b", credits = 5 });
        await ingestOnly.GetAsync("/v1/credits/reservations/no-such-hold");
        await ingestOnly.PostAsync("/v1/credits/reservations/no-such-hold/release", null);
        await ingestOnly.PatchAsJsonAsync("/v1/credits/reservations/hold-1", new { expires_in_seconds = 600 });                 // 409: released
        await ingestOnly.PatchAsJsonAsync("/v1/credits/reservations/no-such-hold", new { expires_in_seconds = 600 });
        await client.PostAsJsonAsync("/v1/quota/check", new { estimated_credits = 1, reservation_id = "no-such-hold" });
        await client.GetAsync("/v1/budgets");                                                                                  // 403: not an admin key
        await admin.PostAsJsonAsync("/v1/budgets", new { scope = "team", credits = 1 });
        await admin.DeleteAsync($"/v1/budgets/{Guid.NewGuid()}");
        await client.GetAsync("/v1/usage/groups?group_by=colour");

        Assert.True(contract.Violations.IsEmpty, string.Join("\n", contract.Violations));
        foreach (var operation in contract.Operations)
        {
            Assert.True(contract.Seen.TryGetValue(operation, out var codes), $"{operation} was never called");
            Assert.Contains(codes, c => c is >= 200 and < 300);
            if (operation != "GET /v1/plans") Assert.True(codes.Any(c => c is >= 400 and < 500), $"{operation}: no error was tried");
        }
    }

    /// <summary>
    /// The checker is not a formality: a body the document does not describe, and a status code it does not list, are
    /// both reported.
    /// </summary>
    [Fact]
    public async Task TheChecker_ReportsAnUndocumentedStatusAndABodyThatBreaksItsSchema()
    {
        var contract = new OpenApiContract(await _app.CreateClient().GetStringAsync("/openapi/v1.json"));
        Assert.Null(contract.Check("GET", "/v1/credits/grants", 200, "application/json", "{\"draw_down_order\":\"x\",\"items\":[]}"u8));
        Assert.Contains("does not match its schema", contract.Check("GET", "/v1/credits/grants", 200, "application/json", "{\"items\":7}"u8));
        Assert.Contains("answered 418, which the document does not list", contract.Check("GET", "/v1/credits/grants", 418, null, default));
        Assert.Contains("as text/html", contract.Check("GET", "/v1/credits/grants", 200, "text/html", "<p>hi</p>"u8));
    }

    private sealed record IdOnly(long Id);
}
