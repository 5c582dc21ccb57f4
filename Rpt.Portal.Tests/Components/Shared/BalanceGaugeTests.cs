using Bunit;
using Rpt.Portal.Components.Shared;
using Rpt.Portal.Ledger;
using Rpt.Portal.Plans;
using Rpt.Portal.Metering;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Tests.Components.Shared;

[Trait("Kind", "Component")]
public class BalanceGaugeTests : BunitContext
{
    public BalanceGaugeTests()
    {
        JSInterop.Mode = JSRuntimeMode.Loose;
        SetRendererInfo(new Microsoft.AspNetCore.Components.RendererInfo("Server", isInteractive: true));
    }

    private static Balance Balance(long allocated, long consumedMicro, OveragePolicy policy = OveragePolicy.Blocked) =>
        new("acme", "starter", policy, BillingPeriod.Containing(new DateOnly(2026, 4, 1), new DateOnly(2026, 4, 10)),
            Credit.ToMicro(allocated), consumedMicro, 0, 0, 0, new Dictionary<string, long>(), new Dictionary<string, decimal>());

    [Theory]
    [InlineData(499_999_999, "#1b7f3b")] // 49.99 %: below every threshold
    [InlineData(500_000_000, "#b8860b")] // 50 %: first threshold passed
    [InlineData(750_000_000, "#c05600")]
    [InlineData(900_000_000, "#b3261e")]
    [InlineData(1_500_000_000, "#b3261e")]
    public void Colour_ChangesAtEachAlertThreshold(long consumedMicro, string colour)
    {
        var gauge = Render<BalanceGauge>(p => p.Add(g => g.Balance, Balance(1_000, consumedMicro)));
        Assert.Equal(colour, gauge.Instance.Colour);
    }

    [Fact]
    public void Gauge_TellsScreenReadersTheShareUsed_AndListsTheThresholds()
    {
        var gauge = Render<BalanceGauge>(p => p.Add(g => g.Balance, Balance(1_000, 250_500_000)));
        Assert.Equal("25.1 % of the allocation used", gauge.Find("[role=figure]").GetAttribute("aria-label"));
        Assert.Contains("Alert thresholds: 50 % · 75 % · 90 %", gauge.Markup);
    }

    [Fact]
    public void Gauge_UnlimitedPlan_ShowsUnlimitedAndWhatWasUsed()
    {
        var b = Balance(0, 1_234_000_000, OveragePolicy.Unlimited);
        var gauge = Render<BalanceGauge>(p => p.Add(g => g.Balance, b));
        Assert.Contains("Unlimited", gauge.Find("[data-testid=gauge-unlimited]").TextContent);
        Assert.Contains("1,234 credits used this period", gauge.Markup);
        Assert.Empty(gauge.FindAll("[role=figure]"));
    }
}
