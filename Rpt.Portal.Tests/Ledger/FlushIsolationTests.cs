using Rpt.Portal.Ledger;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Tests.Ledger;

/// <summary>A flush that fails for one tenant is retried for that tenant alone; every other tenant goes on.</summary>
[Trait("Kind", "Sqlite")]
public class FlushIsolationTests
{
    [Fact]
    public async Task Flush_OneTenantsEntriesCannotBeWritten_OthersFlush_AndItCatchesUpAloneOnceItCan()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("broken");
        await h.CreateTenantAsync("fine");
        await h.IngestAsync("broken", Events.Call("b1"));
        await h.IngestAsync("fine", Events.Call("f1"));
        // A fault that hits only one tenant's ledger writes.
        h.FailInserts("ledger_entries", "NEW.tenant_id = 'broken' AND NEW.kind = 'consumption'");

        var first = await h.FlushAsync();
        Assert.Equal(["broken"], first.LaggingTenants);
        Assert.Equal(h.Balance("fine").ConsumedMicroCredits, h.Balance("fine").FlushedMicroCredits);
        Assert.Equal(0, h.Balance("broken").FlushedMicroCredits);
        Assert.True(h.Balance("broken").ConsumedMicroCredits > 0, "the balance still counts every acknowledged event");
        Assert.Equal(1, h.Scalar("SELECT COUNT(*) FROM flush_lags WHERE tenant_id = 'broken' AND error LIKE '%disk says no%'"));

        // More usage while it lags: the healthy tenant keeps flushing; both ledgers verify meanwhile.
        await h.IngestAsync("broken", Events.Call("b2"));
        await h.IngestAsync("fine", Events.Call("f2"));
        await h.FlushAsync();
        Assert.Equal(h.Balance("fine").ConsumedMicroCredits, h.Balance("fine").FlushedMicroCredits);
        Assert.True(h.Scalar("SELECT attempts FROM flush_lags WHERE tenant_id = 'broken'") >= 2);
        foreach (var tenant in new[] { "broken", "fine" })
            Assert.True((await h.Get<VerifyLedger>().ExecuteAsync(tenant, deep: true)).Intact);

        h.StopFailingInserts("ledger_entries");
        await h.FlushAsync();
        Assert.Equal(0, h.Scalar("SELECT COUNT(*) FROM flush_lags"));
        Assert.Equal(h.Balance("broken").ConsumedMicroCredits, h.Balance("broken").FlushedMicroCredits);
        foreach (var tenant in new[] { "broken", "fine" })
        {
            var v = await h.Get<VerifyLedger>().ExecuteAsync(tenant, deep: true);
            Assert.True(v.Intact, string.Join("; ", v.Problems));
        }
        // Later usage of the tenant that caught up flushes as usual.
        await h.IngestAsync("broken", Events.Call("b3"));
        Assert.Empty((await h.FlushAsync()).LaggingTenants);
        Assert.Equal(h.Balance("broken").ConsumedMicroCredits, h.Balance("broken").FlushedMicroCredits);
    }

    /// <summary>Audit records written before the limits existed can sum past 2^63; that tenant lags, the rest flush,
    /// and the deep verifier reports it instead of failing.</summary>
    [Fact]
    public async Task Flush_LegacyTotalsPast64Bits_IsolateThatTenant_AndVerifyReportsInsteadOfThrowing()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("legacy");
        await h.CreateTenantAsync("fine");
        await h.IngestAsync("legacy", Events.Call("seed"));
        await h.IngestAsync("fine", Events.Call("f1"));
        // What the writer before the limits accepted: three records of 2^62 µcr each.
        for (var i = 0; i < 3; i++)
            h.Execute($"""
                INSERT INTO usage_events (tenant_id, event_id, occurred_at, received_at, period_start, provider, model, input_tokens, output_tokens,
                  cached_input_tokens, status, internal, billable, price_id, rule_id, cost_usd, micro_credits)
                SELECT tenant_id, 'old{i}', occurred_at, received_at, period_start, provider, model, 0, 0, 0, 'succeeded', FALSE, TRUE, price_id, rule_id, '0', 4611686018427387904
                FROM usage_events WHERE event_id = 'seed'
                """);

        var outcome = await h.FlushAsync();
        Assert.Equal(["legacy"], outcome.LaggingTenants);
        Assert.Equal(h.Balance("fine").ConsumedMicroCredits, h.Balance("fine").FlushedMicroCredits);
        var v = await h.Get<VerifyLedger>().ExecuteAsync("legacy", deep: true);
        Assert.False(v.Intact);
        Assert.Contains(v.Problems, p => p.Contains("per-period limit"));
        Assert.True((await h.Get<VerifyLedger>().ExecuteAsync("fine", deep: true)).Intact);
    }
}
