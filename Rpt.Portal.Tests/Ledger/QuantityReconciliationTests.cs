using Rpt.Portal.Ledger;

namespace Rpt.Portal.Tests.Ledger;

/// <summary>
/// Metered quantities with every number of decimal places the API allows (up to 6) and at the per-event limit: the
/// deep verifier recomputes each day's quantity from the audit records' text, exactly (no floating point), and finds
/// it equal to the running rollup, on either engine.
/// </summary>
[Trait("Kind", "Sqlite")]
public class QuantityReconciliationTests
{
    [Fact]
    public async Task QuantitiesWithSixDecimals_ReconcileExactly_WithTheirRollups()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme", "enterprise");
        decimal[] quantities = [0.000001m, 1.5m, 7m, 123456.789012m, 999999.999999m, 1_000_000m, 0.1m, 2.000010m];
        var accepted = (await h.IngestAsync("acme", quantities.Select((q, i) => Events.Meter($"m{i}", "image_generation", q)).ToArray())).Accepted;
        Assert.Equal(quantities.Length, accepted);
        await h.FlushAsync();
        var verified = await h.Get<VerifyLedger>().ExecuteAsync("acme", deep: true);
        Assert.True(verified.Intact, string.Join("; ", verified.Problems));
        Assert.Equal(quantities.Sum(q => decimal.ToInt64(q * 1_000_000m)), h.Scalar("SELECT SUM(quantity_micro) FROM usage_daily WHERE tenant_id = 'acme'"));
    }
}
