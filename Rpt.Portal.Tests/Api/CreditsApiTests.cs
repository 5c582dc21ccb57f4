using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Rpt.Portal.Api;
using Rpt.Portal.Ledger;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Tests.Api;

[Trait("Kind", "Http")]
public class CreditsApiTests : IAsyncLifetime
{
    private readonly ApiFactory _app = new();
    public Task InitializeAsync() => Task.CompletedTask;
    public async Task DisposeAsync() => await _app.DisposeAsync();

    private static object Event(string id, DateTimeOffset at, string model = "gpt-4o-mini", long input = 3200, long output = 740, string job = "job_1",
        string? tenant = null) =>
        new { id, tenant_id = tenant, occurred_at = at, model, input_tokens = input, output_tokens = output, job_id = job, feature = "document_summary" };

    private async Task<JsonObject> Json(HttpClient client, string url)
    {
        var response = await client.GetAsync(url);
        Assert.True(response.IsSuccessStatusCode, $"{url}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        return JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsObject();
    }

    [Fact]
    public async Task Balance_HasTheSeedShapeFieldForField()
    {
        var (_, client) = await _app.TenantAsync("acme");
        var now = _app.Time.GetUtcNow();
        await client.PostAsJsonAsync("/v1/usage/events", new { events = new[] { Event("a", now), Event("b", now, "gemini-1.5-flash", 1000, 100) } });

        var b = await Json(client, "/v1/credits/balance");
        Assert.Equal("professional", (string?)b["plan"]);
        var period = BillingPeriod.Containing(DateOnly.FromDateTime(now.UtcDateTime), now);
        Assert.Equal(period.Start.ToString("yyyy-MM-dd"), (string?)b["billing_period"]!["start"]);
        Assert.Equal(period.End.ToString("yyyy-MM-dd"), (string?)b["billing_period"]!["end"]);
        Assert.Equal(25_000, (long)b["credits"]!["allocated"]!);
        Assert.Equal(0, (long)b["credits"]!["consumed"]!); // 0.11088 + 0.0198 credits, floored
        Assert.Equal(25_000, (long)b["credits"]!["remaining"]!);
        Assert.False((bool)b["credits"]!["unlimited"]!);
        Assert.Equal(3940 + 1100, (long)b["tokens"]!["total"]!);
        Assert.Equal(3940, (long)b["tokens"]!["by_model"]!["gpt-4o-mini"]!);
        Assert.Equal(1100, (long)b["tokens"]!["by_model"]!["gemini-1.5-flash"]!);
    }

    [Fact]
    public async Task Balance_UnlimitedPlan_HasNullAllocatedAndRemaining()
    {
        var (_, client) = await _app.TenantAsync("bigco", "enterprise");
        var b = await Json(client, "/v1/credits/balance");
        Assert.True((bool)b["credits"]!["unlimited"]!);
        Assert.Null(b["credits"]!["allocated"]);
        Assert.Null(b["credits"]!["remaining"]);
    }

    [Fact]
    public async Task Endpoints_WithoutAValidKey_Answer401ProblemDetails()
    {
        var anonymous = _app.CreateClient();
        foreach (var url in new[] { "/v1/credits/balance", "/v1/credits/consumption", "/v1/credits/allocations", "/v1/usage/tokens", "/v1/usage/jobs/x", "/v1/ledger/verify" })
        {
            var response = await anonymous.GetAsync(url);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            Assert.Equal("Bearer", response.Headers.WwwAuthenticate.ToString());
        }
        var wrong = _app.ClientWithKey("rpt_not-a-key");
        var problem = JsonNode.Parse(await (await wrong.GetAsync("/v1/credits/balance")).Content.ReadAsStringAsync())!;
        Assert.Equal(401, (int)problem["status"]!);
        Assert.Contains("not valid", (string?)problem["detail"]);
    }

    [Fact]
    public async Task RevokedKey_Answers401_AndLastUseIsRecorded()
    {
        await _app.TenantAsync("acme");
        var keys = _app.Get<ApiKeyService>();
        var secret = await keys.CreateAsync("acme", "to revoke", ApiScopes.Read);
        var client = _app.ClientWithKey(secret);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/credits/balance")).StatusCode);
        // Last use is recorded in the background, off the request path.
        ApiKey? key = null;
        for (var i = 0; i < 100 && key?.LastUsedAt is null; i++)
        {
            if (i > 0) await Task.Delay(50);
            key = (await keys.ListAsync("acme")).Single(k => k.Hash == ApiKey.HashOf(secret));
        }
        Assert.NotNull(key!.LastUsedAt);
        Assert.True(await keys.RevokeAsync("acme", key.Id));
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/v1/credits/balance")).StatusCode);
    }

    [Fact]
    public async Task ReadEndpoints_WithAPlatformIngestKey_Answer403()
    {
        var platform = await _app.PlatformClientAsync();
        var response = await platform.GetAsync("/v1/credits/balance");
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Contains("read scope", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Consumption_IsPagedNewestFirst_LinksToJobs_AndValidatesItsParameters()
    {
        var (_, client) = await _app.TenantAsync("acme");
        for (var i = 0; i < 3; i++)
        {
            await client.PostAsJsonAsync("/v1/usage/events", new { events = new[] { Event($"e{i}", _app.Time.GetUtcNow(), job: $"job_{i}") } });
            await _app.FlushAsync();
        }
        var page1 = await Json(client, "/v1/credits/consumption?days=30&page=1&page_size=2");
        Assert.Null(page1["total"]); // not counted: a list of millions is paged, not counted
        Assert.True((bool)page1["has_more"]!);
        var next = await Json(client, $"/v1/credits/consumption?days=30&page_size=2&cursor={(string?)page1["next_cursor"]}");
        Assert.Single(next["items"]!.AsArray());
        Assert.False((bool)next["has_more"]!);
        Assert.Equal(400, (int)(await client.GetAsync("/v1/credits/consumption?cursor=abc")).StatusCode);
        var items = page1["items"]!.AsArray();
        Assert.Equal(2, items.Count);
        Assert.True((long)items[0]!["seq"]! > (long)items[1]!["seq"]!);
        Assert.Equal(110_880, (long)items[0]!["micro_credits"]!);
        Assert.Equal("/v1/usage/jobs/job_2", (string?)items[0]!["jobs"]![0]!["href"]);
        var page2 = await Json(client, "/v1/credits/consumption?days=30&page=2&page_size=2");
        Assert.False((bool)page2["has_more"]!);

        var bad = await client.GetAsync("/v1/credits/consumption?page_size=500&days=0");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        var problem = JsonNode.Parse(await bad.Content.ReadAsStringAsync())!;
        Assert.Equal("must be between 1 and 200 (got 500).", (string?)problem["errors"]!["page_size"]![0]);
        Assert.Equal("must be between 1 and 3660 (got 0).", (string?)problem["errors"]!["days"]![0]);
    }

    [Fact]
    public async Task Allocations_ByPeriod_WithSourceAndAmount()
    {
        var (tenant, client) = await _app.TenantAsync("acme", "starter");
        await _app.Get<GrantCredits>().ExecuteAsync(tenant, EntrySource.TopUp, 1_000, "stripe:evt_1", "Top-up");
        var current = await Json(client, "/v1/credits/allocations?period=current");
        Assert.Equal(6_000, (long)current["total_credits"]!);
        Assert.Equal(["top_up", "signup"], current["items"]!.AsArray().Select(i => (string?)i!["source"]));
        Assert.Empty((await Json(client, "/v1/credits/allocations?period=previous"))["items"]!.AsArray());
        Assert.Equal(2, (await Json(client, "/v1/credits/allocations?period=all"))["items"]!.AsArray().Count);
        var bad = await client.GetAsync("/v1/credits/allocations?period=last-year");
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("not one of: current, previous, all", await bad.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Plans_ListsTheCatalogWithEntitlements_WithoutAKey()
    {
        var plans = JsonNode.Parse(await _app.CreateClient().GetStringAsync("/v1/plans"))!.AsArray();
        Assert.Equal(["free", "starter", "professional", "business", "enterprise"], plans.Select(p => (string?)p!["code"]));
        var pro = plans[2]!;
        Assert.Equal(25_000, (long)pro["credits_per_month"]!);
        Assert.Equal(99m, (decimal)pro["price_usd_per_month"]!);
        Assert.Equal("overage", (string?)pro["overage_policy"]);
        Assert.Equal(0.012m, (decimal)pro["overage_usd_per_credit"]!);
        Assert.Contains(pro["entitlements"]!.AsArray(), e => (string?)e!["key"] == "webhook_alerts" && (string?)e["kind"] == "boolean" && (string?)e["value"] == "true");
        Assert.True((bool)plans[4]!["unlimited"]!);
    }

    [Fact]
    public async Task Conversion_PublishesTheRuleAndThePricesInEffect()
    {
        var client = _app.CreateClient();
        var c = JsonNode.Parse(await client.GetStringAsync("/v1/credits/conversion"))!;
        Assert.Equal(0.01m, (decimal)c["usd_per_credit"]!);
        Assert.Equal(0.20m, (decimal)c["overhead"]!);
        var mini = c["prices"]!.AsArray().Single(p => (string?)p!["model"] == "gpt-4o-mini")!;
        Assert.Equal(0.15m, (decimal)mini["input_per_mtok"]!);
        Assert.Equal(0.60m, (decimal)mini["output_per_mtok"]!);
        Assert.Equal(0.075m, (decimal)mini["cached_input_per_mtok"]!);
        Assert.Null(mini["unit_price"]);
        Assert.Null(mini["meter"]);
        Assert.Equal("USD", (string?)mini["currency"]);
        var image = c["prices"]!.AsArray().First(p => (string?)p!["meter"] == "image_generation")!;
        Assert.NotNull(image["unit_price"]);
        Assert.Empty(JsonNode.Parse(await client.GetStringAsync("/v1/credits/conversion?at=2025-06-01T00:00:00Z"))!["prices"]!.AsArray());
        Assert.Equal(HttpStatusCode.BadRequest, (await client.GetAsync("/v1/credits/conversion?at=soon")).StatusCode);
    }

    [Fact]
    public async Task QuotaCheck_DeniesOnAHardCap_AllowsWithOverage_AndRatesAModelEstimate()
    {
        var (_, free) = await _app.TenantAsync("small", "free");
        var (_, pro) = await _app.TenantAsync("big", "professional");
        var deny = await (await free.PostAsJsonAsync("/v1/quota/check", new { estimated_credits = 1_001 })).Content.ReadFromJsonAsync<JsonObject>();
        Assert.False((bool)deny!["allowed"]!);
        Assert.False((bool)deny["fail_open"]!);
        var allow = await (await pro.PostAsJsonAsync("/v1/quota/check", new { estimated_credits = 25_500 })).Content.ReadFromJsonAsync<JsonObject>();
        Assert.True((bool)allow!["allowed"]!);
        Assert.Equal(500, (long)allow["overage_credits"]!);
        // 1,000,000 gpt-4o input tokens: $2.50 × 1.2 / $0.01 = 300 credits
        var rated = await (await free.PostAsJsonAsync("/v1/quota/check", new { model = "gpt-4o", input_tokens = 1_000_000 })).Content.ReadFromJsonAsync<JsonObject>();
        Assert.Equal(300m, (decimal)rated!["estimated_credits"]!);
        var bad = await free.PostAsJsonAsync("/v1/quota/check", new { model = "gpt-9", input_tokens = 1 });
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("unknown model 'gpt-9'", await bad.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Verify_AnswersIntactWithTheHeadHash()
    {
        var (_, client) = await _app.TenantAsync("acme");
        var v = await Json(client, "/v1/ledger/verify?deep=true");
        Assert.True((bool)v["intact"]!);
        Assert.Equal(1, (long)v["entries"]!);
        Assert.Matches("^[0-9a-f]{64}$", (string?)v["head_hash"]);
        var stale = await Json(client, "/v1/ledger/verify?expect_head=" + new string('a', 64));
        Assert.False((bool)stale["intact"]!);
    }

    [Fact]
    public async Task Tenants_SeeOnlyTheirOwnCredits()
    {
        var (_, acme) = await _app.TenantAsync("acme", "starter");
        var (_, globex) = await _app.TenantAsync("globex", "business");
        await acme.PostAsJsonAsync("/v1/usage/events", new { events = new[] { Event("a", _app.Time.GetUtcNow(), "gpt-4o", 1_000_000, 0, "secret_job") } });
        var g = await Json(globex, "/v1/credits/balance");
        Assert.Equal("business", (string?)g["plan"]);
        Assert.Equal(0, (long)g["credits"]!["consumed"]!);
        Assert.Equal(300, (long)(await Json(acme, "/v1/credits/balance"))["credits"]!["consumed"]!);
        Assert.Empty((await Json(globex, "/v1/usage/tokens?group_by=job"))["groups"]!["items"]!.AsArray());

        var other = await globex.GetAsync("/v1/usage/jobs/secret_job");
        var missing = await globex.GetAsync("/v1/usage/jobs/no_such_job");
        Assert.Equal(HttpStatusCode.NotFound, other.StatusCode);
        // Another tenant's job is indistinguishable from one that does not exist.
        Assert.Equal((await missing.Content.ReadAsStringAsync()).Replace("no_such_job", "X").Split("trace_id")[0],
            (await other.Content.ReadAsStringAsync()).Replace("secret_job", "X").Split("trace_id")[0]);
    }

    [Fact]
    public async Task OpenApi_DocumentsEveryEndpointWithExamples_AndTheReferencePageLoads()
    {
        var client = _app.CreateClient();
        var doc = JsonNode.Parse(await client.GetStringAsync("/openapi/v1.json"))!;
        var paths = doc["paths"]!.AsObject().Select(p => p.Key).ToList();
        foreach (var p in new[] { "/v1/credits/balance", "/v1/credits/consumption", "/v1/credits/allocations", "/v1/plans", "/v1/usage/tokens",
                     "/v1/usage/jobs/{job_id}", "/v1/credits/conversion", "/v1/usage/events", "/v1/quota/check", "/v1/ledger/verify" })
            Assert.Contains(p, paths);
        Assert.All(paths, p => Assert.StartsWith("/v1/", p)); // the portal's own endpoints are not the API
        Assert.Equal("bearer", (string?)doc["components"]!["securitySchemes"]!["bearer"]!["scheme"]);
        Assert.NotNull(doc["security"]![0]!["bearer"]);
        Assert.Empty(doc["paths"]!["/v1/plans"]!["get"]!["security"]!.AsArray());
        var example = doc["paths"]!["/v1/credits/balance"]!["get"]!["responses"]!["200"]!["content"]!["application/json"]!["example"]!;
        Assert.Equal(25000, (int)example["credits"]!["allocated"]!);
        var page = await client.GetAsync("/api/docs/v1");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("Rpt Portal Credits API", await page.Content.ReadAsStringAsync());
    }
}
