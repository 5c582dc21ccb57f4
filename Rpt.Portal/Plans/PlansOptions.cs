using System.ComponentModel.DataAnnotations;

namespace Rpt.Portal.Plans;

/// <summary>Rpt:Plans.</summary>
public sealed class PlansOptions
{
    /// <summary>How long a quota check waits for the ledger before it fails open.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:00:30", ErrorMessage = "Rpt:Plans:QuotaCheckTimeout must be between 10 ms and 30 s.")]
    public TimeSpan QuotaCheckTimeout { get; set; } = TimeSpan.FromMilliseconds(250);
}
