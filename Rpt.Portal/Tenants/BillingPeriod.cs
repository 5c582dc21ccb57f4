namespace Rpt.Portal.Tenants;

/// <summary>
/// A monthly billing period anchored on the subscription start: [Start, EndExclusive). A period that
/// starts on the 31st starts on the last day of shorter months and returns to the 31st after them.
/// </summary>
public readonly record struct BillingPeriod(DateOnly Start, DateOnly EndExclusive)
{
    /// <summary>The last day of the period, as customers read it ("2026-04-01 to 2026-04-30").</summary>
    public DateOnly End => EndExclusive.AddDays(-1);

    public static BillingPeriod Containing(DateOnly anchor, DateOnly day)
    {
        var months = (day.Year - anchor.Year) * 12 + day.Month - anchor.Month;
        var start = anchor.AddMonths(months);
        if (start > day)
        {
            months--;
            start = anchor.AddMonths(months);
        }
        return new(start, anchor.AddMonths(months + 1));
    }

    public static BillingPeriod Containing(DateOnly anchor, DateTimeOffset instant) =>
        Containing(anchor, DateOnly.FromDateTime(instant.UtcDateTime));

    public BillingPeriod Previous(DateOnly anchor) => Containing(anchor, Start.AddDays(-1));

    public DateTimeOffset StartInstant => new(Start.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);
    public DateTimeOffset EndInstant => new(EndExclusive.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);

    public bool Contains(DateTimeOffset instant) => instant >= StartInstant && instant < EndInstant;

    public int DaysLeft(DateTimeOffset now) => Math.Max(0, (int)Math.Ceiling((EndInstant - now).TotalDays));
    public int Days => EndExclusive.DayNumber - Start.DayNumber;
}
