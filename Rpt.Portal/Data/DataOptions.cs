using System.ComponentModel.DataAnnotations;

namespace Rpt.Portal.Data;

/// <summary>Rpt:Data.</summary>
public sealed class DataOptions
{
    /// <summary>How often committed WAL pages are copied back into the database file.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "01:00:00", ErrorMessage = "Rpt:Data:CheckpointInterval must be between 100 ms and 1 hour.")]
    public TimeSpan CheckpointInterval { get; set; } = TimeSpan.FromSeconds(5);
}
