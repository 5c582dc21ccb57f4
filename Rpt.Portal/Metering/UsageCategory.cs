namespace Rpt.Portal.Metering;

/// <summary>
/// How an accepted call counts: <see cref="Billable"/> against the balance, <see cref="Internal"/> rated but
/// reported apart, <see cref="Failed"/> free. The words are stored in <c>usage_totals.category</c>.
/// </summary>
public static class UsageCategory
{
    public const string Billable = "billable";
    public const string Internal = "internal";
    public const string Failed = "failed";

    public static string Of(bool failed, bool @internal) => failed ? Failed : @internal ? Internal : Billable;
}

/// <summary>The words stored in <c>usage_events.status</c> and used by the API.</summary>
public static class UsageStatusText
{
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";

    public static string Of(UsageStatus status) => status == UsageStatus.Failed ? Failed : Succeeded;
    public static UsageStatus Parse(string text) => text == Failed ? UsageStatus.Failed : UsageStatus.Succeeded;
}
