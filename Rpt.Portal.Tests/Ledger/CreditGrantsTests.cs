using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Rpt.Portal.Api;
using Rpt.Portal.Ledger;

namespace Rpt.Portal.Tests.Ledger;

[Trait("Kind", "Sqlite")]
public class CreditGrantsTests
{
    private static Task ConsumeAsync(PortalHarness h, string tenant, int credits30) =>
        h.IngestAsync(tenant, Enumerable.Range(0, credits30).Select(i => Events.Call($"{tenant}-{h.Time.GetUtcNow().Ticks}-{i}", "gpt-4o", 100_000, 0, at: h.Time.GetUtcNow())).ToArray());

    [Fact]
    public async Task Expiries_PlanAllocationsWithTheirPeriod_TopUpsAfter12Months_AdjustmentsAsTheOperatorSays()
    {
        await using var h = await PortalHarness.StartAsync(); // 1 Apr 2026; periods start on the 1st
        await h.CreateTenantAsync("acme", "starter");
        h.Time.Advance(TimeSpan.FromDays(27)); // 28 Apr
        await h.Get<GrantCredits>().ExecuteAsync("acme", EntrySource.TopUp, 25_000, "top_up:pack");
        await h.Get<GrantCredits>().ExecuteAsync("acme", EntrySource.Adjustment, 100, "adjustment:goodwill");
        await h.Get<GrantCredits>().ExecuteAsync("acme", EntrySource.Adjustment, 200, "adjustment:short", expiresAt: h.Time.GetUtcNow().AddDays(10));
        var rejected = await h.Get<GrantCredits>().ExecuteAsync("acme", EntrySource.Adjustment, 200, "adjustment:past", expiresAt: h.Time.GetUtcNow().AddDays(-1));

        var grants = h.Get<CreditGrants>().Current("acme").Grants.ToDictionary(g => g.IdempotencyKey);
        Assert.Equal(new DateTimeOffset(2026, 5, 1, 0, 0, 0, TimeSpan.Zero), grants["signup:acme"].ExpiresAt);
        Assert.Equal(new DateTimeOffset(2027, 5, 1, 0, 0, 0, TimeSpan.Zero), grants["top_up:pack"].ExpiresAt); // 28 Apr 2027 falls in the period ending 1 May 2027
        Assert.Null(grants["adjustment:goodwill"].ExpiresAt);
        Assert.Equal(new DateTimeOffset(2026, 6, 1, 0, 0, 0, TimeSpan.Zero), grants["adjustment:short"].ExpiresAt); // 8 May rounds up to the period's end
        Assert.Equal(GrantStatus.Rejected, rejected.Status);
        Assert.Contains("not in the future", rejected.Error);
    }

    /// <summary>The reported defect: 25,000 credits bought on the 28th were lost three days later. Now they carry over, and what lapses is written down.</summary>
    [Fact]
    public async Task TopUpBoughtOnThe28th_CarriesIntoTheNextPeriod_AndTheUnusedPlanAllocationExpiresInTheLedger()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme", "starter"); // 5,000 credits, blocked past them
        h.Time.Advance(TimeSpan.FromDays(27));
        await h.Get<GrantCredits>().ExecuteAsync("acme", EntrySource.TopUp, 25_000, "top_up:pack");
        await ConsumeAsync(h, "acme", 100); // 3,000 credits: all from the plan allocation, which expires first
        await h.FlushAsync();
        var april = h.Balance("acme");
        Assert.Equal((30_000L, 3_000L, 27_000L), (april.Allocated!.Value, april.Consumed, april.Remaining!.Value));

        h.Time.SetUtcNow(new DateTimeOffset(2026, 5, 1, 0, 5, 0, TimeSpan.Zero));
        await h.Get<RenewPeriods>().ExecuteAsync();
        Assert.Equal(1, await h.Get<ExpireGrants>().ExecuteAsync());
        Assert.Equal(0, await h.Get<ExpireGrants>().ExecuteAsync()); // once

        var may = h.Balance("acme");
        Assert.Equal((30_000L, 0L, 30_000L), (may.Allocated!.Value, may.Consumed, may.Remaining!.Value)); // 5,000 renewal + 25,000 carried in
        var grants = h.Get<CreditGrants>().Current("acme");
        var signup = grants.Grants.Single(g => g.Source == EntrySource.Signup);
        Assert.Equal((0L, 2_000_000_000L, CreditGrantStatus.Expired), (signup.RemainingMicro, signup.ExpiredMicro, signup.StatusAt(h.Time.GetUtcNow())));
        Assert.Equal(["renewal:acme:2026-05-01", "top_up:pack"], grants.InDrawDownOrder.Where(g => g.StatusAt(h.Time.GetUtcNow()) == CreditGrantStatus.Active).Select(g => g.IdempotencyKey));
        Assert.True((await h.Get<VerifyLedger>().ExecuteAsync("acme", deep: true)).Intact);

        // May's consumption uses the renewal first (it expires first), then the top-up.
        await ConsumeAsync(h, "acme", 200); // 6,000 credits
        await h.FlushAsync();
        var after = h.Get<CreditGrants>().Current("acme").Grants.ToDictionary(g => g.IdempotencyKey);
        Assert.Equal(0, after["renewal:acme:2026-05-01"].RemainingMicro);
        Assert.Equal(24_000_000_000, after["top_up:pack"].RemainingMicro);
        Assert.Equal(24_000, h.Balance("acme").Remaining);
    }

    [Fact]
    public async Task OveragePlan_PastEveryGrant_ShowsOverageInCreditsAndDollars_AndTheGrantsApiListsEveryGrant()
    {
        await using var app = new ApiFactory();
        var (_, client) = await app.TenantAsync("acme", "professional");
        await app.Get<GrantCredits>().ExecuteAsync("acme", EntrySource.TopUp, 1_000, "top_up:small");
        var batch = Enumerable.Range(0, 870).Select(i => new { id = $"o{i}", occurred_at = app.Time.GetUtcNow(), model = "gpt-4o", input_tokens = 100_000, output_tokens = 0 });
        (await client.PostAsJsonAsync("/v1/usage/events", new { events = batch })).EnsureSuccessStatusCode(); // 26,100 credits
        await app.FlushAsync();

        var credits = JsonNode.Parse(await client.GetStringAsync("/v1/credits/balance"))!["credits"]!;
        Assert.Equal((26_000L, 26_100L, -100L, 100L, 1.2m), ((long)credits["allocated"]!, (long)credits["consumed"]!, (long)credits["remaining"]!, (long)credits["overage"]!, (decimal)credits["overage_usd"]!));

        var grants = JsonNode.Parse(await client.GetStringAsync("/v1/credits/grants"))!;
        Assert.Equal(CreditsApi.DrawDownOrder, (string)grants["draw_down_order"]!);
        var items = grants["items"]!.AsArray();
        Assert.Equal(["top_up", "signup"], items.Select(i => (string)i!["source"]!));
        Assert.All(items, i => Assert.Equal("depleted", (string)i!["status"]!));
        Assert.Equal((1_000L, 0L), ((long)items[0]!["granted"]!, (long)items[0]!["remaining"]!));
        Assert.NotNull(items[0]!["expires_at"]);
    }
}
