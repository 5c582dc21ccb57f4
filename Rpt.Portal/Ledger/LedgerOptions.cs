using System.ComponentModel.DataAnnotations;

namespace Rpt.Portal.Ledger;

/// <summary>Rpt:Ledger.</summary>
public sealed class LedgerOptions
{
    /// <summary>How often accumulated usage becomes consumption entries.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "01:00:00", ErrorMessage = "Rpt:Ledger:FlushInterval must be between 100 ms and 1 hour.")]
    public TimeSpan FlushInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How often the renewal of billing periods is checked.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00", ErrorMessage = "Rpt:Ledger:RenewalInterval must be between 1 s and 1 day.")]
    public TimeSpan RenewalInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Events covered by one flush at most; a larger backlog is flushed over several runs.</summary>
    [Range(1_000, 100_000_000, ErrorMessage = "Rpt:Ledger:MaxEventsPerFlush must be between 1000 and 100000000.")]
    public int MaxEventsPerFlush { get; set; } = 2_000_000;
}
