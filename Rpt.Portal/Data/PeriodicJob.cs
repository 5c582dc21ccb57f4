namespace Rpt.Portal.Data;

/// <summary>
/// A hosted service that does one thing on its own schedule (TimeProvider's clock): a failure is logged and the
/// next tick tries again. The timer starts with the service, not when the thread pool gets round to it. Work that must
/// happen once across instances names its <see cref="Lease"/>: a tick runs only on the instance that holds it.
/// </summary>
public abstract class PeriodicJob(TimeProvider time, ILogger logger, IWorkLeases? leases = null) : BackgroundService
{
    private PeriodicTimer? _timer;

    protected abstract TimeSpan Interval { get; }

    /// <summary>The lease a tick needs (<see cref="Data.Lease"/>); null when every instance does the work for itself (its cache, its file).</summary>
    protected virtual string? Lease => null;

    /// <summary>What the job does each tick, awaited: a tick that waits for the database or the network holds no pool thread
    /// (blocking on its own awaits would hold one, and its continuations would need another).</summary>
    protected abstract Task RunOnceAsync(CancellationToken cancellationToken);

    /// <summary>Said in the log when a tick fails.</summary>
    protected abstract string FailureMessage { get; }

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        if (Lease is not null && leases is null) throw new InvalidOperationException($"{GetType().Name} runs once across instances but was given no {nameof(IWorkLeases)}.");
        _timer = new PeriodicTimer(Interval, time);
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
                    if (Lease is { } lease && !await leases!.HoldAsync(lease, stoppingToken)) continue;
                    await RunOnceAsync(stoppingToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    logger.LogWarning(ex, "{Failure}; the next tick retries", FailureMessage);
                }
            }
        }
        catch (OperationCanceledException) { }
    }
}
