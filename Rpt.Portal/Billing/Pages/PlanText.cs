using Rpt.Portal.Components.Shared;
using Rpt.Portal.Plans;

namespace Rpt.Portal.Billing.Pages;

/// <summary>Plans and entitlements in the words of the plans page.</summary>
public static class PlanText
{
    public static string Price(Plan plan) => plan.MonthlyPriceUsd switch
    {
        null => "Contract",
        0m => "$0",
        { } p => Show.PlanPrice(p),
    };

    public static string Credits(Plan plan) => plan.MonthlyCredits is { } c ? $"{Show.Credits(c)} credits a month" : "Unlimited credits";

    public static string PastTheAllocation(Plan plan) => plan.Overage switch
    {
        OveragePolicy.Blocked => "Stops at the allocation: top up or upgrade to go on",
        OveragePolicy.Overage => $"Past the allocation: {Show.Price(plan.OverageUsdPerCredit)} per credit",
        _ => "No allocation to pass",
    };

    public static string Entitlement(Entitlement e) => (e.Key, e.Kind) switch
    {
        ("email_alerts", _) => e.IsEnabled ? "Email alerts" : "No email alerts",
        ("csv_export", _) => e.IsEnabled ? "CSV export of usage" : "No CSV export",
        ("webhook_alerts", _) => e.IsEnabled ? "Webhook alerts" : "No webhook alerts",
        ("anomaly_hints", _) => e.IsEnabled ? "Anomaly hints" : "No anomaly hints",
        ("max_api_keys", _) => $"Up to {Quantity(e)} API keys",
        ("team_seats", _) => Quantity(e) == "1" ? "1 team seat" : $"{Quantity(e)} team seats",
        ("model_access_tier", _) => $"Models: {e.Value}",
        (_, EntitlementKind.Boolean) => e.IsEnabled ? e.Key.Replace('_', ' ') : "No " + e.Key.Replace('_', ' '),
        _ => $"{e.Key.Replace('_', ' ')}: {e.Value}",
    };

    private static string Quantity(Entitlement e) => long.TryParse(e.Value, out var n) ? Show.Count(n) : e.Value;
}
