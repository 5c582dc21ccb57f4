using System.ComponentModel.DataAnnotations;

namespace Rpt.Portal.Data;

/// <summary>Rpt:Data.</summary>
public sealed class DataOptions
{
    /// <summary>How often committed WAL pages are copied back into the database file.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "01:00:00", ErrorMessage = "Rpt:Data:CheckpointInterval must be between 100 ms and 1 hour.")]
    public TimeSpan CheckpointInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Past this size the WAL is started over: under sustained ingestion a passive checkpoint never finds the WAL
    /// fully copied with no reader in it, so without this the file would grow by every byte ever written.
    /// </summary>
    [Range(16, 65536, ErrorMessage = "Rpt:Data:WalRestartMiB must be between 16 and 65536.")]
    public int WalRestartMiB { get; set; } = 128;
}
