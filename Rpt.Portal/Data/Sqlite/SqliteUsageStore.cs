using System.Data.Common;
using System.Globalization;
using System.Text;
using Microsoft.Data.Sqlite;
using Rpt.Portal.Metering;
using SQLitePCL;

namespace Rpt.Portal.Data.Sqlite;

/// <summary>
/// The one owner of <c>usage_events</c> (the audit records) and <c>usage_totals</c> (their running totals):
/// the column list, the SQL that writes them, the canonical form the ledger's digests are taken over, and
/// the reads the ledger makes of them. A column added to the table is added to <see cref="Columns"/>, and so
/// to the insert and to the digest at once; a test alters every column of the table and expects the deep
/// verifier to notice.
/// </summary>
public sealed partial class SqliteUsageStore(SqliteDatabase database) : IUsageStore
{
    private delegate void Binder(sqlite3_stmt statement, int index, in RatedUsage row, long receivedAtMs);

    /// <summary>Every column of <c>usage_events</c>, in the order of the canonical form; all but seq are written per event.</summary>
    private static readonly (string Name, Binder? Bind)[] Columns =
    [
        ("seq", null),
        ("tenant_id", (s, i, in r, _) => Text(s, i, r.TenantId)),
        ("event_id", (s, i, in r, _) => Text(s, i, r.EventId)),
        ("occurred_at", (s, i, in r, _) => raw.sqlite3_bind_int64(s, i, r.OccurredAtMs)),
        ("received_at", (s, i, in r, at) => raw.sqlite3_bind_int64(s, i, at)),
        ("period_start", (s, i, in r, _) => Text(s, i, r.PeriodStart)),
        ("provider", (s, i, in r, _) => Text(s, i, r.Provider)),
        ("model", (s, i, in r, _) => Text(s, i, r.Model)),
        ("meter", (s, i, in r, _) => Text(s, i, r.Meter)),
        ("quantity", (s, i, in r, _) => Text(s, i, r.Quantity)),
        ("input_tokens", (s, i, in r, _) => raw.sqlite3_bind_int64(s, i, r.InputTokens)),
        ("output_tokens", (s, i, in r, _) => raw.sqlite3_bind_int64(s, i, r.OutputTokens)),
        ("cached_input_tokens", (s, i, in r, _) => raw.sqlite3_bind_int64(s, i, r.CachedInputTokens)),
        ("feature", (s, i, in r, _) => Text(s, i, r.Feature)),
        ("job_id", (s, i, in r, _) => Text(s, i, r.JobId)),
        ("user_id", (s, i, in r, _) => Text(s, i, r.UserId)),
        ("status", (s, i, in r, _) => Text(s, i, r.Status)),
        ("internal", (s, i, in r, _) => raw.sqlite3_bind_int64(s, i, r.Internal ? 1 : 0)),
        ("billable", (s, i, in r, _) => raw.sqlite3_bind_int64(s, i, r.Billable ? 1 : 0)),
        ("price_id", (s, i, in r, _) => raw.sqlite3_bind_int64(s, i, r.PriceId)),
        ("rule_id", (s, i, in r, _) => raw.sqlite3_bind_int64(s, i, r.RuleId)),
        ("cost_usd", (s, i, in r, _) => Text(s, i, r.CostUsd)),
        ("micro_credits", (s, i, in r, _) => raw.sqlite3_bind_int64(s, i, r.MicroCredits)),
        ("project", (s, i, in r, _) => Text(s, i, r.Project)),
        ("api_key_id", (s, i, in r, _) => Text(s, i, r.ApiKeyId)),
    ];

    private static readonly (string Name, Binder Bind)[] Written = Columns.Where(c => c.Bind is not null).Select(c => (c.Name, c.Bind!)).ToArray();

    /// <summary>
    /// job_ref, the rowid of the job's usage_jobs row, is written with each event but is not part of the canonical
    /// form: it is derived (the deep verifier checks it against the job's id instead).
    /// </summary>
    private const string JobRefColumn = "job_ref";

    /// <summary>The names of every column, for the schema test.</summary>
    public static IReadOnlyList<string> ColumnNames { get; } = Columns.Select(c => c.Name).Append(JobRefColumn).ToArray();

    /// <summary>The columns of <see cref="AuditCanonicalForm"/>, selected in its order by <see cref="VisitRange"/>.</summary>
    private static readonly string CanonicalColumns = string.Join(", ", AuditCanonicalForm.Columns.Select(c => c.Name));

    private static readonly string InsertSql =
        $"INSERT INTO usage_events ({string.Join(", ", Written.Select(c => c.Name))}, {JobRefColumn}) VALUES ({string.Join(", ", Written.Select((_, i) => $"?{i + 1}"))}, ?{Written.Length + 1})";

    /// <summary>The highest seq stored: every audit record has seq ≤ this.</summary>
    public long MaxSeq(DbConnection connection, DbTransaction? tx = null)
    {
        using var cmd = ((SqliteConnection)connection).CreateCommand();
        cmd.Transaction = (SqliteTransaction?)tx;
        cmd.CommandText = "SELECT COALESCE(MAX(seq), 0) FROM usage_events";
        return Convert.ToInt64(cmd.ExecuteScalar(), CultureInfo.InvariantCulture);
    }

    /// <summary>Seqs read per read transaction by <see cref="VisitRange"/>.</summary>
    public const int VisitChunk = 10_000;

    /// <summary>
    /// The audit records with seq in (<paramref name="fromSeq"/>, <paramref name="throughSeq"/>], in seq order, optionally of one
    /// tenant and one period, each handed to <paramref name="visit"/> in place: no string is made per record (the flusher reads
    /// every record once, and made four strings of each, the canonical form alone some 800 bytes). The range is read in chunks
    /// of <see cref="VisitChunk"/> seqs. Inside the caller's <paramref name="tx"/> (the verifier's one snapshot) every chunk reads
    /// in it; without one, each chunk is its own short read transaction: records never change and seqs are assigned in commit
    /// order, so the chunks together are the range, and no read holds the WAL long enough to keep it from being started over.
    /// </summary>
    public void VisitRange(DbConnection connection, DbTransaction? tx, long fromSeq, long throughSeq, string? tenantId, string? periodStart,
        AuditRecordVisitor visit)
    {
        var sql = $"SELECT {CanonicalColumns} FROM usage_events WHERE seq > ?1 AND seq <= ?2"
            + (tenantId is null ? "" : " AND tenant_id = ?3") + (periodStart is null ? "" : " AND period_start = ?4") + " ORDER BY seq";
        var rc = raw.sqlite3_prepare_v2(((SqliteConnection)connection).Handle, sql, out var stmt);
        if (rc != raw.SQLITE_OK) throw new SqliteException($"SQLite prepare failed: {raw.sqlite3_errmsg(((SqliteConnection)connection).Handle).utf8_to_string()}", rc);
        var form = new AuditCanonicalForm.Builder();
        var columns = AuditCanonicalForm.Columns;
        using (stmt)
        {
            for (var from = fromSeq; from < throughSeq; from = Math.Min(throughSeq, from + VisitChunk))
            {
                using var chunkTx = tx is null ? ((SqliteConnection)connection).BeginTransaction(deferred: true) : null;
                raw.sqlite3_bind_int64(stmt, 1, from);
                raw.sqlite3_bind_int64(stmt, 2, Math.Min(throughSeq, from + VisitChunk));
                if (tenantId is not null) Text(stmt, 3, tenantId);
                if (periodStart is not null) Text(stmt, 4, periodStart);
                try
                {
                    while ((rc = raw.sqlite3_step(stmt)) == raw.SQLITE_ROW)
                    {
                        // The form is built from the stored values in C# (AuditCanonicalForm), not by the engine's text formatting.
                        form.Clear();
                        var count = AuditCanonicalForm.CoreColumns;
                        for (var i = count; i < columns.Count; i++)
                            if (raw.sqlite3_column_type(stmt, i) != raw.SQLITE_NULL) count = columns.Count;
                        for (var i = 0; i < count; i++)
                        {
                            if (i == AuditCanonicalForm.CoreColumns) form.Trailing();
                            var type = raw.sqlite3_column_type(stmt, i);
                            if (type == raw.SQLITE_NULL) form.Null();
                            else if (type == raw.SQLITE_INTEGER) form.Integer(raw.sqlite3_column_int64(stmt, i));
                            else if (type == raw.SQLITE_TEXT) form.Text(raw.sqlite3_column_blob(stmt, i));
                            else throw new InvalidDataException($"usage_events.{columns[i].Name} holds a value of SQLite type {type}, which no release writes; the audit record cannot be put in canonical form.");
                        }
                        var hasJob = raw.sqlite3_column_type(stmt, JobIdColumn) != raw.SQLITE_NULL;
                        visit(new AuditRecordView(raw.sqlite3_column_blob(stmt, TenantIdColumn), raw.sqlite3_column_blob(stmt, PeriodStartColumn),
                            raw.sqlite3_column_int64(stmt, BillableColumn) == 1, raw.sqlite3_column_int64(stmt, MicroCreditsColumn),
                            hasJob ? raw.sqlite3_column_blob(stmt, JobIdColumn) : default, hasJob, form.Written));
                    }
                    if (rc != raw.SQLITE_DONE) throw new SqliteException($"SQLite read of audit records failed: {raw.sqlite3_errmsg(((SqliteConnection)connection).Handle).utf8_to_string()}", rc);
                }
                finally
                {
                    raw.sqlite3_reset(stmt);
                }
                chunkTx?.Commit();
            }
        }
    }

    private static int CanonicalIndex(string column) => AuditCanonicalForm.Columns.Select(c => c.Name).ToList().IndexOf(column);
    private static readonly int TenantIdColumn = CanonicalIndex("tenant_id");
    private static readonly int PeriodStartColumn = CanonicalIndex("period_start");
    private static readonly int BillableColumn = CanonicalIndex("billable");
    private static readonly int MicroCreditsColumn = CanonicalIndex("micro_credits");
    private static readonly int JobIdColumn = CanonicalIndex("job_id");

    /// <summary>Billable µcr per period of a tenant, from the audit records (all, or those with seq ≤ <paramref name="throughSeq"/>).
    /// Summed in 128 bits: the verifier must be able to read a ledger that passed every limit.</summary>
    public Dictionary<string, Int128> BillablePerPeriod(DbConnection connection, DbTransaction tx, string tenantId, long throughSeq = long.MaxValue) =>
        SumPerPeriod(connection, tx, "SELECT period_start, micro_credits FROM usage_events WHERE tenant_id = $t AND billable = 1 AND seq <= $w", tenantId, throughSeq);

    /// <summary>Billable µcr per period of a tenant, from the running totals.</summary>
    public Dictionary<string, Int128> BillableTotalsPerPeriod(DbConnection connection, DbTransaction tx, string tenantId) =>
        SumPerPeriod(connection, tx, $"SELECT period_start, micro_credits FROM usage_totals WHERE tenant_id = $t AND category = '{UsageCategory.Billable}' AND $w >= 0", tenantId, 0);

    private static Dictionary<string, Int128> SumPerPeriod(DbConnection connection, DbTransaction tx, string sql, string tenantId, long watermark)
    {
        using var cmd = ((SqliteConnection)connection).CreateCommand();
        cmd.Transaction = (SqliteTransaction?)tx;
        cmd.CommandText = sql;
        cmd.Parameters.AddWithValue("$t", tenantId);
        cmd.Parameters.AddWithValue("$w", watermark);
        using var r = cmd.ExecuteReader();
        var result = new Dictionary<string, Int128>(StringComparer.Ordinal);
        while (r.Read())
        {
            var period = r.GetString(0);
            result[period] = result.GetValueOrDefault(period) + r.GetInt64(1);
        }
        return result;
    }

    /// <summary>Event ids a tenant has more than once (there should be none), with how often, at most <paramref name="limit"/>.</summary>
    public List<(string EventId, long Times)> RepeatedEventIds(DbConnection connection, DbTransaction tx, string tenantId, int limit)
    {
        using var cmd = ((SqliteConnection)connection).CreateCommand();
        cmd.Transaction = (SqliteTransaction?)tx;
        cmd.CommandText = "SELECT event_id, COUNT(*) FROM usage_events WHERE tenant_id = $t GROUP BY event_id HAVING COUNT(*) > 1 LIMIT $n";
        cmd.Parameters.AddWithValue("$t", tenantId);
        cmd.Parameters.AddWithValue("$n", limit);
        using var r = cmd.ExecuteReader();
        var rows = new List<(string, long)>();
        while (r.Read()) rows.Add((r.GetString(0), r.GetInt64(1)));
        return rows;
    }

    /// <summary>Calls and charged µcr per job among the audit records one consumption entry covers.</summary>
    public List<(string? JobId, long Calls, long MicroCredits)> JobsInRange(DbConnection connection, string tenantId, string periodStart,
        long fromSeq, long throughSeq, int limit)
    {
        using var cmd = ((SqliteConnection)connection).CreateCommand();
        cmd.CommandText = """
            SELECT job_id, COUNT(*), SUM(CASE WHEN billable = 1 THEN micro_credits ELSE 0 END) AS charged
            FROM usage_events WHERE seq > $from AND seq <= $to AND tenant_id = $t AND period_start = $p
            GROUP BY job_id ORDER BY charged DESC LIMIT $n
            """;
        cmd.Parameters.AddWithValue("$from", fromSeq);
        cmd.Parameters.AddWithValue("$to", throughSeq);
        cmd.Parameters.AddWithValue("$t", tenantId);
        cmd.Parameters.AddWithValue("$p", periodStart);
        cmd.Parameters.AddWithValue("$n", limit);
        using var r = cmd.ExecuteReader();
        var rows = new List<(string?, long, long)>();
        while (r.Read()) rows.Add((r.IsDBNull(0) ? null : r.GetString(0), r.GetInt64(1), r.GetInt64(2)));
        return rows;
    }

    public IUsageWriter OpenWriter() => new Writer(database);
}
