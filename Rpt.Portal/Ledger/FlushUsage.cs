using System.Globalization;
using System.Security.Cryptography;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Rpt.Portal.Data;

namespace Rpt.Portal.Ledger;

public sealed record FlushOutcome(long FromSeq, long ThroughSeq, int Entries, long Events)
{
    public static readonly FlushOutcome Nothing = new(0, 0, 0, 0);
}

/// <summary>
/// Turns the usage accepted since the last flush into one consumption entry per tenant and period,
/// each naming the range of audit records it covers and carrying their digest. The audit records are
/// read outside the write lock (they never change), so a flush holds up ingestion only for the appends.
/// </summary>
public sealed class FlushUsage(SqliteDatabase database, IDbContextFactory<ApplicationDbContext> dbFactory, TimeProvider time,
    IOptions<LedgerOptions> options, LedgerEvents events)
{
    private readonly SemaphoreSlim _gate = new(1, 1);

    public async Task<FlushOutcome> ExecuteAsync(CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            return await FlushOnceAsync(cancellationToken);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<FlushOutcome> FlushOnceAsync(CancellationToken cancellationToken)
    {
        long last, through;
        var groups = new Dictionary<(string Tenant, string Period), Group>();
        using (var connection = database.Open())
        using (var readTx = connection.BeginTransaction(deferred: true))
        {
            last = connection.ScalarLong(readTx, "SELECT COALESCE(MAX(through_seq), 0) FROM flush_runs");
            var max = connection.ScalarLong(readTx, "SELECT COALESCE(MAX(seq), 0) FROM usage_events");
            if (max <= last) return FlushOutcome.Nothing;
            through = Math.Min(max, last + options.Value.MaxEventsPerFlush);

            using var cmd = connection.CreateCommand();
            cmd.Transaction = readTx;
            cmd.CommandText = $"SELECT tenant_id, period_start, billable, micro_credits, {AuditCanonical.Expression} FROM usage_events WHERE seq > $from AND seq <= $to ORDER BY seq";
            cmd.Parameters.AddWithValue("$from", last);
            cmd.Parameters.AddWithValue("$to", through);
            using var reader = cmd.ExecuteReader();
            var buffer = new byte[1024];
            (string Tenant, string Period) lastKey = default;
            Group? g = null;
            while (reader.Read())
            {
                var tenant = reader.GetString(0);
                var period = reader.GetString(1);
                if (g is null || tenant != lastKey.Tenant || period != lastKey.Period)
                {
                    lastKey = (tenant, period);
                    if (!groups.TryGetValue(lastKey, out g)) groups[lastKey] = g = new Group();
                }
                g.Events++;
                if (reader.GetInt64(2) == 1) g.MicroCredits += reader.GetInt64(3);
                AuditCanonical.Append(g.Digest, reader.GetString(4), ref buffer);
            }
        }

        var now = time.GetUtcNow();
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        await using var tx = await db.Database.BeginTransactionAsync(cancellationToken);
        var lastNow = await db.FlushRuns.MaxAsync(f => (long?)f.ThroughSeq, cancellationToken) ?? 0;
        if (lastNow != last) return FlushOutcome.Nothing; // another process flushed meanwhile; its entries stand

        var entries = 0;
        long eventCount = 0;
        var tenants = new HashSet<string>();
        foreach (var ((tenant, period), g) in groups.OrderBy(k => k.Key.Tenant, StringComparer.Ordinal).ThenBy(k => k.Key.Period, StringComparer.Ordinal))
        {
            eventCount += g.Events;
            var digest = Convert.ToHexStringLower(g.Digest.GetHashAndReset());
            if (g.MicroCredits == 0) continue; // only free calls: nothing to consume, the range stays covered by the flush run
            await LedgerAppender.AppendAsync(db, tenant, EntryKind.Consumption, EntrySource.Usage, g.MicroCredits,
                DateOnly.ParseExact(period, "yyyy-MM-dd", CultureInfo.InvariantCulture), $"flush:{through}:{period}",
                $"Usage of {g.Events} calls", now, last, through, g.Events, digest, cancellationToken);
            entries++;
            tenants.Add(tenant);
        }
        db.Database.ExecuteSql($"INSERT INTO flush_runs (through_seq, entries, flushed_at) VALUES ({through}, {entries}, {now.ToUnixTimeMilliseconds()})");
        await tx.CommitAsync(cancellationToken);
        if (tenants.Count > 0) events.RaiseUsageFlushed(tenants);
        return new FlushOutcome(last, through, entries, eventCount);
    }


    private sealed class Group
    {
        public long Events;
        public long MicroCredits;
        public IncrementalHash Digest { get; } = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    }
}

/// <summary>Runs <see cref="FlushUsage"/> every <see cref="LedgerOptions.FlushInterval"/>, and once more on shutdown.</summary>
public sealed class UsageFlusher(FlushUsage flush, Metering.PriceBookProvider prices, SqliteDatabase database, TimeProvider time,
    IOptions<LedgerOptions> options, ILogger<UsageFlusher> logger) : BackgroundService
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
            FlushOutcome outcome;
            do
            {
                outcome = await flush.ExecuteAsync(cancellationToken);
                if (outcome.Events > 0)
                    logger.LogDebug("Flushed {Events} events through seq {Through} into {Entries} entries", outcome.Events, outcome.ThroughSeq, outcome.Entries);
            } while (outcome.Events >= options.Value.MaxEventsPerFlush);
            prices.RefreshIfChanged();
            database.Checkpoint();
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Nothing is lost: unflushed events stay in the audit table and in the balance, and the next tick retries.
            logger.LogError(ex, "Usage flush failed; it will be retried");
        }
    }
}
