using Microsoft.Extensions.Options;

namespace Rpt.Portal.Data.Sqlite;

/// <summary>
/// The ingestion writer never checkpoints on its commits (that would put the copy on the path every
/// event waits for); this service does it on its own schedule, passively, and once the WAL passes
/// <see cref="DataOptions.WalRestartMiB"/> asks the writer to start it over between two commits, so the file stays
/// bounded under sustained ingestion.
/// </summary>
public sealed class WalCheckpointer(SqliteDatabase database, TimeProvider time, IOptions<DataOptions> options,
    ILogger<WalCheckpointer> logger) : PeriodicJob(time, logger)
{
    protected override TimeSpan Interval => options.Value.CheckpointInterval;
    protected override string FailureMessage => "WAL checkpoint failed";
    protected override Task RunOnceAsync(CancellationToken cancellationToken)
    {
        var result = database.Checkpoint(options.Value.WalRestartMiB * 1024L * 1024);
        if (result.RestartRequested)
            logger.LogDebug("WAL checkpoint: {Copied} of {Frames} frames copied; the writer starts the WAL over between two commits", result.CopiedFrames, result.LogFrames);
        return Task.CompletedTask;
    }
}
