using Microsoft.Extensions.Options;

namespace Rpt.Portal.Data;

/// <summary>
/// The ingestion writer never checkpoints on its commits (that would put the copy on the path every
/// event waits for); this service does it on its own schedule, passively, so the WAL does not grow.
/// </summary>
public sealed class WalCheckpointer(SqliteDatabase database, TimeProvider time, IOptions<DataOptions> options,
    ILogger<WalCheckpointer> logger) : PeriodicJob(time, logger)
{
    protected override TimeSpan Interval => options.Value.CheckpointInterval;
    protected override string FailureMessage => "WAL checkpoint failed";
    protected override void RunOnce() => database.Checkpoint();
}
