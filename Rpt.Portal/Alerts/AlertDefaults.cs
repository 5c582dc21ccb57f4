namespace Rpt.Portal.Alerts;

/// <summary>The milestones every tenant starts with: 50 %, 75 % and 90 % of the allocation consumed.</summary>
public static class AlertDefaults
{
    public static readonly IReadOnlyList<int> PercentThresholds = [50, 75, 90];
}
