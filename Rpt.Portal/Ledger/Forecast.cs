using Rpt.Portal.Metering;
namespace Rpt.Portal.Ledger;

/// <summary>Where the period is heading at the current burn rate.</summary>
public sealed record Forecast(decimal CreditsPerDay, long ProjectedConsumed, DateTimeOffset? RunOutAt, bool RunsOutBeforePeriodEnd)
{
    /// <summary>
    /// The burn rate is consumption so far over the time elapsed in the period, counted as at least one day: in the
    /// first hours a few calls would otherwise read as thousands of credits a day, and the dashboard's daily bars
    /// and its forecast would disagree.
    /// </summary>
    public static Forecast Of(Balance balance, DateTimeOffset now)
    {
        var elapsedDays = (decimal)Math.Max((now - balance.Period.StartInstant).TotalDays, 1.0);
        var perDay = Credit.ToCredits(balance.ConsumedMicroCredits) / elapsedDays;
        var projected = (long)Math.Floor(perDay * balance.Period.Days);
        if (balance.Unlimited || perDay <= 0) return new(Math.Round(perDay, 2), projected, null, false);
        var remaining = Credit.ToCredits(balance.AllocatedMicroCredits - balance.ConsumedMicroCredits);
        var runOut = remaining <= 0 ? now : now.AddDays((double)(remaining / perDay));
        return new(Math.Round(perDay, 2), projected, runOut, runOut < balance.Period.EndInstant);
    }
}
