using Rpt.Portal.Billing;
using Rpt.Portal.Ledger;
using Rpt.Portal.Plans;

namespace Rpt.Portal.Tests.Ledger;

[Trait("Kind", "Sqlite")]
public class BalanceTests
{
    /// <summary>Consumes 300 credits per call: 1,000,000 gpt-4o input tokens × $2.50/Mtok × 1.2 / $0.01.</summary>
    private static async Task Consume(PortalHarness h, string tenant, int calls)
    {
        for (var i = 0; i < calls; i++)
            await h.IngestAsync(tenant, Events.Call($"{tenant}-{i}", model: "gpt-4o", input: 1_000_000, output: 0));
    }

    [Fact]
    public async Task Balance_BlockedPlan_RemainingNeverGoesBelowZero_ButEveryCreditIsCounted()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme", "free"); // 1,000 credits, blocked
        await Consume(h, "acme", 4);              // 4 × 300 = 1,200 credits: metering never blocks
        var b = h.Balance("acme");
        Assert.Equal(1_000, b.Allocated);
        Assert.Equal(1_200, b.Consumed);
        Assert.Equal(0, b.Remaining);
        Assert.Equal(200, b.OverageCredits);
        Assert.Equal(120m, b.PercentConsumed);
    }

    [Fact]
    public async Task Balance_OveragePlan_RemainingGoesNegative()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme", "professional");
        await h.Get<ChangePlan>().ExecuteAsync("acme", "free"); // downgrade keeps this period's 25,000
        await h.Get<ChangePlan>().ExecuteAsync("acme", "professional");
        await Consume(h, "acme", 84); // 84 × 300 = 25,200 credits
        var b = h.Balance("acme");
        Assert.Equal(-200, b.Remaining);
        Assert.Equal(200, b.OverageCredits);
    }

    [Fact]
    public async Task Balance_UnlimitedPlan_HasNoAllocationOrRemaining()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("bigco", "enterprise");
        await Consume(h, "bigco", 1);
        var b = h.Balance("bigco");
        Assert.True(b.Unlimited);
        Assert.Null(b.Allocated);
        Assert.Null(b.Remaining);
        Assert.Equal(300, b.Consumed);
    }

    [Fact]
    public async Task Balance_Consumed_IsFlooredToWholeCredits()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme", "free");
        await h.IngestAsync("acme", Enumerable.Range(0, 9).Select(i => Events.Call($"e{i}")).ToArray()); // 9 × 0.11088 = 0.99792
        Assert.Equal(0, h.Balance("acme").Consumed);
        await h.IngestAsync("acme", Events.Call("e9"));                                                  // 1.1088
        Assert.Equal(1, h.Balance("acme").Consumed);
        Assert.Equal(999, h.Balance("acme").Remaining);
    }

    [Fact]
    public async Task Balance_TokensByModel_CountsBilledSucceededCallsOfThePeriod()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme");
        await h.IngestAsync("acme",
            Events.Call("a", model: "gpt-4o-mini", input: 1000, output: 200, cached: 50),
            Events.Call("b", model: "gemini-1.5-flash", input: 500, output: 100),
            Events.Call("c", model: "gpt-4o-mini", input: 7, output: 7, status: "failed"),
            Events.Call("d", model: "gpt-4o-mini", input: 9, output: 9, @internal: true));
        var b = h.Balance("acme");
        Assert.Equal(1850, b.TotalTokens);
        Assert.Equal(1250, b.TokensByModel["gpt-4o-mini"]);
        Assert.Equal(600, b.TokensByModel["gemini-1.5-flash"]);
    }

    [Fact]
    public async Task Renewal_NewPeriod_GrantsThePlanOnce_AndTheOldPeriodStaysBehind()
    {
        await using var h = await PortalHarness.StartAsync(); // 2026-04-01 08:00
        await h.CreateTenantAsync("acme", "starter");
        await Consume(h, "acme", 1);
        var renew = h.Get<RenewPeriods>();
        Assert.Equal(0, await renew.ExecuteAsync()); // the first period is the signup's

        h.Time.SetUtcNow(new DateTimeOffset(2026, 5, 1, 0, 0, 1, TimeSpan.Zero));
        Assert.Equal(1, await renew.ExecuteAsync());
        Assert.Equal(0, await renew.ExecuteAsync());
        var b = h.Balance("acme");
        Assert.Equal(new DateOnly(2026, 5, 1), b.Period.Start);
        Assert.Equal(new DateOnly(2026, 5, 31), b.Period.End);
        Assert.Equal(5_000, b.Allocated);
        Assert.Equal(0, b.Consumed);
        Assert.Equal(1, h.Scalar("SELECT COUNT(*) FROM ledger_entries WHERE idempotency_key = 'renewal:acme:2026-05-01'"));
    }

    [Fact]
    public async Task ChangePlan_Upgrade_GrantsTheDifferenceOncePerPeriod_DowngradeTakesNothingBack()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme", "starter");
        var change = h.Get<ChangePlan>();
        Assert.Equal(20_000, (await change.ExecuteAsync("acme", "professional")).GrantedCredits);
        Assert.Equal(0, (await change.ExecuteAsync("acme", "starter")).GrantedCredits);
        Assert.Equal(0, (await change.ExecuteAsync("acme", "professional")).GrantedCredits);
        var b = h.Balance("acme");
        Assert.Equal("professional", b.PlanCode);
        Assert.Equal(25_000, b.Allocated);
        Assert.Equal("unknown plan 'gold'", (await change.ExecuteAsync("acme", "gold")).Error);
    }
}
