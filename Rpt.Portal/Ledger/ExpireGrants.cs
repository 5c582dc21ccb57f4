using System.Data.Common;
using System.Globalization;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Rpt.Portal.Data;
using Rpt.Portal.Tenants;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Ledger;

/// <summary>
/// Writes an <c>expiry</c> entry for every grant that lapsed still holding credits (key <c>expiry:{grant seq}</c>,
/// so a grant expires once however often this runs), hash-chained like every entry: the ledger explains where
/// every unused credit went. A grant is expired once its usage is flushed: the run waits two flush intervals
/// past the expiry, and skips a tenant whose flush is lagging. Usage reported later than that for an earlier
/// period is drawn from what is active then, or is overage.
/// </summary>
public sealed class ExpireGrants(IDbContextFactory<ApplicationDbContext> dbFactory, PortalDatabase database, CreditGrants grants,
    IOptions<LedgerOptions> options, TimeProvider time, TenantChanges changes, ILogger<ExpireGrants> logger)
{
    // Grants that lapsed before this instant were all looked at by an earlier run (in memory: a restart looks at all once).
    private long _doneThroughMs = long.MinValue;

    public async Task<int> ExecuteAsync(CancellationToken cancellationToken = default)
    {
        var cutoff = time.GetUtcNow() - 2 * options.Value.FlushInterval - TimeSpan.FromSeconds(5);
        var candidates = new List<string>();
        using (var connection = database.Open())
        using (var cmd = connection.CreateCommand())
        {
            cmd.CommandText = """
                SELECT DISTINCT g.tenant_id FROM ledger_entries g
                WHERE g.kind = 'allocation' AND g.expires_at > @after AND g.expires_at <= @cutoff
                  AND NOT EXISTS (SELECT 1 FROM ledger_entries x WHERE x.tenant_id = g.tenant_id AND x.kind IN ('expiry', 'void') AND x.grant_seq = g.seq)
                  AND NOT EXISTS (SELECT 1 FROM flush_lags l WHERE l.tenant_id = g.tenant_id)
                """;
            cmd.With("after", _doneThroughMs);
            cmd.With("cutoff", cutoff.ToUnixTimeMilliseconds());
            using var r = cmd.ExecuteReader();
            while (r.Read()) candidates.Add(r.GetString(0));
        }
        var written = 0;
        var failed = false;
        foreach (var tenantId in candidates)
        {
            try
            {
                written += await ExpireTenantAsync(tenantId, cutoff, cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                failed = true; // this tenant alone; the next run tries it again
                logger.LogWarning(ex, "Expiring the grants of {Tenant} failed; the next run retries", tenantId);
            }
        }
        if (!failed) _doneThroughMs = cutoff.ToUnixTimeMilliseconds();
        return written;
    }

    private async Task<int> ExpireTenantAsync(string tenantId, DateTimeOffset cutoff, CancellationToken ct)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        var tenant = await db.Tenants.AsNoTracking().FirstAsync(t => t.Id == tenantId, ct);
        var ledger = grants.Derive(tenantId);
        var written = 0;
        foreach (var g in ledger.Grants.Where(g => !g.ExpiryWritten && g.ExpiresAt <= cutoff && g.RemainingMicro > 0).OrderBy(g => g.Seq))
        {
            var lastPeriod = tenant.PeriodAt(g.ExpiresAt!.Value.AddMilliseconds(-1));
            var what = g.Source switch
            {
                EntrySource.TopUp => "top-up",
                EntrySource.Adjustment => "adjustment",
                _ => "plan allocation",
            };
            await LedgerAppender.AppendAsync(db, tenantId, EntryKind.Expiry, g.Source, g.RemainingMicro, lastPeriod.Start,
                $"expiry:{g.Seq}", $"{Credit.FloorCredits(g.RemainingMicro):N0} credits of the {what} #{g.Seq} of {g.EffectiveAt.ToString("d MMM yyyy", CultureInfo.InvariantCulture)} expired unused",
                time.GetUtcNow(), grantSeq: g.Seq, cancellationToken: ct);
            written++;
        }
        await tx.CommitAsync(ct);
        if (written > 0) changes.Publish(TenantChange.GrantChanged, tenantId);
        return written;
    }
}

public sealed class GrantExpiryScheduler(ExpireGrants expire, IOptions<LedgerOptions> options, TimeProvider time, ILogger<GrantExpiryScheduler> logger,
    IWorkLeases leases) : PeriodicJob(time, logger, leases)
{
    protected override string? Lease => Data.Lease.GrantExpiry;

    protected override TimeSpan Interval => options.Value.RenewalInterval;
    protected override string FailureMessage => "Expiring grants failed";

    protected override async Task RunOnceAsync(CancellationToken cancellationToken)
    {
        var n = await expire.ExecuteAsync();
        if (n > 0) logger.LogInformation("Wrote {Count} expiry entries", n);
    }
}
