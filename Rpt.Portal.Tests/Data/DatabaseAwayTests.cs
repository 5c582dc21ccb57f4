using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Rpt.Portal.Data;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Tests.Data;

/// <summary>
/// The database goes away under a running portal (its connections reset and new ones refused, as when the primary dies
/// and before a standby is promoted) and comes back. Meanwhile the API answers 503 with Retry-After and a problem
/// document, never 500; the quota check answers fail-open; a page says it is temporarily unavailable. Afterwards the
/// same requests succeed, and nothing is stored twice.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Kind", "Postgres")]
public sealed class DatabaseAwayTests(PostgresCluster cluster)
{
    [Fact]
    public async Task WhileTheDatabaseIsAway_TheApiAnswers503WithRetryAfter_PagesSaySo_AndAfterwardsNothingIsLostOrDoubled()
    {
        var direct = await cluster.CreateDatabaseAsync();
        await using var relay = new TcpRelay(cluster.Port);
        var viaRelay = new NpgsqlConnectionStringBuilder(direct) { Port = relay.Port, Timeout = 3, CommandTimeout = 5 }.ConnectionString;
        await using var app = new ApiFactory(new() { ["Rpt:Data:Provider"] = "Postgres", ["ConnectionStrings:Rpt"] = viaRelay }, fakeClock: false);
        var (tenant, client) = await app.TenantAsync("away", plan: "starter");
        using (var scope = app.Services.CreateScope())
        {
            var users = scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>();
            var owner = new ApplicationUser { UserName = "owner@away.test", Email = "owner@away.test", EmailConfirmed = true, TenantId = tenant };
            Assert.True((await users.CreateAsync(owner, "Secret-123!")).Succeeded);
            await users.AddToRoleAsync(owner, PortalRoles.Owner);
        }
        var browser = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = false });
        var cookie = await SignIn.WithPasswordAsync(browser, "owner@away.test", "Secret-123!");
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsJsonAsync("/v1/usage/events", Batch("before", 20))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/credits/balance")).StatusCode);
        var keyNeverSeen = await app.Get<Rpt.Portal.Api.ApiKeyService>().CreateAsync(tenant, "never used", Rpt.Portal.Api.ApiScopes.Read | Rpt.Portal.Api.ApiScopes.Ingest);

        relay.Cut();
        var during = Batch("during", 20);
        foreach (var (what, answer) in new[]
                 {
                     ("ingestion", await client.PostAsJsonAsync("/v1/usage/events", during)),
                     ("a balance read", await client.GetAsync("/v1/credits/balance")),
                     ("a listing", await client.GetAsync("/v1/credits/allocations")),
                     ("a key never seen (it cannot be looked up)", await app.ClientWithKey(keyNeverSeen).GetAsync("/v1/credits/balance")),
                 })
        {
            var body = await answer.Content.ReadAsStringAsync();
            Assert.True(answer.StatusCode == HttpStatusCode.ServiceUnavailable, $"{what} answered {(int)answer.StatusCode}: {body}");
            Assert.True(answer.Headers.RetryAfter?.Delta is { TotalSeconds: > 0 }, $"{what}: no Retry-After");
            Assert.Equal("application/problem+json", answer.Content.Headers.ContentType?.MediaType);
            Assert.Equal(503, (int)JsonNode.Parse(body)!["status"]!);
        }
        var quota = await client.PostAsJsonAsync("/v1/quota/check", new { estimated_credits = 10 });
        Assert.Equal(HttpStatusCode.OK, quota.StatusCode);
        var decision = JsonNode.Parse(await quota.Content.ReadAsStringAsync())!;
        Assert.True((bool)decision["allowed"]! && (bool)decision["fail_open"]!, decision.ToJsonString());
        var page = await SignIn.GetAsync(browser, "/usage", cookie);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("temporarily unavailable", await page.Content.ReadAsStringAsync());

        relay.Restore();
        // The client sends the batch that got 503 again, as Retry-After asks, until it is answered.
        HttpResponseMessage again;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        do
        {
            await Task.Delay(TimeSpan.FromSeconds(0.5));
            again = await client.PostAsJsonAsync("/v1/usage/events", during);
        } while (again.StatusCode == HttpStatusCode.ServiceUnavailable && clock.Elapsed < TimeSpan.FromSeconds(30));
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        var answerAfter = JsonNode.Parse(await again.Content.ReadAsStringAsync())!;
        Assert.Equal(20, (long)answerAfter["accepted"]! + (long)answerAfter["duplicates"]!);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/credits/balance")).StatusCode);
        Assert.DoesNotContain("temporarily unavailable", await (await SignIn.GetAsync(browser, "/usage", cookie)).Content.ReadAsStringAsync());
        await using var db = new NpgsqlConnection(direct);
        await db.OpenAsync();
        await using var count = new NpgsqlCommand("SELECT COUNT(*), COUNT(DISTINCT event_id) FROM usage_events WHERE tenant_id = 'away'", db);
        await using var r = await count.ExecuteReaderAsync();
        await r.ReadAsync();
        Assert.Equal(40, r.GetInt64(0));
        Assert.Equal(40, r.GetInt64(1));
    }

    private static object Batch(string prefix, int n) => new
    {
        events = Enumerable.Range(0, n).Select(i => new { id = $"{prefix}-{i}", occurred_at = DateTimeOffset.UtcNow, model = "gpt-4o-mini", input_tokens = 1000, output_tokens = 100 }),
    };
}
