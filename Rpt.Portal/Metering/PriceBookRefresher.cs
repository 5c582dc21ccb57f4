using Microsoft.Extensions.Options;

namespace Rpt.Portal.Metering;

/// <summary>
/// Picks up prices and conversion rules that another process (the operator command line) added to the
/// database, so that ingestion rates with them from their effective instant on.
/// </summary>
public sealed class PriceBookRefresher(PriceBookProvider prices, TimeProvider time, IOptions<MeteringOptions> options,
    ILogger<PriceBookRefresher> logger) : BackgroundService
{
    private PeriodicTimer? _timer;

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        _timer = new PeriodicTimer(options.Value.PriceBookRefreshInterval, time);
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
                    prices.RefreshIfChanged();
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    logger.LogError(ex, "Refreshing the price book failed; the prices loaded before stay in effect and the next tick retries");
                }
            }
        }
        catch (OperationCanceledException) { }
    }
}
