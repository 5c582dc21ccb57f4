using Rpt.Portal.Data;
using Rpt.Portal.Ledger;

namespace Rpt.Portal.Tests.Ledger;

/// <summary>What an auditor who distrusts the database checks: a tamperer who can drop the triggers is still found out.</summary>
[Trait("Kind", "Sqlite")]
public class VerifyLedgerTests
{
    private static async Task<PortalHarness> LedgerWithHistoryAsync()
    {
        var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme");
        var grant = h.Get<GrantCredits>();
        for (var round = 0; round < 3; round++)
        {
            await h.IngestAsync("acme", Enumerable.Range(0, 5).Select(i => Events.Call($"r{round}e{i}")).ToArray());
            await h.FlushAsync();
            await grant.ExecuteAsync("acme", EntrySource.TopUp, 100, $"top_up:{round}");
        }
        // seq: 1 signup, 2 usage, 3 top-up, 4 usage, 5 top-up, 6 usage, 7 top-up
        h.AllowChanges("ledger_entries", "usage_events", "flush_runs");
        return h;
    }

    private static Task<LedgerVerification> Verify(PortalHarness h, bool deep = true, string? head = null) =>
        h.Get<VerifyLedger>().ExecuteAsync("acme", deep, head);

    [Fact]
    public async Task Verify_UntouchedLedger_IsIntactWithItsHeadHash()
    {
        await using var h = await LedgerWithHistoryAsync();
        var v = await Verify(h);
        Assert.True(v.Intact, string.Join("; ", v.Problems));
        Assert.Equal(7, v.Entries);
        Assert.Equal(64, v.HeadHash.Length);
    }

    [Fact]
    public async Task Verify_ASumTheBalanceReadsThatNoLongerMatchesTheEntries_IsFound()
    {
        await using var h = await LedgerWithHistoryAsync();
        var before = h.Balance("acme");
        Assert.True((await Verify(h, deep: false)).Intact);
        using (var db = h.OpenDb())
        using (var cmd = db.Command("UPDATE ledger_period_sums SET micro_credits = micro_credits + 5000000 WHERE tenant_id = 'acme' AND kind = 'allocation'"))
            Assert.Equal(1, cmd.ExecuteNonQuery());
        // The balance reads the sums (a few rows, however many entries a period holds): 5 credits were made up there...
        Assert.Equal(before.AllocatedMicroCredits + 5_000_000, h.Balance("acme").AllocatedMicroCredits);
        // ...and the verification, which adds up the entries themselves, says where, even without the deep check.
        var v = await Verify(h, deep: false);
        Assert.False(v.Intact);
        Assert.Contains(v.Problems, p => p.Contains("allocation: the sum balances read holds", StringComparison.Ordinal) && p.Contains("over 4 entries", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Verify_AlteredAmount_IsFound()
    {
        await using var h = await LedgerWithHistoryAsync();
        h.Execute("UPDATE ledger_entries SET amount_micro_credits = amount_micro_credits + 1 WHERE seq = 3");
        var v = await Verify(h, deep: false);
        Assert.False(v.Intact);
        Assert.Contains(v.Problems, p => p.StartsWith("seq 3: stored hash", StringComparison.Ordinal) && p.Contains("altered"));
    }

    [Fact]
    public async Task Verify_AlteredAmountWithRecomputedHash_BreaksTheNextLink()
    {
        await using var h = await LedgerWithHistoryAsync();
        h.Execute("UPDATE ledger_entries SET amount_micro_credits = 1, hash = 'f00d' WHERE seq = 3");
        var v = await Verify(h, deep: false);
        Assert.Contains(v.Problems, p => p.StartsWith("seq 4: previous hash", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Verify_RemovedMiddleEntry_IsFound()
    {
        await using var h = await LedgerWithHistoryAsync();
        h.Execute("DELETE FROM ledger_entries WHERE seq = 4");
        var v = await Verify(h, deep: false);
        Assert.False(v.Intact);
        Assert.Contains(v.Problems, p => p.Contains("seq 5 where 4 was expected"));
    }

    [Fact]
    public async Task Verify_ReorderedEntries_AreFound()
    {
        await using var h = await LedgerWithHistoryAsync();
        h.Execute("UPDATE ledger_entries SET seq = -1 WHERE seq = 3; UPDATE ledger_entries SET seq = 3 WHERE seq = 5; UPDATE ledger_entries SET seq = 5 WHERE seq = -1;");
        var v = await Verify(h, deep: false);
        Assert.False(v.Intact);
        Assert.Contains(v.Problems, p => p.StartsWith("seq 3:", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Verify_RemovedLastEntry_IsFoundAgainstTheRecordedHead()
    {
        await using var h = await LedgerWithHistoryAsync();
        var recordedHead = (await Verify(h)).HeadHash;
        h.Execute("DELETE FROM ledger_entries WHERE seq = 7");
        var v = await Verify(h, deep: false, head: recordedHead);
        Assert.False(v.Intact);
        Assert.Contains(v.Problems, p => p.Contains("no longer in the chain"));
    }

    [Fact]
    public async Task VerifyDeep_RemovedLastConsumptionEntry_IsFoundByReconcilingTheAuditRecords()
    {
        await using var h = await LedgerWithHistoryAsync();
        await h.IngestAsync("acme", Events.Call("last"));
        await h.FlushAsync(); // seq 8, the last entry, is a consumption entry
        h.Execute("DELETE FROM ledger_entries WHERE seq = 8");
        var v = await Verify(h);
        Assert.False(v.Intact);
        Assert.Contains(v.Problems, p => p.Contains("flushed audit records rate to"));
    }

    [Fact]
    public async Task VerifyDeep_AlteredAuditRecord_IsFound()
    {
        await using var h = await LedgerWithHistoryAsync();
        h.Execute("UPDATE usage_events SET input_tokens = 1 WHERE event_id = 'r1e2'");
        var v = await Verify(h);
        Assert.False(v.Intact);
        Assert.Contains(v.Problems, p => p.StartsWith("seq 4: the audit records it covers were altered", StringComparison.Ordinal));
    }

    [Fact]
    public async Task VerifyDeep_RemovedAuditRecord_IsFound()
    {
        await using var h = await LedgerWithHistoryAsync();
        h.Execute("DELETE FROM usage_events WHERE event_id = 'r0e0'");
        var v = await Verify(h);
        Assert.Contains(v.Problems, p => p.StartsWith("seq 2: covers 5 audit records but 4 are there", StringComparison.Ordinal));
    }

    [Fact]
    public async Task VerifyDeep_AlteredRunningTotal_IsFound()
    {
        await using var h = await LedgerWithHistoryAsync();
        h.Execute("UPDATE usage_totals SET micro_credits = micro_credits - 5");
        var v = await Verify(h);
        Assert.Contains(v.Problems, p => p.Contains("running total says"));
    }
}
