using Rpt.Portal.Components.Shared;
using Rpt.Portal.Plans;

namespace Rpt.Portal.Ledger.Pages;

/// <summary>
/// The words every page uses for one balance, so that the header, the gauge, the dashboard and the banner
/// never disagree: past the allocation they all speak of credits over it, never of negative credits left.
/// </summary>
public static class BalanceText
{
    public static bool Over(Balance b) => !b.Unlimited && b.OverageCredits > 0;

    /// <summary>Used up: nothing left on a plan that stops at its allocation, or past it on any plan.</summary>
    public static bool UsedUp(Balance b) => !b.Unlimited && (Over(b) || b.Allocated > 0 && b.Remaining <= 0);

    /// <summary>The app bar's figure: "700 credits left", "1,181 credits over", "Unlimited".</summary>
    public static string Header(Balance b) =>
        b.Unlimited ? "Unlimited"
        : Over(b) ? $"{Show.Credits(b.OverageCredits)} credits over"
        : $"{Show.Credits(b.Remaining ?? 0)} credits left";

    /// <summary>"26,181 of 25,000 credits used (104.7 %)".</summary>
    public static string Used(Balance b) =>
        $"{Show.Credits(b.Consumed)} of {Show.Credits(b.Allocated ?? 0)} credits used ({Show.Percent(b.PercentConsumed)})";

    /// <summary>What happens now that the allocation is used up, in the plan's terms.</summary>
    public static string Consequence(Balance b)
    {
        var renews = Show.Date(b.Period.EndExclusive);
        if (b.Overage == OveragePolicy.Overage)
        {
            var price = b.OverageUsdPerCredit is { } p ? $" at {Show.Price(p)} a credit" : "";
            var cost = b.OverageUsd is { } usd ? $", {Show.Usd(usd)} so far" : "";
            return $"Usage goes on: the {Show.Credits(b.OverageCredits)} credits past the allocation are billed as overage{price}{cost}. The allocation renews on {renews}.";
        }
        return Over(b)
            ? $"{Show.Credits(b.OverageCredits)} credits were used past it by calls already under way. Quota checks refuse new jobs until the allocation renews on {renews} or credits are added."
            : $"Quota checks refuse new jobs until the allocation renews on {renews} or credits are added.";
    }
}
