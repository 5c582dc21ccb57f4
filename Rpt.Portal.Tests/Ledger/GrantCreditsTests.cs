using Microsoft.Data.Sqlite;
using Rpt.Portal.Ledger;

namespace Rpt.Portal.Tests.Ledger;

[Trait("Kind", "Sqlite")]
public class GrantCreditsTests
{
    [Fact]
    public async Task CreateTenant_GrantsTheSignupAllocationOfThePlan()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme", "starter");
        var balance = h.Balance("acme");
        Assert.Equal(5_000, balance.Allocated);
        Assert.Equal(5_000, balance.Remaining);
        Assert.Equal(1, h.Scalar("SELECT COUNT(*) FROM ledger_entries WHERE idempotency_key = 'signup:acme' AND source = 'signup'"));
    }

    [Fact]
    public async Task Grant_RetriedWithTheSameKey_GrantsOnce()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme", "free");
        var grant = h.Get<GrantCredits>();
        var first = await grant.ExecuteAsync("acme", EntrySource.TopUp, 500, "stripe:evt_1");
        var retry = await grant.ExecuteAsync("acme", EntrySource.TopUp, 500, "stripe:evt_1");
        Assert.Equal(GrantStatus.Granted, first.Status);
        Assert.Equal(GrantStatus.AlreadyGranted, retry.Status);
        Assert.Equal(first.Entry!.Seq, retry.Entry!.Seq);
        Assert.Equal(1_500, h.Balance("acme").Allocated);
    }

    [Fact]
    public async Task Grant_ConcurrentRetriesOfOneKey_GrantOnce()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme", "free");
        var grant = h.Get<GrantCredits>();
        var results = await Task.WhenAll(Enumerable.Range(0, 12).Select(_ => Task.Run(() =>
            grant.ExecuteAsync("acme", EntrySource.TopUp, 100, "stripe:evt_same"))));
        Assert.Single(results, r => r.Status == GrantStatus.Granted);
        Assert.Equal(1_100, h.Balance("acme").Allocated);
        Assert.True((await h.Get<VerifyLedger>().ExecuteAsync("acme")).Intact);
    }

    [Fact]
    public async Task Grant_ConcurrentDistinctKeys_ChainStaysLinear()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme", "free");
        var grant = h.Get<GrantCredits>();
        await Task.WhenAll(Enumerable.Range(0, 20).Select(i => Task.Run(() =>
            grant.ExecuteAsync("acme", EntrySource.Adjustment, 1, $"adjustment:{i}"))));
        var v = await h.Get<VerifyLedger>().ExecuteAsync("acme");
        Assert.True(v.Intact, string.Join("; ", v.Problems));
        Assert.Equal(21, v.Entries);
    }

    [Theory]
    [InlineData(0, "credits must be positive (got 0)")]
    [InlineData(-5, "credits must be positive (got -5)")]
    public async Task Grant_NonPositiveAmount_IsRejected(long credits, string error)
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme", "free");
        var result = await h.Get<GrantCredits>().ExecuteAsync("acme", EntrySource.Adjustment, credits, "k");
        Assert.Equal(GrantStatus.Rejected, result.Status);
        Assert.Equal(error, result.Error);
    }

    [Fact]
    public async Task Grant_UnknownTenant_IsRejectedNamingIt()
    {
        await using var h = await PortalHarness.StartAsync();
        var result = await h.Get<GrantCredits>().ExecuteAsync("ghost", EntrySource.TopUp, 1, "k");
        Assert.Equal("unknown tenant 'ghost'", result.Error);
    }

    [Fact]
    public async Task LedgerEntries_UpdateOrDelete_IsRefusedByTheDatabase()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme");
        Assert.Contains("append-only", Assert.ThrowsAny<System.Data.Common.DbException>(() => h.Execute("UPDATE ledger_entries SET amount_micro_credits = 1")).Message);
        Assert.Contains("append-only", Assert.ThrowsAny<System.Data.Common.DbException>(() => h.Execute("DELETE FROM ledger_entries")).Message);
        Assert.Equal(25_000, h.Balance("acme").Allocated);
    }
}
