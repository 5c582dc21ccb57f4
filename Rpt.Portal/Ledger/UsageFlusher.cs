using Microsoft.Extensions.Options;
using Rpt.Portal.Data;

namespace Rpt.Portal.Ledger;

/// <summary>Runs <see cref="FlushUsage"/> every <see cref="LedgerOptions.FlushInterval"/>, and once more on shutdown.</summary>
/// <remarks>With several instances, the one holding the flush lease flushes; another takes it over within a tick of its death.</remarks>
public sealed class UsageFlusher(FlushUsage flush, TimeProvider time, IOptions<LedgerOptions> options, ILogger<UsageFlusher> logger, IWorkLeases leases) : BackgroundService
{
    private PeriodicTimer? _timer;

    // The timer starts with the service, not when the thread pool gets round to ExecuteAsync.
    public override Task StartAsync(CancellationToken cancellationToken)
    {
        _timer = new PeriodicTimer(options.Value.FlushInterval, time);
        return base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = _timer!;
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                await RunOnceAsync(stoppingToken);
            }
        }
        catch (OperationCanceledException) { }
        await RunOnceAsync(CancellationToken.None);
    }

    private async Task RunOnceAsync(CancellationToken cancellationToken)
    {
        try
        {
            if (!await leases.HoldAsync(Lease.Flush, cancellationToken)) return;
            FlushOutcome outcome;
            do
            {
                outcome = await flush.ExecuteAsync(cancellationToken);
                if (outcome.Events > 0)
                    logger.LogDebug("Flushed {Events} events through seq {Through} into {Entries} entries", outcome.Events, outcome.ThroughSeq, outcome.Entries);
            } while (outcome.Events >= options.Value.MaxEventsPerFlush);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Nothing is lost: unflushed events stay in the audit table and in the balance, and the next tick retries.
            logger.LogError(ex, "Usage flush failed; it will be retried");
        }
    }
}
