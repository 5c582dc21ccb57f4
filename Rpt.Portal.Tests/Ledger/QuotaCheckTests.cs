using Rpt.Portal.Ledger;
using Rpt.Portal.Plans;

namespace Rpt.Portal.Tests.Ledger;

[Trait("Kind", "Sqlite")]
public class QuotaCheckTests
{
    [Fact]
    public async Task Check_BlockedPlan_AllowsWithinAndDeniesBeyondWhatRemains()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme", "free");
        await h.IngestAsync("acme", Events.Call("big", model: "gpt-4o", input: 1_000_000, output: 0)); // 300 credits, unflushed
        var quota = h.Get<QuotaCheck>();

        var within = await quota.ExecuteAsync("acme", 700m);
        Assert.True(within.Allowed);
        Assert.Equal(700, within.Remaining); // real time: the unflushed call already counts

        var beyond = await quota.ExecuteAsync("acme", 700.5m);
        Assert.False(beyond.Allowed);
        Assert.False(beyond.FailOpen);
        Assert.Contains("does not allow overage", beyond.Reason);
    }

    [Fact]
    public async Task Check_OveragePlan_AllowsAndMakesTheOverageExplicit()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme", "professional");
        var d = await h.Get<QuotaCheck>().ExecuteAsync("acme", 25_010m);
        Assert.True(d.Allowed);
        Assert.Equal(10, d.OverageCredits);
    }

    [Fact]
    public async Task Check_UnlimitedPlan_Allows()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("bigco", "enterprise");
        var d = await h.Get<QuotaCheck>().ExecuteAsync("bigco", 1_000_000_000m);
        Assert.True(d.Allowed);
        Assert.Null(d.Remaining);
    }

    [Fact]
    public async Task Check_LedgerTooSlow_FailsOpenAndSaysSo()
    {
        var quota = new QuotaCheck(async (_, _, ct) => { await Task.Delay(TimeSpan.FromSeconds(5), ct); return null; }, TimeSpan.FromMilliseconds(50));
        var d = await quota.ExecuteAsync("acme", 10m);
        Assert.True(d.Allowed);
        Assert.True(d.FailOpen);
        Assert.Contains("did not answer within 50 ms", d.Reason);
    }

    [Fact]
    public async Task Check_LedgerUnreadable_FailsOpen_AndIngestionStillRecords()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme", "free");
        // The ledger table disappears from under the reader (a broken store), the audit table does not.
        h.Execute("ALTER TABLE ledger_entries RENAME TO ledger_entries_away");
        var d = await h.Get<QuotaCheck>().ExecuteAsync("acme", 5m);
        Assert.True(d.Allowed);
        Assert.True(d.FailOpen);
        Assert.Equal(1, (await h.IngestAsync("acme", Events.Call("still-metered"))).Accepted);
    }
}
