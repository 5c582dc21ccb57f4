using Microsoft.Extensions.Options;
using Rpt.Portal.Data;

namespace Rpt.Portal.Ledger;

public sealed class RenewalScheduler(RenewPeriods renew, TimeProvider time, IOptions<LedgerOptions> options,
    ILogger<RenewalScheduler> logger, IWorkLeases leases) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.RenewalInterval, time);
        do
        {
            try
            {
                if (!await leases.HoldAsync(Lease.Renewals, stoppingToken)) continue;
                var n = await renew.ExecuteAsync(stoppingToken);
                if (n > 0) logger.LogInformation("Renewed {Count} billing periods", n);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                logger.LogError(ex, "Renewing billing periods failed; it will be retried");
            }
        } while (await WaitAsync(timer, stoppingToken));
    }

    private static async Task<bool> WaitAsync(PeriodicTimer timer, CancellationToken ct)
    {
        try { return await timer.WaitForNextTickAsync(ct); }
        catch (OperationCanceledException) { return false; }
    }
}
