using Microsoft.Extensions.Options;
using Rpt.Portal.Data;

namespace Rpt.Portal.Metering;

/// <summary>
/// Picks up prices and conversion rules that another process (the operator command line) added to the
/// database, so that ingestion rates with them from their effective instant on.
/// </summary>
public sealed class PriceBookRefresher(PriceBookProvider prices, TimeProvider time, IOptions<MeteringOptions> options,
    ILogger<PriceBookRefresher> logger) : PeriodicJob(time, logger)
{
    protected override TimeSpan Interval => options.Value.PriceBookRefreshInterval;
    protected override string FailureMessage => "Refreshing the price book failed; the prices loaded before stay in effect";
    protected override Task RunOnceAsync(CancellationToken cancellationToken)
    {
        prices.RefreshIfChanged();
        return Task.CompletedTask;
    }
}
