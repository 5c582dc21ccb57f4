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
public sealed class SqliteUsageStore(SqliteDatabase database) : IUsageStore
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
                        for (var i = 0; i < columns.Count; i++)
                        {
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

    /// <summary>The running totals of a tenant's period.</summary>
    public List<UsageTotalRow> Totals(DbConnection connection, DbTransaction tx, string tenantId, string periodStart)
    {
        using var cmd = ((SqliteConnection)connection).CreateCommand();
        cmd.Transaction = (SqliteTransaction?)tx;
        cmd.CommandText = """
            SELECT category, name, is_meter, events, input_tokens + output_tokens + cached_input_tokens, quantity_micro, micro_credits
            FROM usage_totals WHERE tenant_id = $t AND period_start = $p
            """;
        cmd.Parameters.AddWithValue("$t", tenantId);
        cmd.Parameters.AddWithValue("$p", periodStart);
        using var r = cmd.ExecuteReader();
        var rows = new List<UsageTotalRow>();
        while (r.Read())
            rows.Add(new UsageTotalRow(r.GetString(0), r.GetString(1), r.GetInt64(2) == 1, r.GetInt64(3), r.GetInt64(4), r.GetInt64(5), r.GetInt64(6)));
        return rows;
    }

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

    /// <summary>Rows of <c>usage_daily</c> for days in [<paramref name="from"/>, <paramref name="toExclusive"/>), of one category or all.</summary>
    public List<DailyRow> Daily(DbConnection connection, DbTransaction? tx, string tenantId, DateOnly from, DateOnly toExclusive, string? category)
    {
        using var cmd = ((SqliteConnection)connection).CreateCommand();
        cmd.Transaction = (SqliteTransaction?)tx;
        cmd.CommandText = "SELECT day, category, provider, name, feature, is_meter, calls, input_tokens, output_tokens, cached_input_tokens, micro_credits, quantity_micro "
            + "FROM usage_daily WHERE tenant_id = $t AND day >= $from AND day < $to" + (category is null ? "" : " AND category = $c");
        cmd.Parameters.AddWithValue("$t", tenantId);
        cmd.Parameters.AddWithValue("$from", Day(from));
        cmd.Parameters.AddWithValue("$to", Day(toExclusive));
        if (category is not null) cmd.Parameters.AddWithValue("$c", category);
        using var r = cmd.ExecuteReader();
        var rows = new List<DailyRow>();
        while (r.Read())
        {
            var feature = r.GetString(4);
            rows.Add(new DailyRow(DateOnly.ParseExact(r.GetString(0), "yyyy-MM-dd", CultureInfo.InvariantCulture), r.GetString(1), r.GetString(2), r.GetString(3),
                feature.Length == 0 ? null : feature, r.GetInt64(5) == 1, r.GetInt64(6), r.GetInt64(7), r.GetInt64(8), r.GetInt64(9), r.GetInt64(10), r.GetInt64(11)));
        }
        return rows;
    }

    /// <summary>Jobs that started in [<paramref name="fromMs"/>, <paramref name="toMs"/>), newest first, from after the keyset
    /// position <paramref name="after"/> (or skipping <paramref name="offset"/>), at most <paramref name="limit"/>.</summary>
    public List<JobRow> Jobs(DbConnection connection, string tenantId, long fromMs, long toMs, (long FirstAtMs, long RowId)? after, int offset, int limit,
        JobOrder order = JobOrder.Newest)
    {
        // The keyset is (sort column, rowid) in the order's direction; both columns come from an index.
        var (column, desc) = order switch
        {
            JobOrder.Oldest => ("first_at", false),
            JobOrder.MostCredits => ("micro_credits", true),
            JobOrder.FewestCredits => ("micro_credits", false),
            _ => ("first_at", true),
        };
        var cmp = desc ? "<" : ">";
        var dir = desc ? "DESC" : "ASC";
        using var cmd = ((SqliteConnection)connection).CreateCommand();
        cmd.CommandText = "SELECT rowid, job_id, calls, billable_calls, input_tokens, output_tokens, cached_input_tokens, micro_credits, internal_micro_credits, first_at, last_at "
            + "FROM usage_jobs WHERE tenant_id = $t AND first_at >= $from AND first_at < $to"
            + (after is null ? "" : $" AND ({column} {cmp} $af OR ({column} = $af AND rowid {cmp} $ar))")
            + $" ORDER BY {column} {dir}, rowid {dir} LIMIT $n OFFSET $o";
        cmd.Parameters.AddWithValue("$t", tenantId);
        cmd.Parameters.AddWithValue("$from", fromMs);
        cmd.Parameters.AddWithValue("$to", toMs);
        if (after is { } a)
        {
            cmd.Parameters.AddWithValue("$af", a.FirstAtMs);
            cmd.Parameters.AddWithValue("$ar", a.RowId);
        }
        cmd.Parameters.AddWithValue("$n", limit);
        cmd.Parameters.AddWithValue("$o", offset);
        using var r = cmd.ExecuteReader();
        var rows = new List<JobRow>();
        while (r.Read())
            rows.Add(new JobRow(r.GetInt64(0), r.GetString(1), r.GetInt64(2), r.GetInt64(3), r.GetInt64(4), r.GetInt64(5), r.GetInt64(6), r.GetInt64(7), r.GetInt64(8), r.GetInt64(9), r.GetInt64(10)));
        return rows;
    }

    /// <summary>The rowid of a job's row (the job_ref of its calls), or null for a job never seen.</summary>
    public long? JobRefOf(DbConnection connection, string tenantId, string jobId)
    {
        using var cmd = ((SqliteConnection)connection).CreateCommand();
        cmd.CommandText = "SELECT rowid FROM usage_jobs WHERE tenant_id = $t AND job_id = $j";
        cmd.Parameters.AddWithValue("$t", tenantId);
        cmd.Parameters.AddWithValue("$j", jobId);
        return cmd.ExecuteScalar() is long rowid ? rowid : null;
    }

    /// <summary>Audit records whose job_ref does not point at their own job's row (there should be none), at most <paramref name="limit"/> seqs.</summary>
    public List<long> MisreferencedJobs(DbConnection connection, DbTransaction tx, string tenantId, int limit)
    {
        using var cmd = ((SqliteConnection)connection).CreateCommand();
        cmd.Transaction = (SqliteTransaction?)tx;
        cmd.CommandText = """
            SELECT e.seq FROM usage_events e LEFT JOIN usage_jobs j ON j.rowid = e.job_ref
            WHERE e.tenant_id = $t AND ((e.job_id IS NULL) <> (e.job_ref IS NULL)
              OR (e.job_id IS NOT NULL AND (j.tenant_id IS NOT e.tenant_id OR j.job_id IS NOT e.job_id)))
            LIMIT $n
            """;
        cmd.Parameters.AddWithValue("$t", tenantId);
        cmd.Parameters.AddWithValue("$n", limit);
        using var r = cmd.ExecuteReader();
        var seqs = new List<long>();
        while (r.Read()) seqs.Add(r.GetInt64(0));
        return seqs;
    }

    /// <summary>Calls of one job (every category), from its rollup.</summary>
    public long JobCalls(DbConnection connection, string tenantId, string jobId)
    {
        using var cmd = ((SqliteConnection)connection).CreateCommand();
        cmd.CommandText = "SELECT calls FROM usage_jobs WHERE tenant_id = $t AND job_id = $j";
        cmd.Parameters.AddWithValue("$t", tenantId);
        cmd.Parameters.AddWithValue("$j", jobId);
        return cmd.ExecuteScalar() is long n ? n : 0;
    }

    private const string DailyStoredSql = """
        SELECT day || '|' || category || '|' || provider || '|' || name || '|' || feature,
               is_meter || ' ' || calls || ' ' || input_tokens || ' ' || output_tokens || ' ' || cached_input_tokens || ' ' || micro_credits || ' ' || quantity_micro
        FROM usage_daily WHERE tenant_id = $t
        """;

    private const string DailyRecomputedSql = """
        SELECT day || '|' || category || '|' || provider || '|' || name || '|' || feature,
               (meter IS NOT NULL) || ' ' || COUNT(*) || ' ' || SUM(input_tokens) || ' ' || SUM(output_tokens) || ' ' || SUM(cached_input_tokens) || ' ' || SUM(micro_credits) || ' ' || SUM(quantity_micro)
        FROM (SELECT date(occurred_at / 1000, 'unixepoch') AS day,
                     CASE WHEN status = 'failed' THEN 'failed' WHEN internal = 1 THEN 'internal' ELSE 'billable' END AS category,
                     provider, COALESCE(model, meter) AS name, COALESCE(feature, '') AS feature, meter, input_tokens, output_tokens, cached_input_tokens, micro_credits,
                     CASE WHEN quantity IS NULL THEN 0 ELSE CAST(round(CAST(quantity AS REAL) * 1000000) AS INTEGER) END AS quantity_micro
              FROM usage_events WHERE tenant_id = $t)
        GROUP BY day, category, provider, name, feature
        """;

    private const string JobsStoredSql = """
        SELECT job_id, calls || ' ' || billable_calls || ' ' || input_tokens || ' ' || output_tokens || ' ' || cached_input_tokens || ' ' || micro_credits
               || ' ' || internal_micro_credits || ' ' || first_at || ' ' || last_at
        FROM usage_jobs WHERE tenant_id = $t
        """;

    private const string JobsRecomputedSql = """
        SELECT job_id, COUNT(*) || ' ' || SUM(billable) || ' ' || SUM(CASE WHEN billable = 1 THEN input_tokens ELSE 0 END) || ' ' || SUM(CASE WHEN billable = 1 THEN output_tokens ELSE 0 END)
               || ' ' || SUM(CASE WHEN billable = 1 THEN cached_input_tokens ELSE 0 END) || ' ' || SUM(CASE WHEN billable = 1 THEN micro_credits ELSE 0 END)
               || ' ' || SUM(CASE WHEN internal = 1 AND status <> 'failed' THEN micro_credits ELSE 0 END) || ' ' || MIN(occurred_at) || ' ' || MAX(occurred_at)
        FROM usage_events WHERE tenant_id = $t AND job_id IS NOT NULL GROUP BY job_id
        """;

    /// <summary>
    /// The rollups as stored and as recomputed from the tenant's audit records, each row as text by its key,
    /// for the deep verifier: derived data must equal what it is derived from.
    /// </summary>
    public (Dictionary<string, string> Stored, Dictionary<string, string> Recomputed) DailyReconciliation(DbConnection connection, DbTransaction tx, string tenantId) =>
        (Keyed(connection, tx, tenantId, DailyStoredSql), Keyed(connection, tx, tenantId, DailyRecomputedSql));

    /// <inheritdoc cref="DailyReconciliation"/>
    public (Dictionary<string, string> Stored, Dictionary<string, string> Recomputed) JobReconciliation(DbConnection connection, DbTransaction tx, string tenantId) =>
        (Keyed(connection, tx, tenantId, JobsStoredSql), Keyed(connection, tx, tenantId, JobsRecomputedSql));

    private static Dictionary<string, string> Keyed(DbConnection connection, DbTransaction tx, string tenantId, string sql)
    {
        using var cmd = ((SqliteConnection)connection).CreateCommand();
        cmd.Transaction = (SqliteTransaction?)tx;
        cmd.CommandText = sql;
        cmd.Parameters.AddWithValue("$t", tenantId);
        try
        {
            using var r = cmd.ExecuteReader();
            var result = new Dictionary<string, string>(StringComparer.Ordinal);
            while (r.Read()) result[r.GetString(0)] = r.GetString(1);
            return result;
        }
        catch (SqliteException ex) when (ex.Message.Contains("overflow", StringComparison.OrdinalIgnoreCase))
        {
            // SQLite reports an integer SUM past 64 bits only by its message; the features see a typed overflow.
            throw new OverflowException(ex.Message, ex);
        }
    }

    private static string Day(DateOnly d) => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    /// <summary>
    /// The SQL that lists a tenant's matching audit records by seq (newest first, or oldest first for an export)
    /// without an index of its own, which would cost every event one more B-tree write: either the rowid order
    /// filtered by tenant (cheap where the tenant's calls are dense among all), or the tenant's entries of the
    /// (tenant_id, job_id) index sorted by seq (cheap where they are few). The cheaper plan is chosen from what
    /// the rollups say: with N matching calls among M, the first costs about page × M / N rows, the second N;
    /// the better of the two is at most √(page × M) rows, whatever the mix of tenants.
    /// </summary>
    public (string Sql, object[] Parameters) CallsQuery(string tenantId, long matching, long stored, int page, bool newestFirst,
        DateTimeOffset? from, DateTimeOffset? to, string? model, string? feature, string? jobId, long? beforeSeq, long? afterSeq, int? limit = null)
    {
        var where = new List<string>();
        var args = new List<object>();
        string Arg(object value) { args.Add(value); return $"{{{args.Count - 1}}}"; }
        string index;
        if (!string.IsNullOrEmpty(jobId))
        {
            index = "INDEXED BY ix_usage_events_tenant_jobref";
            var tenantArg = Arg(tenantId);
            var jobArg = Arg(jobId);
            where.Add($"tenant_id = {tenantArg}");
            where.Add($"job_ref = (SELECT rowid FROM usage_jobs WHERE tenant_id = {tenantArg} AND job_id = {jobArg})");
            where.Add($"job_id = {jobArg}");
        }
        else if ((double)matching * matching > (double)page * stored)
        {
            index = "NOT INDEXED";
            where.Add($"tenant_id = {Arg(tenantId)}");
        }
        else
        {
            index = "INDEXED BY ix_usage_events_tenant_jobref";
            where.Add($"tenant_id = {Arg(tenantId)}");
        }
        if (from is { } f) where.Add($"occurred_at >= {Arg(f.ToUnixTimeMilliseconds())}");
        if (to is { } t) where.Add($"occurred_at < {Arg(t.ToUnixTimeMilliseconds())}");
        if (!string.IsNullOrEmpty(model)) where.Add($"(model = {Arg(model)} OR meter = {Arg(model)})");
        if (!string.IsNullOrEmpty(feature)) where.Add($"feature = {Arg(feature)}");
        if (beforeSeq is { } b) where.Add($"seq < {Arg(b)}");
        if (afterSeq is { } a) where.Add($"seq > {Arg(a)}");
        var sql = $"SELECT * FROM usage_events {index} WHERE {string.Join(" AND ", where)} ORDER BY seq {(newestFirst ? "DESC" : "ASC")}"
            + (limit is { } n ? $" LIMIT {Arg(n)}" : "");
        return (sql, args.ToArray());
    }

    /// <summary>A tenant's calls (every period and category), from the running totals.</summary>
    public long TenantCalls(DbConnection connection, string tenantId)
    {
        using var cmd = ((SqliteConnection)connection).CreateCommand();
        cmd.CommandText = "SELECT COALESCE(SUM(events), 0) FROM usage_totals WHERE tenant_id = $t";
        cmd.Parameters.AddWithValue("$t", tenantId);
        return Convert.ToInt64(cmd.ExecuteScalar(), CultureInfo.InvariantCulture);
    }

    public IUsageWriter OpenWriter() => new Writer(database);

    private static void Text(sqlite3_stmt s, int index, string? value)
    {
        if (value is null) raw.sqlite3_bind_null(s, index);
        else raw.sqlite3_bind_text16(s, index, value);
    }

    /// <summary>
    /// The ingestion writer's own SQLite connection, driven through the native binding under
    /// Microsoft.Data.Sqlite: binding 22 values per row through ADO.NET parameters costs more than SQLite's
    /// own work, and this is the loop every event goes through. Used by one thread only, so it is opened
    /// without SQLite's per-connection mutex. It inserts the events and updates the running totals in one
    /// transaction, and keeps every tenant's period within <see cref="UsageLimits"/>: the totals it adds to
    /// are read inside the same transaction, so another process writing the same file is counted too.
    /// </summary>
    internal sealed class Writer : IUsageWriter
    {
        private const string UpsertSql = """
            INSERT INTO usage_totals (tenant_id, period_start, category, provider, name, is_meter, events,
              input_tokens, output_tokens, cached_input_tokens, micro_credits, quantity_micro)
            VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)
            ON CONFLICT (tenant_id, period_start, category, provider, name) DO UPDATE SET
              events = events + excluded.events,
              input_tokens = input_tokens + excluded.input_tokens,
              output_tokens = output_tokens + excluded.output_tokens,
              cached_input_tokens = cached_input_tokens + excluded.cached_input_tokens,
              micro_credits = micro_credits + excluded.micro_credits,
              quantity_micro = quantity_micro + excluded.quantity_micro
            """;

        private const string DailySql = """
            INSERT INTO usage_daily (tenant_id, day, category, provider, name, feature, is_meter, calls,
              input_tokens, output_tokens, cached_input_tokens, micro_credits, quantity_micro)
            VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)
            ON CONFLICT (tenant_id, day, category, provider, name, feature) DO UPDATE SET
              calls = calls + excluded.calls,
              input_tokens = input_tokens + excluded.input_tokens,
              output_tokens = output_tokens + excluded.output_tokens,
              cached_input_tokens = cached_input_tokens + excluded.cached_input_tokens,
              micro_credits = micro_credits + excluded.micro_credits,
              quantity_micro = quantity_micro + excluded.quantity_micro
            """;

        private const string JobSql = """
            INSERT INTO usage_jobs (tenant_id, job_id, calls, billable_calls, input_tokens, output_tokens, cached_input_tokens,
              micro_credits, internal_micro_credits, first_at, last_at)
            VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)
            ON CONFLICT (tenant_id, job_id) DO UPDATE SET
              calls = calls + excluded.calls,
              billable_calls = billable_calls + excluded.billable_calls,
              input_tokens = input_tokens + excluded.input_tokens,
              output_tokens = output_tokens + excluded.output_tokens,
              cached_input_tokens = cached_input_tokens + excluded.cached_input_tokens,
              micro_credits = micro_credits + excluded.micro_credits,
              internal_micro_credits = internal_micro_credits + excluded.internal_micro_credits,
              last_at = max(last_at, excluded.last_at)
            """;

        // first_at is indexed: assigning it in the upsert would rewrite the index entry of every job touched by
        // every commit. A job's calls arrive in order nearly always, so the rare earlier call is a separate update
        // whose WHERE is false (a key lookup, no write) in the common case.
        private const string JobFirstSql = "UPDATE usage_jobs SET first_at = ?3 WHERE tenant_id = ?1 AND job_id = ?2 AND first_at > ?3";

        private const string PeriodUseSql = """
            SELECT COALESCE(SUM(micro_credits), 0), COALESCE(SUM(input_tokens + output_tokens + cached_input_tokens), 0)
            FROM usage_totals WHERE tenant_id = ?1 AND period_start = ?2
            """;

        /// <summary>Whether the record at a seq is this tenant's event with this id: the confirmation of an <see cref="EventIdIndex"/> candidate.</summary>
        private const string ConfirmSql = "SELECT tenant_id = ?2 AND event_id = ?3 FROM usage_events WHERE seq = ?1";

        /// <summary>The records after the index's last seq: written by another process (the command line) or before a crash.</summary>
        private const string SinceSql = "SELECT seq, tenant_id, event_id FROM usage_events WHERE seq > ?1 ORDER BY seq";

        private readonly sqlite3 _db;
        private const string JobRefSql = "SELECT rowid FROM usage_jobs WHERE tenant_id = ?1 AND job_id = ?2";

        /// <summary>A job's row before its first call is inserted, for its rowid; the commit's upsert then adds the call counts.</summary>
        private const string JobCreateSql = """
            INSERT INTO usage_jobs (tenant_id, job_id, calls, billable_calls, input_tokens, output_tokens, cached_input_tokens,
              micro_credits, internal_micro_credits, first_at, last_at) VALUES (?1, ?2, 0, 0, 0, 0, 0, 0, 0, ?3, ?3)
            """;

        private readonly sqlite3_stmt _insert, _upsert, _daily, _job, _jobFirst, _periodUseQuery, _confirm, _since, _jobRef, _jobCreate;
        private readonly Dictionary<(string, string), long> _jobRefs = new();
        private readonly EventIdIndex _ids;
        private long _indexedSeq;
        private readonly HashSet<(string, string)> _inCommit = new();
        private readonly List<(ulong Hash, long Seq)> _added = new();
        private readonly Dictionary<(string, string, string, string, string, string), long[]> _days = new();
        private readonly Dictionary<(string, string), long[]> _jobs = new();
        private readonly Dictionary<(string, string, string, string, string), long[]> _totals = new();
        private readonly Dictionary<(string, string), long[]> _periodUse = new();

        private const int BusyTimeoutMilliseconds = 15_000;
        private readonly SqliteDatabase _database;

        public Writer(SqliteDatabase database)
        {
            _database = database;
            Check(raw.sqlite3_open_v2(database.FilePath, out _db, raw.SQLITE_OPEN_READWRITE | raw.SQLITE_OPEN_NOMUTEX, null), "open");
            raw.sqlite3_busy_timeout(_db, BusyTimeoutMilliseconds);
            // synchronous=FULL: an acknowledged event survives a power cut. The B-tree pages the commits touch stay
            // in a 64 MiB cache; WAL checkpoints are left to their own service (WalCheckpointer) instead of the commit
            // path, and when that service has started the WAL over, the first commit cuts the file back to the limit.
            Exec($"PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-65536; PRAGMA wal_autocheckpoint=0; PRAGMA journal_size_limit={SqliteDatabase.WalFileLimitBytes};");
            Check(raw.sqlite3_prepare_v2(_db, InsertSql, out _insert), "prepare");
            Check(raw.sqlite3_prepare_v2(_db, UpsertSql, out _upsert), "prepare");
            Check(raw.sqlite3_prepare_v2(_db, DailySql, out _daily), "prepare");
            Check(raw.sqlite3_prepare_v2(_db, JobSql, out _job), "prepare");
            Check(raw.sqlite3_prepare_v2(_db, JobFirstSql, out _jobFirst), "prepare");
            Check(raw.sqlite3_prepare_v2(_db, PeriodUseSql, out _periodUseQuery), "prepare");
            Check(raw.sqlite3_prepare_v2(_db, ConfirmSql, out _confirm), "prepare");
            Check(raw.sqlite3_prepare_v2(_db, SinceSql, out _since), "prepare");
            Check(raw.sqlite3_prepare_v2(_db, JobRefSql, out _jobRef), "prepare");
            Check(raw.sqlite3_prepare_v2(_db, JobCreateSql, out _jobCreate), "prepare");
            // The exactly-once index is derived from the audit table: built here, before the first write, in a table
            // sized for what is stored (no doubling while it is built; its shards grow one by one afterwards).
            _ids = new EventIdIndex(MaxSeqRaw());
            Exec("BEGIN");
            try
            {
                CatchUp();
            }
            finally
            {
                Exec("COMMIT");
            }
        }

        private long MaxSeqRaw()
        {
            Check(raw.sqlite3_prepare_v2(_db, "SELECT COALESCE(MAX(seq), 0) FROM usage_events", out var stmt), "prepare");
            using (stmt)
            {
                return raw.sqlite3_step(stmt) == raw.SQLITE_ROW ? raw.sqlite3_column_int64(stmt, 0) : 0;
            }
        }

        /// <summary>Audit records the exactly-once index holds.</summary>
        public int IndexedEvents => _ids.Count;

        /// <summary>Bytes of the exactly-once index.</summary>
        public long IndexBytes => _ids.Bytes;

        /// <summary>Adds to the index every record after the last it holds; inside a write transaction, nobody can add more meanwhile.</summary>
        private void CatchUp()
        {
            raw.sqlite3_bind_int64(_since, 1, _indexedSeq);
            try
            {
                int rc;
                while ((rc = raw.sqlite3_step(_since)) == raw.SQLITE_ROW)
                {
                    var seq = raw.sqlite3_column_int64(_since, 0);
                    _ids.Add(EventIdIndex.Hash(raw.sqlite3_column_text(_since, 1).utf8_to_string(), raw.sqlite3_column_text(_since, 2).utf8_to_string()), seq);
                    _indexedSeq = seq;
                }
                if (rc != raw.SQLITE_DONE) Check(rc, "index catch-up");
            }
            finally
            {
                raw.sqlite3_reset(_since);
            }
        }

        /// <summary>The rowid of the job's row, created (empty) for a job's first call.</summary>
        private long JobRef(string tenantId, string jobId, long occurredAtMs)
        {
            if (_jobRefs.TryGetValue((tenantId, jobId), out var known)) return known;
            Text(_jobRef, 1, tenantId);
            Text(_jobRef, 2, jobId);
            long rowid;
            try
            {
                var rc = raw.sqlite3_step(_jobRef);
                if (rc is not (raw.SQLITE_ROW or raw.SQLITE_DONE)) Check(rc, "job ref");
                rowid = rc == raw.SQLITE_ROW ? raw.sqlite3_column_int64(_jobRef, 0) : 0;
            }
            finally
            {
                raw.sqlite3_reset(_jobRef);
            }
            if (rowid == 0)
            {
                Text(_jobCreate, 1, tenantId);
                Text(_jobCreate, 2, jobId);
                raw.sqlite3_bind_int64(_jobCreate, 3, occurredAtMs);
                Step(_jobCreate, "job create");
                rowid = raw.sqlite3_last_insert_rowid(_db);
            }
            return _jobRefs[(tenantId, jobId)] = rowid;
        }

        /// <summary>Whether this tenant's event id is stored already, or earlier in this very commit.</summary>
        private bool IsDuplicate(in RatedUsage r, ulong hash)
        {
            if (_inCommit.Contains((r.TenantId, r.EventId))) return true;
            return _ids.Any(hash, (Writer: this, r.TenantId, r.EventId), static (seq, s) => s.Writer.Confirm(seq, s.TenantId, s.EventId));
        }

        private bool Confirm(long seq, string tenantId, string eventId)
        {
            raw.sqlite3_bind_int64(_confirm, 1, seq);
            Text(_confirm, 2, tenantId);
            Text(_confirm, 3, eventId);
            try
            {
                var rc = raw.sqlite3_step(_confirm);
                if (rc == raw.SQLITE_DONE) return false;
                if (rc != raw.SQLITE_ROW) Check(rc, "confirm");
                return raw.sqlite3_column_int64(_confirm, 0) == 1;
            }
            finally
            {
                raw.sqlite3_reset(_confirm);
            }
        }

        /// <summary>Writes every row of every batch in one transaction; one outcome per row.</summary>
        public WriteOutcome[][] Write(IReadOnlyList<ArraySegment<RatedUsage>> batches, long receivedAtMs, long maxPeriodMicroCredits, long maxPeriodTokens,
            out HashSet<string> tenants)
        {
            tenants = new HashSet<string>(StringComparer.Ordinal);
            _totals.Clear();
            _days.Clear();
            _jobs.Clear();
            _periodUse.Clear();
            _inCommit.Clear();
            _added.Clear();
            _jobRefs.Clear();
            var outcomes = new WriteOutcome[batches.Count][];
            Exec("BEGIN IMMEDIATE");
            try
            {
                CatchUp();
                for (var b = 0; b < batches.Count; b++)
                {
                    var (rows, offset, length) = (batches[b].Array!, batches[b].Offset, batches[b].Count);
                    var outcome = outcomes[b] = new WriteOutcome[length];
                    for (var i = 0; i < length; i++)
                    {
                        ref var r = ref rows[offset + i];
                        var hash = EventIdIndex.Hash(r.TenantId, r.EventId);
                        if (IsDuplicate(in r, hash))
                        {
                            outcome[i] = WriteOutcome.Duplicate; // the id was already counted
                            continue;
                        }
                        var use = PeriodUse(r.TenantId, r.PeriodStart);
                        // Both sides are within their limits, so neither sum can overflow; checked all the same.
                        var micro = checked(use[0] + r.MicroCredits);
                        var tokens = checked(use[1] + r.TotalTokens);
                        if (micro > maxPeriodMicroCredits || tokens > maxPeriodTokens)
                        {
                            outcome[i] = WriteOutcome.OverPeriodLimit;
                            continue;
                        }
                        for (var c = 0; c < Written.Length; c++) Written[c].Bind(_insert, c + 1, in r, receivedAtMs);
                        if (r.JobId is null) raw.sqlite3_bind_null(_insert, Written.Length + 1);
                        else raw.sqlite3_bind_int64(_insert, Written.Length + 1, JobRef(r.TenantId, r.JobId, r.OccurredAtMs));
                        Step(_insert, "insert");
                        _inCommit.Add((r.TenantId, r.EventId));
                        _added.Add((hash, raw.sqlite3_last_insert_rowid(_db)));
                        use[0] = micro;
                        use[1] = tokens;
                        tenants.Add(r.TenantId);
                        var key = (r.TenantId, r.PeriodStart, r.Category, r.Provider, r.Name);
                        if (!_totals.TryGetValue(key, out var acc)) _totals[key] = acc = [r.Meter is null ? 0 : 1, 0, 0, 0, 0, 0, 0];
                        acc[1]++;
                        acc[2] += r.InputTokens;
                        acc[3] += r.OutputTokens;
                        acc[4] += r.CachedInputTokens;
                        acc[5] += r.MicroCredits;
                        acc[6] += r.QuantityMicro;

                        var dayKey = (r.TenantId, r.Day, r.Category, r.Provider, r.Name, r.Feature ?? UsageDaily.NoFeature);
                        if (!_days.TryGetValue(dayKey, out var day)) _days[dayKey] = day = [r.Meter is null ? 0 : 1, 0, 0, 0, 0, 0, 0];
                        day[1]++;
                        day[2] += r.InputTokens;
                        day[3] += r.OutputTokens;
                        day[4] += r.CachedInputTokens;
                        day[5] += r.MicroCredits;
                        day[6] += r.QuantityMicro;

                        if (r.JobId is not null)
                        {
                            if (!_jobs.TryGetValue((r.TenantId, r.JobId), out var job))
                                _jobs[(r.TenantId, r.JobId)] = job = [0, 0, 0, 0, 0, 0, 0, r.OccurredAtMs, r.OccurredAtMs];
                            job[0]++;
                            if (r.Billable)
                            {
                                job[1]++;
                                job[2] += r.InputTokens;
                                job[3] += r.OutputTokens;
                                job[4] += r.CachedInputTokens;
                                job[5] += r.MicroCredits;
                            }
                            else if (r.Internal && !r.Failed)
                            {
                                job[6] += r.MicroCredits;
                            }
                            job[7] = Math.Min(job[7], r.OccurredAtMs);
                            job[8] = Math.Max(job[8], r.OccurredAtMs);
                        }
                    }
                }
                foreach (var ((tenant, period, category, provider, name), acc) in _totals)
                {
                    Text(_upsert, 1, tenant);
                    Text(_upsert, 2, period);
                    Text(_upsert, 3, category);
                    Text(_upsert, 4, provider);
                    Text(_upsert, 5, name);
                    for (var i = 0; i < 7; i++) raw.sqlite3_bind_int64(_upsert, 6 + i, acc[i]);
                    Step(_upsert, "totals");
                }
                foreach (var ((tenant, dayText, category, provider, name, feature), acc) in _days)
                {
                    Text(_daily, 1, tenant);
                    Text(_daily, 2, dayText);
                    Text(_daily, 3, category);
                    Text(_daily, 4, provider);
                    Text(_daily, 5, name);
                    Text(_daily, 6, feature);
                    for (var i = 0; i < 7; i++) raw.sqlite3_bind_int64(_daily, 7 + i, acc[i]);
                    Step(_daily, "daily rollup");
                }
                foreach (var ((tenant, jobId), acc) in _jobs)
                {
                    Text(_job, 1, tenant);
                    Text(_job, 2, jobId);
                    for (var i = 0; i < 9; i++) raw.sqlite3_bind_int64(_job, 3 + i, acc[i]);
                    Step(_job, "job rollup");
                    Text(_jobFirst, 1, tenant);
                    Text(_jobFirst, 2, jobId);
                    raw.sqlite3_bind_int64(_jobFirst, 3, acc[7]);
                    Step(_jobFirst, "job start");
                }
                Exec("COMMIT");
            }
            catch
            {
                raw.sqlite3_exec(_db, "ROLLBACK");
                throw;
            }
            // Only what was committed enters the index; a rolled-back commit leaves it as it was.
            foreach (var (hash, seq) in _added) _ids.Add(hash, seq);
            if (_added.Count > 0) _indexedSeq = _added[^1].Seq;
            return outcomes;
        }

        /// <summary>After an attempt that waited for readers in vain, the commits of this long go on before the next attempt.</summary>
        public const long RestartBackOffMilliseconds = 250;

        private long _nextRestartAtMs;

        /// <summary>Between two commits: starts the WAL over if the checkpointer asked for it (see <see cref="SqliteDatabase.Checkpoint"/>),
        /// at most once per <see cref="RestartBackOffMilliseconds"/> while it keeps finding readers in the way.</summary>
        public void BetweenCommits(long nowMs)
        {
            if (!_database.WalRestartDue || nowMs < _nextRestartAtMs) return;
            // Only an attempt that waited backs off; one passed over (the checkpointer was copying) cost nothing and is retried next commit.
            if (_database.RestartWal(_db, BusyTimeoutMilliseconds) == WalRestart.HeldUp) _nextRestartAtMs = nowMs + RestartBackOffMilliseconds;
        }

        /// <summary>What the tenant's period already holds (µcr, tokens), read once per commit inside its transaction.</summary>
        private long[] PeriodUse(string tenantId, string periodStart)
        {
            if (_periodUse.TryGetValue((tenantId, periodStart), out var use)) return use;
            Text(_periodUseQuery, 1, tenantId);
            Text(_periodUseQuery, 2, periodStart);
            var rc = raw.sqlite3_step(_periodUseQuery);
            try
            {
                if (rc != raw.SQLITE_ROW) Check(rc, "period use");
                use = [raw.sqlite3_column_int64(_periodUseQuery, 0), raw.sqlite3_column_int64(_periodUseQuery, 1)];
            }
            finally
            {
                raw.sqlite3_reset(_periodUseQuery);
            }
            _periodUse[(tenantId, periodStart)] = use;
            return use;
        }

        private void Step(sqlite3_stmt s, string what)
        {
            var rc = raw.sqlite3_step(s);
            raw.sqlite3_reset(s);
            if (rc != raw.SQLITE_DONE) Check(rc, what);
        }

        private void Exec(string sql) => Check(raw.sqlite3_exec(_db, sql), sql);

        private void Check(int rc, string what)
        {
            if (rc is raw.SQLITE_OK or raw.SQLITE_DONE) return;
            var message = _db is null ? raw.sqlite3_errstr(rc).utf8_to_string() : raw.sqlite3_errmsg(_db).utf8_to_string();
            throw new SqliteException($"SQLite {what} failed: {message}", rc, _db is null ? rc : raw.sqlite3_extended_errcode(_db));
        }

        public void Dispose()
        {
            _insert.Dispose();
            _upsert.Dispose();
            _periodUseQuery.Dispose();
            _daily.Dispose();
            _job.Dispose();
            _jobFirst.Dispose();
            _confirm.Dispose();
            _since.Dispose();
            _jobRef.Dispose();
            _jobCreate.Dispose();
            _db.Dispose();
        }
    }
}
