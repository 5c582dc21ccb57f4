using System.ComponentModel.DataAnnotations;

namespace Rpt.Portal.Metering;

/// <summary>The published conversion rule (Rpt:Credits).</summary>
public sealed class CreditsOptions
{
    [Range(typeof(decimal), "0.000001", "1000000", ErrorMessage = "Rpt:Credits:UsdPerCredit must be between 0.000001 and 1000000.")]
    public decimal UsdPerCredit { get; set; } = 0.01m;

    [Range(typeof(decimal), "0", "10", ErrorMessage = "Rpt:Credits:Overhead must be between 0 and 10 (0.20 is 20 %).")]
    public decimal Overhead { get; set; } = 0.20m;
}

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
}
