using System.Data.Common;
using System.Globalization;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Rpt.Portal.Data;
using Rpt.Portal.Metering;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Ledger;

public sealed record FlushOutcome(long FromSeq, long ThroughSeq, int Entries, long Events, IReadOnlyList<string> LaggingTenants)
{
    public static readonly FlushOutcome Nothing = new(0, 0, 0, 0, []);
}

/// <summary>
/// Turns the usage accepted since the last flush into one consumption entry per tenant and period,
/// each naming the range of audit records it covers and carrying their digest. The audit records are
/// read outside the write lock (they never change), so a flush holds up ingestion only for the appends.
/// One tenant never holds back another: a tenant whose entries cannot be written is rolled back alone,
/// recorded as lagging (<see cref="FlushLag"/>) and retried by itself on every later flush.
/// </summary>
public sealed class FlushUsage(PortalDatabase database, IUsageStore usage, IDbContextFactory<ApplicationDbContext> dbFactory, TimeProvider time,
    IOptions<LedgerOptions> options, TenantChanges changes, ILogger<FlushUsage> logger, Observability.PortalMetrics metrics)
{
    private readonly SemaphoreSlim _gate = new(1, 1);

    public async Task<FlushOutcome> ExecuteAsync(CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            var outcome = await FlushOnceAsync(cancellationToken);
            await CatchUpLaggingAsync(cancellationToken);
            metrics.FlushDuration.Record(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds);
            metrics.FlushedEvents.Add(outcome.Events);
            RecordState();
            return outcome;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>What is left for the next run, for the operator's dashboard: two indexed reads after each run.</summary>
    private void RecordState()
    {
        using var connection = database.Open();
        using var tx = database.BeginRead(connection);
        var lagging = connection.ScalarLong(tx, "SELECT COUNT(*) FROM flush_lags");
        var watermark = connection.ScalarLong(tx, "SELECT COALESCE(MAX(through_seq), 0) FROM flush_runs");
        metrics.FlushState(lagging, usage.MaxSeq(connection, tx) - watermark);
    }

    private async Task<FlushOutcome> FlushOnceAsync(CancellationToken cancellationToken)
    {
        long last, through;
        Dictionary<(string Tenant, string Period), Group> groups;
        HashSet<string> lagging;
        using (var connection = database.Open())
        {
            using (var readTx = database.BeginRead(connection))
            {
                last = connection.ScalarLong(readTx, "SELECT COALESCE(MAX(through_seq), 0) FROM flush_runs");
                var max = usage.MaxSeq(connection, readTx);
                if (max <= last) return FlushOutcome.Nothing;
                through = Math.Min(max, last + options.Value.MaxEventsPerFlush);
                lagging = LaggingTenants(connection, readTx);
            }
            groups = Read(connection, last, through, null, lagging);
        }

        var now = time.GetUtcNow();
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        await using var tx = await db.Database.BeginTransactionAsync(cancellationToken);
        // Under the flush lock, one process at a time: the watermark read here is the one this flush follows.
        await WorkLock.TakeAsync(db, WorkLock.Flush, cancellationToken);
        var lastNow = await db.FlushRuns.MaxAsync(f => (long?)f.ThroughSeq, cancellationToken) ?? 0;
        if (lastNow != last) return FlushOutcome.Nothing; // another process flushed meanwhile; its entries stand

        var entries = 0;
        long eventCount = 0;
        var flushed = new HashSet<string>();
        var failed = new List<string>();
        foreach (var tenant in groups.Keys.Select(k => k.Tenant).Distinct().Order(StringComparer.Ordinal))
        {
            var mine = groups.Where(g => g.Key.Tenant == tenant).OrderBy(g => g.Key.Period, StringComparer.Ordinal).ToList();
            eventCount += mine.Sum(g => g.Value.Events);
            await tx.CreateSavepointAsync("tenant", cancellationToken);
            try
            {
                var written = await AppendAsync(db, tenant, mine.Select(g => (g.Key.Period, g.Value)), last, through, now, cancellationToken);
                await tx.ReleaseSavepointAsync("tenant", cancellationToken);
                entries += written;
                if (written > 0) flushed.Add(tenant);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                await tx.RollbackToSavepointAsync("tenant", cancellationToken);
                db.ChangeTracker.Clear();
                logger.LogError(ex, "Flushing the usage of tenant {Tenant} failed; the other tenants are flushed and {Tenant} is retried alone", tenant, tenant);
                db.FlushLags.Add(new FlushLag(tenant, last, ex.GetBaseException().Message, now));
                await db.SaveChangesAsync(cancellationToken);
                failed.Add(tenant);
            }
        }
        db.Database.ExecuteSql($"INSERT INTO flush_runs (through_seq, entries, flushed_at) VALUES ({through}, {entries}, {now.ToUnixTimeMilliseconds()})");
        await tx.CommitAsync(cancellationToken);
        if (flushed.Count > 0) changes.Publish(TenantChange.UsageFlushed, flushed);
        return new FlushOutcome(last, through, entries, eventCount, failed);
    }

    /// <summary>Retries each lagging tenant alone: its usage from where it stopped up to the flushed watermark.</summary>
    private async Task CatchUpLaggingAsync(CancellationToken cancellationToken)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var lags = await db.FlushLags.AsNoTracking().OrderBy(l => l.TenantId).ToListAsync(cancellationToken);
        foreach (var lag in lags)
        {
            var now = time.GetUtcNow();
            try
            {
                await using var tx = await db.Database.BeginTransactionAsync(cancellationToken);
                await WorkLock.TakeAsync(db, WorkLock.Flush, cancellationToken);
                // Another instance may have caught this tenant up while this one waited for the lock.
                if (!await db.FlushLags.AnyAsync(l => l.TenantId == lag.TenantId && l.FromSeq == lag.FromSeq, cancellationToken)) continue;
                var watermark = await db.FlushRuns.MaxAsync(f => (long?)f.ThroughSeq, cancellationToken) ?? 0;
                Dictionary<(string Tenant, string Period), Group> groups;
                using (var connection = database.Open())
                {
                    groups = Read(connection, lag.FromSeq, watermark, lag.TenantId, []);
                }
                await AppendAsync(db, lag.TenantId, groups.OrderBy(g => g.Key.Period, StringComparer.Ordinal).Select(g => (g.Key.Period, g.Value)),
                    lag.FromSeq, watermark, now, cancellationToken);
                db.Database.ExecuteSql($"DELETE FROM flush_lags WHERE tenant_id = {lag.TenantId}");
                await tx.CommitAsync(cancellationToken);
                logger.LogInformation("Tenant {Tenant} caught up: its usage through seq {Through} is in its ledger", lag.TenantId, watermark);
                changes.Publish(TenantChange.UsageFlushed, lag.TenantId);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                db.ChangeTracker.Clear();
                logger.LogError(ex, "Flushing the usage of tenant {Tenant} failed again (since {Since})", lag.TenantId, lag.Since);
                var row = await db.FlushLags.FirstAsync(l => l.TenantId == lag.TenantId, cancellationToken);
                row.Failed(ex.GetBaseException().Message, now);
                await db.SaveChangesAsync(cancellationToken);
                db.ChangeTracker.Clear();
            }
        }
    }

    private static HashSet<string> LaggingTenants(DbConnection connection, DbTransaction tx)
    {
        using var cmd = connection.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = "SELECT tenant_id FROM flush_lags";
        using var r = cmd.ExecuteReader();
        var set = new HashSet<string>(StringComparer.Ordinal);
        while (r.Read()) set.Add(r.GetString(0));
        return set;
    }

    private Dictionary<(string Tenant, string Period), Group> Read(DbConnection connection, long fromSeq, long throughSeq,
        string? tenantId, HashSet<string> skip)
    {
        var groups = new Dictionary<(string Tenant, string Period), Group>();
        (string Tenant, string Period) lastKey = default;
        Group? g = null;
        // Consecutive records nearly always share their tenant and period, and often their job: each text is decoded
        // only when it changes.
        LastText tenants = new(), periods = new(), jobs = new();
        usage.VisitRange(connection, null, fromSeq, throughSeq, tenantId, null, (in AuditRecordView r) =>
        {
            var tenant = tenants.Of(r.TenantId);
            if (skip.Contains(tenant)) return; // a lagging tenant is flushed by its own catch-up
            var period = periods.Of(r.PeriodStart);
            if (g is null || !ReferenceEquals(tenant, lastKey.Tenant) || !ReferenceEquals(period, lastKey.Period))
            {
                lastKey = (tenant, period);
                if (!groups.TryGetValue(lastKey, out g)) groups[lastKey] = g = new Group();
            }
            g.Events++;
            var jobId = r.HasJob ? jobs.Of(r.JobId) : "";
            var job = g.Jobs.TryGetValue(jobId, out var j) ? j : (0L, 0L);
            g.Jobs[jobId] = (job.Item1 + 1, r.Billable ? job.Item2 + r.MicroCredits : job.Item2);
            // Within the per-period limit a sum always fits; a ledger written before the limits existed may not.
            if (r.Billable) g.MicroCredits = g.MicroCredits is { } m ? SafeAdd(m, r.MicroCredits) : null;
            g.Digest.Add(r.Canonical);
        });
        return groups;
    }

    /// <summary>The string of the last UTF-8 text seen, made again only when the text changes.</summary>
    private sealed class LastText
    {
        private byte[] _bytes = [];
        private int _length = -1;
        private string _text = "";

        public string Of(ReadOnlySpan<byte> utf8)
        {
            if (utf8.Length == _length && utf8.SequenceEqual(_bytes.AsSpan(0, _length))) return _text;
            if (_bytes.Length < utf8.Length) _bytes = new byte[Math.Max(utf8.Length, 64)];
            utf8.CopyTo(_bytes);
            _length = utf8.Length;
            return _text = System.Text.Encoding.UTF8.GetString(utf8);
        }
    }

    private static long? SafeAdd(long a, long b)
    {
        var sum = (Int128)a + b;
        return sum > long.MaxValue ? null : (long)sum;
    }

    private static async Task<int> AppendAsync(ApplicationDbContext db, string tenant, IEnumerable<(string Period, Group Group)> groups,
        long fromSeq, long throughSeq, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var written = 0;
        foreach (var (period, g) in groups)
        {
            var digest = g.Digest.HexAndReset();
            g.Digest.Dispose();
            if (g.MicroCredits is not { } micro)
                throw new OverflowException($"the usage of period {period} sums to more than 2^63 µcr, past the per-period limit of {UsageLimits.Number(UsageLimits.MaxMicroCreditsPerTenantPeriod)} µcr");
            if (micro == 0) continue; // only free calls: nothing to consume, the range stays covered by the flush run
            var entry = await LedgerAppender.AppendAsync(db, tenant, EntryKind.Consumption, EntrySource.Usage, micro,
                DateOnly.ParseExact(period, "yyyy-MM-dd", CultureInfo.InvariantCulture), $"flush:{throughSeq}:{period}",
                $"Usage of {g.Events} calls", now, fromSeq, throughSeq, g.Events, digest, cancellationToken: cancellationToken);
            var rank = 0;
            foreach (var (job, (calls, charged)) in g.Jobs.OrderByDescending(j => j.Value.MicroCredits).ThenBy(j => j.Key, StringComparer.Ordinal).Take(LedgerHistory.MaxJobsPerRecord + 1))
                db.EntryJobs.Add(new EntryJob(tenant, entry.Seq, rank++, job.Length == 0 ? null : job, calls, charged));
            await db.SaveChangesAsync(cancellationToken);
            written++;
        }
        return written;
    }

    private sealed class Group
    {
        /// <summary>Calls and charged µcr per job ("" for calls without one).</summary>
        public Dictionary<string, (long Calls, long MicroCredits)> Jobs { get; } = new(StringComparer.Ordinal);
        public long Events;
        public long? MicroCredits = 0;
        public AuditDigest Digest { get; } = new();
    }
}
