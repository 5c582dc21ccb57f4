using Rpt.Portal.Ledger;
using Rpt.Portal.Plans;
using Rpt.Portal.Metering;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Tests.Ledger;

[Trait("Kind", "Unit")]
public class ForecastTests
{
    private static Balance B(long allocated, long consumedCredits, OveragePolicy policy = OveragePolicy.Blocked) =>
        new("acme", "p", policy, BillingPeriod.Containing(new DateOnly(2026, 4, 1), new DateOnly(2026, 4, 1)),
            Credit.ToMicro(allocated), Credit.ToMicro(consumedCredits), 0, 0, 0, new Dictionary<string, long>(), new Dictionary<string, decimal>());

    [Fact]
    public void Of_BurnRateOverElapsedDays_PredictsTheRunOutDay()
    {
        // 10 days into a 30-day period, 500 of 1,000 used: 50 a day, the rest lasts 10 more days.
        var f = Forecast.Of(B(1_000, 500), new DateTimeOffset(2026, 4, 11, 0, 0, 0, TimeSpan.Zero));
        Assert.Equal(50m, f.CreditsPerDay);
        Assert.Equal(1_500, f.ProjectedConsumed);
        Assert.Equal(new DateTimeOffset(2026, 4, 21, 0, 0, 0, TimeSpan.Zero), f.RunOutAt);
        Assert.True(f.RunsOutBeforePeriodEnd);
    }

    [Fact]
    public void Of_SlowBurn_LastsThePeriod()
    {
        var f = Forecast.Of(B(1_000, 100), new DateTimeOffset(2026, 4, 11, 0, 0, 0, TimeSpan.Zero));
        Assert.False(f.RunsOutBeforePeriodEnd);
        Assert.Equal(300, f.ProjectedConsumed);
    }

    [Fact]
    public void Of_NothingUsed_HasNoRunOut()
    {
        var f = Forecast.Of(B(1_000, 0), new DateTimeOffset(2026, 4, 11, 0, 0, 0, TimeSpan.Zero));
        Assert.Null(f.RunOutAt);
        Assert.Equal(0m, f.CreditsPerDay);
    }
}
