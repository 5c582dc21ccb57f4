using FsCheck;
using FsCheck.Fluent;
using Rpt.Portal.Ledger;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Tests.Ledger;

[Trait("Kind", "Unit")]
public class BillingPeriodTests
{
    [Theory]
    [InlineData("2026-04-01", "2026-04-12", "2026-04-01", "2026-04-30")]
    [InlineData("2026-01-31", "2026-02-15", "2026-01-31", "2026-02-27")]
    [InlineData("2026-01-31", "2026-02-28", "2026-02-28", "2026-03-30")]
    [InlineData("2026-01-31", "2026-03-31", "2026-03-31", "2026-04-29")]
    [InlineData("2026-03-15", "2026-03-14", "2026-02-15", "2026-03-14")]
    [InlineData("2024-01-30", "2024-02-29", "2024-02-29", "2024-03-29")]
    public void Containing_IsMonthlyAnchoredOnTheSubscriptionStart(string anchor, string day, string start, string end)
    {
        var p = BillingPeriod.Containing(DateOnly.Parse(anchor), DateOnly.Parse(day));
        Assert.Equal(DateOnly.Parse(start), p.Start);
        Assert.Equal(DateOnly.Parse(end), p.End);
    }

    [Fact]
    public void Containing_AnyAnchorAndDay_PeriodsContainTheDayAndTileWithoutGapsOrOverlaps()
    {
        var dates = Gen.Choose(0, 3650).Select(d => new DateOnly(2024, 1, 1).AddDays(d));
        Prop.ForAll(dates.ToArbitrary(), dates.ToArbitrary(), (anchor, day) =>
        {
            var p = BillingPeriod.Containing(anchor, day);
            var next = BillingPeriod.Containing(anchor, p.EndExclusive);
            return p.Start <= day && day < p.EndExclusive
                && p.Days is >= 28 and <= 31
                && next.Start == p.EndExclusive
                && BillingPeriod.Containing(anchor, p.End) == p;
        }).QuickCheckThrowOnFailure();
    }
}
