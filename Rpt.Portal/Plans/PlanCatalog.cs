namespace Rpt.Portal.Plans;

/// <summary>The catalog Rpt Portal starts with; operators edit it afterwards.</summary>
public static class PlanCatalog
{
    public const string Free = "free";

    public static IReadOnlyList<Plan> Seed() =>
    [
        new("free", "Free", 0m, 1_000, OveragePolicy.Blocked, null, 0,
        [
            Bool("email_alerts", true), Bool("csv_export", false), Bool("webhook_alerts", false),
            Bool("anomaly_hints", false), Qty("max_api_keys", 2), Qty("team_seats", 1), Custom("model_access_tier", "basic"),
        ]),
        new("starter", "Starter", 29m, 5_000, OveragePolicy.Blocked, null, 1,
        [
            Bool("email_alerts", true), Bool("csv_export", true), Bool("webhook_alerts", false),
            Bool("anomaly_hints", false), Qty("max_api_keys", 5), Qty("team_seats", 3), Custom("model_access_tier", "standard"),
        ]),
        new("professional", "Professional", 99m, 25_000, OveragePolicy.Overage, 0.012m, 2,
        [
            Bool("email_alerts", true), Bool("csv_export", true), Bool("webhook_alerts", true),
            Bool("anomaly_hints", true), Qty("max_api_keys", 10), Qty("team_seats", 10), Custom("model_access_tier", "standard"),
        ]),
        new("business", "Business", 399m, 100_000, OveragePolicy.Overage, 0.010m, 3,
        [
            Bool("email_alerts", true), Bool("csv_export", true), Bool("webhook_alerts", true),
            Bool("anomaly_hints", true), Qty("max_api_keys", 25), Qty("team_seats", 20), Custom("model_access_tier", "all"),
        ]),
        new("enterprise", "Enterprise", null, null, OveragePolicy.Unlimited, null, 4,
        [
            Bool("email_alerts", true), Bool("csv_export", true), Bool("webhook_alerts", true),
            Bool("anomaly_hints", true), Qty("max_api_keys", 100), Qty("team_seats", 1000), Custom("model_access_tier", "all"),
        ]),
    ];

    private static Entitlement Bool(string key, bool on) => new(key, EntitlementKind.Boolean, on ? "true" : "false");
    private static Entitlement Qty(string key, long n) => new(key, EntitlementKind.Quantity, n.ToString(System.Globalization.CultureInfo.InvariantCulture));
    private static Entitlement Custom(string key, string value) => new(key, EntitlementKind.Custom, value);
}
