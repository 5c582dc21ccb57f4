namespace Rpt.Portal.Data;

/// <summary>
/// A hosted service that does one thing on its own schedule (TimeProvider's clock): a failure is logged and the
/// next tick tries again. The timer starts with the service, not when the thread pool gets round to it.
/// </summary>
public abstract class PeriodicJob(TimeProvider time, ILogger logger) : BackgroundService
{
    private PeriodicTimer? _timer;

    protected abstract TimeSpan Interval { get; }

    /// <summary>What the job does each tick.</summary>
    protected abstract void RunOnce();

    /// <summary>Said in the log when a tick fails.</summary>
    protected abstract string FailureMessage { get; }

    public override Task StartAsync(CancellationToken cancellationToken)
    {
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
                    RunOnce();
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
