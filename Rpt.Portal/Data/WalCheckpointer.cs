using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Rpt.Portal.Data;

/// <summary>
/// The ingestion writer never checkpoints on its commits (that would put the copy on the path every
/// event waits for); this service does it on its own schedule, passively, so the WAL does not grow.
/// </summary>
public sealed class WalCheckpointer(SqliteDatabase database, TimeProvider time, IOptions<DataOptions> options,
    ILogger<WalCheckpointer> logger) : BackgroundService
{
    private PeriodicTimer? _timer;

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        _timer = new PeriodicTimer(options.Value.CheckpointInterval, time);
        return base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = _timer!;
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    database.Checkpoint();
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    logger.LogWarning(ex, "WAL checkpoint failed; the next tick retries");
                }
            }
        }
        catch (OperationCanceledException) { }
    }
}
