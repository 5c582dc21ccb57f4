namespace Rpt.Portal.Metering;

/// <summary>One validated, rated usage event on its way to <see cref="IUsageStore"/>: the values of its
/// <c>usage_events</c> row (all but <c>seq</c> and <c>received_at</c>, which the store assigns).</summary>
public struct RatedUsage
{
    /// <summary>The event's position in the batch as sent.</summary>
    public int Index;
    public string TenantId, EventId, PeriodStart, Day, Provider, CostUsd;
    public string? Model, Meter, Quantity, Feature, JobId, UserId, Project, ApiKeyId;
    public long OccurredAtMs, QuantityMicro, InputTokens, OutputTokens, CachedInputTokens, PriceId, RuleId, MicroCredits;
    public bool Failed, Internal;

    public readonly bool Billable => !Failed && !Internal;
    public readonly string Category => UsageCategory.Of(Failed, Internal);
    public readonly string Status => Failed ? UsageStatusText.Failed : UsageStatusText.Succeeded;
    /// <summary>The model, or the meter of a non-token meter: the name usage is totalled under.</summary>
    public readonly string Name => Model ?? Meter!;
    public readonly long TotalTokens => InputTokens + OutputTokens + CachedInputTokens;
}
