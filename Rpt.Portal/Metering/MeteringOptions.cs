using System.ComponentModel.DataAnnotations;

namespace Rpt.Portal.Metering;

/// <summary>Limits of usage ingestion (Rpt:Metering).</summary>
public sealed class MeteringOptions
{
    [Range(1, 100_000, ErrorMessage = "Rpt:Metering:MaxBatchSize must be between 1 and 100000.")]
    public int MaxBatchSize { get; set; } = 10_000;

    /// <summary>How far in the future an occurred_at may lie (clock skew of the sender).</summary>
    [Range(typeof(TimeSpan), "00:00:00", "1.00:00:00", ErrorMessage = "Rpt:Metering:MaxFutureSkew must be between 0 and 1 day.")]
    public TimeSpan MaxFutureSkew { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Events written in one group commit at most.</summary>
    [Range(100, 1_000_000, ErrorMessage = "Rpt:Metering:MaxEventsPerCommit must be between 100 and 1000000.")]
    public int MaxEventsPerCommit { get; set; } = 50_000;

    /// <summary>How often prices added by another process are picked up.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00", ErrorMessage = "Rpt:Metering:PriceBookRefreshInterval must be between 1 s and 1 hour.")]
    public TimeSpan PriceBookRefreshInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>A tenant's rated usage in one billing period, in µcr; an operator may set it lower than the limit of docs/RULES.md, never higher.</summary>
    [Range(typeof(long), "1", "100000000000000000", ErrorMessage = "Rpt:Metering:MaxMicroCreditsPerTenantPeriod must be between 1 and 10^17.")]
    public long MaxMicroCreditsPerTenantPeriod { get; set; } = UsageLimits.MaxMicroCreditsPerTenantPeriod;

    /// <summary>A tenant's tokens in one billing period; at most 10^15.</summary>
    [Range(typeof(long), "1", "1000000000000000", ErrorMessage = "Rpt:Metering:MaxTokensPerTenantPeriod must be between 1 and 10^15.")]
    public long MaxTokensPerTenantPeriod { get; set; } = UsageLimits.MaxTokensPerTenantPeriod;
}
