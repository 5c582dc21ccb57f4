using System.Buffers;
using System.Data.Common;
using System.Globalization;
using System.IO.Pipelines;
using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Data;
using Rpt.Portal.Metering;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Ledger;

/// <summary>One ledger entry of a statement: every field that enters its hash, as it enters it (docs/LEDGER-FORMAT.md).</summary>
public sealed record StatementEntry(long Seq, string Kind, string Source, long AmountMicroCredits, string PeriodStart, string IdempotencyKey,
    string? Description, long? CoversFromSeq, long? CoversToSeq, long? EventCount, string? EventsDigest, long CreatedAtMs, long? ExpiresAtMs,
    long? GrantSeq, string PrevHash, string Hash);

/// <summary>A point of the chain: an entry's seq and hash (seq 0 and 64 zeros before the first entry).</summary>
public sealed record ChainPoint(long Seq, string Hash);

/// <summary>
/// The period's balance as the statement's entries explain it: allocated = carried_in + the period's allocations − the
/// period's voids; remaining = allocated − consumed − unflushed. A verifier recomputes the sums from the entries.
/// </summary>
public sealed record StatementBalance(long CarriedInMicroCredits, long AllocatedMicroCredits, long ConsumedMicroCredits,
    long UnflushedMicroCredits, long ExpiredMicroCredits, long RemainingMicroCredits, long VoidedMicroCredits);

/// <summary>A billing period as customers read it: its first and its last day.</summary>
public sealed record StatementPeriod(DateOnly Start, DateOnly End);

/// <summary>
/// A period's statement. <see cref="Opening"/> is the chain point just before the first entry listed, <see cref="Closing"/>
/// the last entry listed; the entries run from the period's first to its last without a gap, so an entry of another
/// period written in between (a renewal while the last usage of the period was being flushed) is listed too, with its own
/// <c>period_start</c>. <see cref="Final"/>: the period is over and all its usage is in the ledger.
/// </summary>
public sealed record Statement(string Format, string TenantId, StatementPeriod Period, DateTimeOffset GeneratedAt, bool Final,
    ChainPoint Opening, ChainPoint Closing, ChainPoint ChainHead, StatementBalance Balance, IAsyncEnumerable<StatementEntry> Entries);

/// <summary>A statement read in one snapshot, held open while it is written out.</summary>
public sealed class OpenStatement(Statement statement, params IAsyncDisposable[] resources) : IAsyncDisposable
{
    public Statement Statement { get; } = statement;

    public async ValueTask DisposeAsync()
    {
        foreach (var r in resources) await r.DisposeAsync();
    }
}

/// <summary>What a statement or its records cannot be read for, named for the parameter at fault.</summary>
public sealed record StatementProblem(string Field, string Message, bool NotFound = false);

/// <summary>
/// A period's statement that the customer can verify without us (docs/LEDGER-FORMAT.md): every ledger entry from the
/// period's first to its last, with the fields that enter each hash, the chain point before and after them, the chain
/// head and the period's balance, all read in one snapshot; and, for a consumption entry, the audit records it covers
/// in canonical form, whose bytes hash to its <c>events_digest</c>. Both are streamed: a busy period holds hundreds of
/// thousands of entries.
/// </summary>
public sealed class LedgerStatement(IDbContextFactory<ApplicationDbContext> dbFactory, PortalDatabase database, IUsageStore usage,
    GetBalance balances, CreditGrants grants, TenantDirectory tenants, TimeProvider time)
{
    public const string Format = "rpt-statement/1";

    /// <summary>The billing period containing <paramref name="periodText"/> (yyyy-MM-dd), or why it cannot be used.</summary>
    public (BillingPeriod? Period, StatementProblem? Problem) ResolvePeriod(string tenantId, string? periodText)
    {
        if (string.IsNullOrEmpty(periodText))
            return (null, new("period", "is required: a day of the billing period, yyyy-MM-dd (e.g. the period's first day)."));
        if (periodText.Length > 10 || !DateOnly.TryParseExact(periodText, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day))
            return (null, new("period", $"'{Clip(periodText)}' is not a day written yyyy-MM-dd."));
        var current = tenants.PlanAndPeriod(tenantId);
        if (current is null) return (null, new("period", "the account has no subscription.", NotFound: true));
        if (day >= current.Period.EndExclusive)
            return (null, new("period", $"{periodText} is after the current billing period, which ends {current.Period.End:yyyy-MM-dd}."));
        return (BillingPeriod.Containing(current.Anchor, day), null);
    }

    /// <summary>
    /// Opens the statement of <paramref name="period"/>: its head is read at once, its entries as it is written out, all in
    /// one read transaction that the caller ends by disposing of the result (after the response is written).
    /// </summary>
    public async Task<OpenStatement> OpenAsync(string tenantId, BillingPeriod period, CancellationToken cancellationToken)
    {
        var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var connection = database.Open();
        var tx = database.BeginRead(connection);
        try
        {
            db.Database.SetDbConnection(connection, contextOwnsConnection: false);
            await db.Database.UseTransactionAsync(tx, cancellationToken);
            var statement = ReadHead(connection, tx, tenantId, period);
            var from = statement.Opening.Seq;
            var through = statement.Closing.Seq;
            var entries = db.LedgerEntries.AsNoTracking()
                .Where(e => e.TenantId == tenantId && e.Seq > from && e.Seq <= through)
                .OrderBy(e => e.Seq).AsAsyncEnumerable().Select(Of);
            return new OpenStatement(statement with { Entries = entries }, db, tx, connection);
        }
        catch
        {
            await db.DisposeAsync();
            await tx.DisposeAsync();
            await connection.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// The tenant's consumption entry whose seq is <paramref name="entryText"/>, or why its records cannot be listed.
    /// </summary>
    public async Task<(LedgerEntry? Entry, StatementProblem? Problem)> FindConsumptionAsync(string tenantId, string? entryText, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(entryText)) return (null, new("entry", "is required: the seq of a consumption entry of the statement."));
        if (entryText.Length > 19 || !long.TryParse(entryText, NumberStyles.None, CultureInfo.InvariantCulture, out var seq) || seq < 1)
            return (null, new("entry", $"'{Clip(entryText)}' is not the seq of a ledger entry (a whole number from 1)."));
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var entry = await db.LedgerEntries.AsNoTracking().SingleOrDefaultAsync(e => e.TenantId == tenantId && e.Seq == seq, cancellationToken);
        if (entry is null) return (null, new("entry", $"the ledger has no entry {seq}.", NotFound: true));
        if (entry.Kind != EntryKind.Consumption)
            return (null, new("entry", $"entry {seq} is an {EnumText.ToText(entry.Kind)}; only consumption entries cover audit records."));
        return (entry, null);
    }

    /// <summary>
    /// Streams the canonical forms of the audit records <paramref name="entry"/> covers, back to back with nothing
    /// between them: the bytes written hash (SHA-256) to the entry's <c>events_digest</c>.
    /// </summary>
    public async Task WriteRecordsAsync(LedgerEntry entry, Stream output, CancellationToken cancellationToken)
    {
        var pipe = new Pipe(new PipeOptions(pauseWriterThreshold: 1 << 20, resumeWriterThreshold: 1 << 19));
        // The store hands records over synchronously, inside its read; a thread of its own fills the pipe while the response drains it.
        var producer = Task.Run(() =>
        {
            try
            {
                using var connection = database.Open();
                using var tx = database.BeginRead(connection);
                var pending = 0;
                usage.VisitRange(connection, tx, entry.CoversFromSeq ?? 0, entry.CoversToSeq ?? 0, entry.TenantId,
                    entry.PeriodStart.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), (in AuditRecordView r) =>
                    {
                        pipe.Writer.Write(r.Canonical);
                        pending += r.Canonical.Length;
                        if (pending < 64 * 1024) return;
                        pending = 0;
                        var flushed = pipe.Writer.FlushAsync(cancellationToken).AsTask().GetAwaiter().GetResult();
                        if (flushed.IsCompleted) throw new OperationCanceledException("the reader went away");
                    });
                pipe.Writer.Complete();
            }
            catch (Exception ex)
            {
                pipe.Writer.Complete(ex);
            }
        }, cancellationToken);
        try
        {
            await pipe.Reader.CopyToAsync(output, cancellationToken);
        }
        finally
        {
            await pipe.Reader.CompleteAsync();
            await producer;
        }
    }

    private Statement ReadHead(DbConnection connection, DbTransaction tx, string tenantId, BillingPeriod period)
    {
        long? first = null, last = null;
        using (var cmd = connection.CreateCommand())
        {
            cmd.Transaction = tx;
            cmd.CommandText = "SELECT MIN(seq), MAX(seq) FROM ledger_entries WHERE tenant_id = @t AND period_start = @p";
            cmd.With("t", tenantId);
            cmd.With("p", period.Start);
            using var r = cmd.ExecuteReader();
            if (r.Read() && !r.IsDBNull(0)) (first, last) = (r.GetInt64(0), r.GetInt64(1));
        }
        var head = Point(connection, tx, tenantId, "SELECT seq, hash FROM ledger_entries WHERE tenant_id = @t ORDER BY seq DESC LIMIT 1", null);
        ChainPoint opening, closing;
        if (first is { } f)
        {
            using var cmd = connection.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = "SELECT prev_hash FROM ledger_entries WHERE tenant_id = @t AND seq = @s";
            cmd.With("t", tenantId);
            cmd.With("s", f);
            opening = new ChainPoint(f - 1, (string)cmd.ExecuteScalar()!);
            closing = Point(connection, tx, tenantId, "SELECT seq, hash FROM ledger_entries WHERE tenant_id = @t AND seq = @s", last);
        }
        else
        {
            // No entry of the period (yet): the statement is the chain point where the period's entries will begin.
            opening = closing = Point(connection, tx, tenantId,
                "SELECT seq, hash FROM ledger_entries WHERE tenant_id = @t AND period_start < @s ORDER BY seq DESC LIMIT 1", null, period.Start);
        }

        long allocated = 0, consumed = 0, expired = 0, voided = 0;
        using (var cmd = connection.CreateCommand())
        {
            cmd.Transaction = tx;
            cmd.CommandText = "SELECT kind, COALESCE(SUM(amount_micro_credits), 0) FROM ledger_entries WHERE tenant_id = @t AND period_start = @p GROUP BY kind";
            cmd.With("t", tenantId);
            cmd.With("p", period.Start);
            using var r = cmd.ExecuteReader();
            while (r.Read())
            {
                switch (r.GetString(0))
                {
                    case "allocation": allocated = r.GetInt64(1); break;
                    case "consumption": consumed = r.GetInt64(1); break;
                    case "expiry": expired = r.GetInt64(1); break;
                    case "void": voided = r.GetInt64(1); break;
                }
            }
        }
        var carried = grants.CarriedInto(connection, tx, tenantId, period);
        var balance = balances.Read(connection, tx, tenantId, period.StartInstant);
        var unflushed = balance?.UnflushedMicroCredits ?? 0;
        var now = time.GetUtcNow();
        var total = checked(carried + allocated - voided);
        return new Statement(Format, tenantId, new StatementPeriod(period.Start, period.End), now, Final: now >= period.EndInstant && unflushed == 0,
            opening, closing, head, new StatementBalance(carried, total, consumed, unflushed, expired, checked(total - consumed - unflushed), voided),
            AsyncEnumerable.Empty<StatementEntry>());
    }

    private static ChainPoint Point(DbConnection connection, DbTransaction tx, string tenantId, string sql, long? seq, DateOnly? before = null)
    {
        using var cmd = connection.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        cmd.With("t", tenantId);
        if (seq is { } s) cmd.With("s", s);
        if (before is { } b) cmd.With("s", b);
        using var r = cmd.ExecuteReader();
        return r.Read() ? new ChainPoint(r.GetInt64(0), r.GetString(1)) : new ChainPoint(0, LedgerHash.Genesis);
    }

    private static StatementEntry Of(LedgerEntry e) => new(e.Seq, EnumText.ToText(e.Kind), EnumText.ToText(e.Source), e.AmountMicroCredits,
        e.PeriodStart.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), e.IdempotencyKey, e.Description, e.CoversFromSeq, e.CoversToSeq,
        e.EventCount, e.EventsDigest, e.CreatedAt.ToUnixTimeMilliseconds(), e.ExpiresAt?.ToUnixTimeMilliseconds(), e.GrantSeq, e.PrevHash, e.Hash);

    private static string Clip(string text) => text.Length > 40 ? text[..40] + "…" : text;
}
