using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Rpt.Portal.Data;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Billing.Marketplace;

/// <summary>
/// Reports a marketplace tenant's consumption to AWS as whole credits (docs/RULES.md, "AWS Marketplace"): every
/// <c>ReportInterval</c>, a record of floor(consumed µcr since linking / 10^6) − what the log already counts, written
/// to <c>marketplace_reports</c> before it is sent and re-sent unchanged until AWS answers it (Success, or
/// DuplicateRecord for a re-send of a record AWS had). A record AWS could not take within its six hours counts for
/// nothing and its credits go into the next one, so once a report has been answered, Σ counted = floor(consumed).
/// </summary>
public sealed class ReportMarketplaceUsage(IDbContextFactory<ApplicationDbContext> dbFactory, PortalDatabase database, IUsageStore usage,
    AwsMeteringClient client, IOptions<AwsMarketplaceOptions> options, TimeProvider time, ILogger<ReportMarketplaceUsage> logger)
{
    /// <summary>AWS takes records up to six hours old; one not answered this close to that is given up and carried.</summary>
    public static readonly TimeSpan SendWithin = TimeSpan.FromHours(6) - TimeSpan.FromMinutes(5);

    public const int BatchSize = 25;

    /// <summary>µcr the tenant has consumed in all (its running totals, every period), exact in 128 bits.</summary>
    public Int128 ConsumedMicroCredits(string tenantId)
    {
        using var connection = database.Open();
        using var tx = database.BeginRead(connection);
        return usage.BillableTotalsPerPeriod(connection, tx, tenantId).Values.Aggregate((Int128)0, (sum, v) => sum + v);
    }

    /// <summary>Writes the records that are due, gives up the ones too old to send, and sends what is pending.</summary>
    public async Task<(int Written, int Sent)> ExecuteAsync(CancellationToken cancellationToken = default)
    {
        var o = options.Value;
        if (!o.Enabled) return (0, 0);
        var now = time.GetUtcNow();
        var written = 0;
        await using (var db = await dbFactory.CreateDbContextAsync(cancellationToken))
        {
            // Too old to send: AWS would refuse them. They count for nothing; the next record carries their credits.
            var tooOld = await db.MarketplaceReports.Where(r => r.Status == MarketplaceReportStatus.Pending && r.Timestamp < now - SendWithin).ToListAsync(cancellationToken);
            foreach (var r in tooOld)
            {
                r.Expire($"not answered within six hours of {r.Timestamp:u}; its credits are carried into the next record", now);
                logger.LogWarning("Marketplace record {Tenant}#{Sequence} ({Quantity} credits) could not be sent within six hours; carried into the next record",
                    r.TenantId, r.Sequence, r.Quantity);
            }
            await db.SaveChangesAsync(cancellationToken);
            var carried = tooOld.Select(r => r.TenantId).ToHashSet();

            var accounts = await db.MarketplaceAccounts.AsNoTracking().Where(a => a.ReportingStopped == null).ToListAsync(cancellationToken);
            foreach (var account in accounts)
            {
                var last = await db.MarketplaceReports.AsNoTracking().Where(r => r.TenantId == account.TenantId)
                    .OrderByDescending(r => r.Sequence).FirstOrDefaultAsync(cancellationToken);
                var due = last is null || now - last.Timestamp >= o.ReportInterval || carried.Contains(account.TenantId)
                    || account.Status is MarketplaceStatus.UnsubscribePending or MarketplaceStatus.Unsubscribed;
                if (!due) continue;
                var consumed = ConsumedMicroCredits(account.TenantId) - account.BaselineMicroCredits;
                var whole = checked((long)(consumed / Credit.MicroPerCredit));
                var counted = await db.MarketplaceReports.Where(r => r.TenantId == account.TenantId
                        && r.Status != MarketplaceReportStatus.Expired && r.Status != MarketplaceReportStatus.NotSubscribed)
                    .SumAsync(r => (long?)r.Quantity, cancellationToken) ?? 0;
                var quantity = whole - counted;
                if (quantity <= 0) continue;
                var timestamp = DateTimeOffset.FromUnixTimeSeconds(now.ToUnixTimeSeconds());
                if (last is not null && timestamp <= last.Timestamp) timestamp = last.Timestamp.AddSeconds(1);
                db.MarketplaceReports.Add(new MarketplaceReport(account.TenantId, (last?.Sequence ?? 0) + 1, account.CustomerAwsAccountId,
                    account.ProductCode, o.Dimension, timestamp, quantity, counted + quantity, now));
                try
                {
                    await db.SaveChangesAsync(cancellationToken);
                    written++;
                }
                catch (DbUpdateException)
                {
                    db.ChangeTracker.Clear(); // another instance wrote this tenant's record first
                }
            }
        }
        return (written, await SendAsync(cancellationToken));
    }

    /// <summary>Sends the pending records that are due, 25 to a call, and writes each answer.</summary>
    public async Task<int> SendAsync(CancellationToken cancellationToken = default)
    {
        var now = time.GetUtcNow();
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var stopped = await db.MarketplaceAccounts.Where(a => a.ReportingStopped != null).Select(a => a.TenantId).ToListAsync(cancellationToken);
        var due = (await db.MarketplaceReports.Where(r => r.Status == MarketplaceReportStatus.Pending && r.NextAttemptAt <= now)
                .OrderBy(r => r.CreatedAt).ThenBy(r => r.TenantId).ThenBy(r => r.Sequence).Take(1000).ToListAsync(cancellationToken))
            .Where(r => !stopped.Contains(r.TenantId)).ToList();
        var answered = 0;
        foreach (var batch in due.GroupBy(r => r.ProductCode).SelectMany(g => g.Chunk(BatchSize)))
        {
            var at = time.GetUtcNow();
            BatchMeterAnswer answer;
            try
            {
                answer = await client.BatchMeterUsageAsync(batch[0].ProductCode, batch.Select(ToRecord).ToList(), cancellationToken);
            }
            catch (Exception ex) when (ex is AwsServiceException or HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
            {
                foreach (var r in batch) r.Retry(ex.Message, at);
                logger.LogWarning("Sending {Count} marketplace records failed; they are sent again unchanged: {Error}", batch.Length, ex.Message);
                await db.SaveChangesAsync(CancellationToken.None);
                continue;
            }

            var byRecord = batch.ToDictionary(ToRecord);
            foreach (var result in answer.Results)
            {
                if (!byRecord.Remove(result.Record, out var r)) continue;
                switch (result.Status)
                {
                    case "Success":
                        r.Answered(MarketplaceReportStatus.Accepted, result.MeteringRecordId, at);
                        answered++;
                        break;
                    case "DuplicateRecord":
                        r.Answered(MarketplaceReportStatus.Duplicate, result.MeteringRecordId, at);
                        answered++;
                        break;
                    case "CustomerNotSubscribed":
                        r.Answered(MarketplaceReportStatus.NotSubscribed, result.MeteringRecordId, at);
                        var account = await db.MarketplaceAccounts.FirstAsync(a => a.TenantId == r.TenantId, cancellationToken);
                        account.StopReporting($"AWS answered CustomerNotSubscribed for record #{r.Sequence} ({r.Quantity} credits) at {at:u}", at);
                        logger.LogError("AWS Marketplace: customer {Account} of tenant {Tenant} is not subscribed; reporting for the tenant stopped",
                            r.CustomerAwsAccountId, r.TenantId);
                        break;
                    default:
                        r.Retry($"AWS answered status '{result.Status}'", at);
                        break;
                }
            }
            // UnprocessedRecords, and any record the answer did not mention: the same record again, after a pause.
            foreach (var r in byRecord.Values)
                r.Retry(answer.Unprocessed.Contains(ToRecord(r)) ? "unprocessed by AWS (UnprocessedRecords)" : "not in AWS's answer", at);
            await db.SaveChangesAsync(CancellationToken.None);
        }
        return answered;
    }

    private static MeterRecord ToRecord(MarketplaceReport r) => new(r.Timestamp, r.CustomerAwsAccountId, r.Dimension, r.Quantity);

    /// <summary>A tenant's report log, newest first, for the operator.</summary>
    public async Task<IReadOnlyList<MarketplaceReport>> LogAsync(string tenantId, int take = 200, CancellationToken cancellationToken = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        return await db.MarketplaceReports.AsNoTracking().Where(r => r.TenantId == tenantId).OrderByDescending(r => r.Sequence).Take(take).ToListAsync(cancellationToken);
    }
}

/// <summary>Runs <see cref="ReportMarketplaceUsage"/> on one instance every <c>SendInterval</c>.</summary>
public sealed class MarketplaceReportScheduler(ReportMarketplaceUsage report, IOptions<AwsMarketplaceOptions> options, TimeProvider time,
    ILogger<MarketplaceReportScheduler> logger, IWorkLeases leases) : PeriodicJob(time, logger, leases)
{
    protected override string? Lease => Data.Lease.MarketplaceReports;
    protected override TimeSpan Interval => options.Value.SendInterval;
    protected override string FailureMessage => "Reporting marketplace usage failed";

    protected override async Task RunOnceAsync(CancellationToken cancellationToken)
    {
        if (!options.Value.Enabled) return;
        var (written, sent) = await report.ExecuteAsync();
        if (written + sent > 0) logger.LogInformation("Marketplace records: {Written} written, {Sent} answered", written, sent);
    }
}
