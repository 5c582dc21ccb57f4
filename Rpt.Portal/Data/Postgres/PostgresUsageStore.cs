using System.Data.Common;
using System.Globalization;
using System.Text;
using Npgsql;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Data.Postgres;

/// <summary>
/// The audit records and their rollups on PostgreSQL. Exactly-once is the database's: a unique index on
/// (tenant_id, event_id), for all time, whatever the number of writers. A commit inserts its events with
/// <c>INSERT … ON CONFLICT DO NOTHING</c> over arrays (see <see cref="Writer"/>) and adds to the rollups with <c>INSERT … ON CONFLICT DO UPDATE</c> over arrays, a handful of round
/// trips per commit whatever its size.
/// </summary>
public sealed class PostgresUsageStore(PostgresDatabase database) : IUsageStore
{
    /// <summary>Every column of <c>usage_events</c> the writer fills, in the order of the canonical form (seq is the identity), then job_ref.</summary>
    private static readonly string[] Written = AuditCanonicalForm.Columns.Select(c => c.Name).Where(n => n != "seq").Append("job_ref").ToArray();

    private static readonly string CanonicalColumns = string.Join(", ", AuditCanonicalForm.Columns.Select(c => Quote(c.Name)));

    private static string Quote(string column) => column == "internal" ? "\"internal\"" : column;

    private static NpgsqlConnection Native(DbConnection connection) => (NpgsqlConnection)connection;

    private static NpgsqlCommand Command(DbConnection connection, DbTransaction? tx, string sql) =>
        new(sql, Native(connection), (NpgsqlTransaction?)tx);

    public IUsageWriter OpenWriter() => new Writer(database);

    public long MaxSeq(DbConnection connection, DbTransaction? tx = null)
    {
        using var cmd = Command(connection, tx, "SELECT COALESCE(MAX(seq), 0) FROM usage_events");
        return (long)cmd.ExecuteScalar()!;
    }

    public const int VisitChunk = 10_000;

    public void VisitRange(DbConnection connection, DbTransaction? tx, long fromSeq, long throughSeq, string? tenantId, string? periodStart,
        AuditRecordVisitor visit)
    {
        var sql = $"SELECT {CanonicalColumns} FROM usage_events WHERE seq > @a AND seq <= @b"
            + (tenantId is null ? "" : " AND tenant_id = @t") + (periodStart is null ? "" : " AND period_start = @p") + " ORDER BY seq";
        var form = new AuditCanonicalForm.Builder();
        var columns = AuditCanonicalForm.Columns;
        var tenantBytes = new byte[256];
        var periodBytes = new byte[16];
        var jobBytes = new byte[512];
        for (var from = fromSeq; from < throughSeq; from = Math.Min(throughSeq, from + VisitChunk))
        {
            using var chunkTx = tx is null ? database.BeginRead(connection) : null;
            using var cmd = Command(connection, tx ?? chunkTx, sql);
            cmd.Parameters.AddWithValue("a", from);
            cmd.Parameters.AddWithValue("b", Math.Min(throughSeq, from + VisitChunk));
            if (tenantId is not null) cmd.Parameters.AddWithValue("t", tenantId);
            if (periodStart is not null) cmd.Parameters.AddWithValue("p", PortableSql.ParseDay(periodStart));
            using (var r = cmd.ExecuteReader())
            {
                while (r.Read())
                {
                    form.Clear();
                    for (var i = 0; i < columns.Count; i++)
                    {
                        if (r.IsDBNull(i)) form.Null();
                        else switch (r.GetFieldType(i))
                        {
                            case var t when t == typeof(long): form.Integer(r.GetInt64(i)); break;
                            case var t when t == typeof(bool): form.Integer(r.GetBoolean(i) ? 1 : 0); break;
                            case var t when t == typeof(string): form.Text(r.GetString(i)); break;
                            case var t when t == typeof(decimal): form.Text(r.GetDecimal(i).ToString(CultureInfo.InvariantCulture)); break;
                            case var t when t == typeof(DateTime) || t == typeof(DateOnly):
                                form.Text(r.GetFieldValue<DateOnly>(i).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)); break;
                            default:
                                throw new InvalidDataException($"usage_events.{columns[i].Name} holds a value of type {r.GetDataTypeName(i)}, which no release writes; the audit record cannot be put in canonical form.");
                        }
                    }
                    var tenantLength = Utf8(r.GetString(TenantIdColumn), ref tenantBytes);
                    var periodLength = Utf8(r.GetFieldValue<DateOnly>(PeriodStartColumn).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), ref periodBytes);
                    var hasJob = !r.IsDBNull(JobIdColumn);
                    var jobLength = hasJob ? Utf8(r.GetString(JobIdColumn), ref jobBytes) : 0;
                    visit(new AuditRecordView(tenantBytes.AsSpan(0, tenantLength), periodBytes.AsSpan(0, periodLength), r.GetBoolean(BillableColumn),
                        r.GetInt64(MicroCreditsColumn), jobBytes.AsSpan(0, jobLength), hasJob, form.Written));
                }
            }
            chunkTx?.Commit();
        }
    }

    private static int Utf8(string value, ref byte[] buffer)
    {
        var needed = Encoding.UTF8.GetMaxByteCount(value.Length);
        if (needed > buffer.Length) buffer = new byte[needed];
        return Encoding.UTF8.GetBytes(value, buffer);
    }

    private static int CanonicalIndex(string column) => AuditCanonicalForm.Columns.Select(c => c.Name).ToList().IndexOf(column);
    private static readonly int TenantIdColumn = CanonicalIndex("tenant_id");
    private static readonly int PeriodStartColumn = CanonicalIndex("period_start");
    private static readonly int BillableColumn = CanonicalIndex("billable");
    private static readonly int MicroCreditsColumn = CanonicalIndex("micro_credits");
    private static readonly int JobIdColumn = CanonicalIndex("job_id");

    public List<UsageTotalRow> Totals(DbConnection connection, DbTransaction tx, string tenantId, string periodStart)
    {
        using var cmd = Command(connection, tx, """
            SELECT category, name, is_meter, events, input_tokens + output_tokens + cached_input_tokens, quantity_micro, micro_credits
            FROM usage_totals WHERE tenant_id = @t AND period_start = @p
            """);
        cmd.Parameters.AddWithValue("t", tenantId);
        cmd.Parameters.AddWithValue("p", PortableSql.ParseDay(periodStart));
        using var r = cmd.ExecuteReader();
        var rows = new List<UsageTotalRow>();
        while (r.Read())
            rows.Add(new UsageTotalRow(r.GetString(0), r.GetString(1), r.GetBoolean(2), r.GetInt64(3), r.GetInt64(4), r.GetInt64(5), r.GetInt64(6)));
        return rows;
    }

    public Dictionary<string, Int128> BillablePerPeriod(DbConnection connection, DbTransaction tx, string tenantId, long throughSeq = long.MaxValue) =>
        SumPerPeriod(connection, tx, "SELECT period_start, micro_credits FROM usage_events WHERE tenant_id = @t AND billable AND seq <= @w", tenantId, throughSeq);

    public Dictionary<string, Int128> BillableTotalsPerPeriod(DbConnection connection, DbTransaction tx, string tenantId) =>
        SumPerPeriod(connection, tx, $"SELECT period_start, micro_credits FROM usage_totals WHERE tenant_id = @t AND category = '{UsageCategory.Billable}' AND @w >= 0", tenantId, 0);

    private static Dictionary<string, Int128> SumPerPeriod(DbConnection connection, DbTransaction tx, string sql, string tenantId, long watermark)
    {
        using var cmd = Command(connection, tx, sql);
        cmd.Parameters.AddWithValue("t", tenantId);
        cmd.Parameters.AddWithValue("w", watermark);
        using var r = cmd.ExecuteReader();
        var result = new Dictionary<string, Int128>(StringComparer.Ordinal);
        while (r.Read())
        {
            var period = r.GetDay(0);
            result[period] = result.GetValueOrDefault(period) + r.GetInt64(1);
        }
        return result;
    }

    public List<(string EventId, long Times)> RepeatedEventIds(DbConnection connection, DbTransaction tx, string tenantId, int limit)
    {
        using var cmd = Command(connection, tx, "SELECT event_id, COUNT(*) FROM usage_events WHERE tenant_id = @t GROUP BY event_id HAVING COUNT(*) > 1 LIMIT @n");
        cmd.Parameters.AddWithValue("t", tenantId);
        cmd.Parameters.AddWithValue("n", limit);
        using var r = cmd.ExecuteReader();
        var rows = new List<(string, long)>();
        while (r.Read()) rows.Add((r.GetString(0), r.GetInt64(1)));
        return rows;
    }

    public List<(string? JobId, long Calls, long MicroCredits)> JobsInRange(DbConnection connection, string tenantId, string periodStart,
        long fromSeq, long throughSeq, int limit)
    {
        using var cmd = Command(connection, null, """
            SELECT job_id, COUNT(*), SUM(CASE WHEN billable THEN micro_credits ELSE 0 END)::bigint AS charged
            FROM usage_events WHERE seq > @from AND seq <= @to AND tenant_id = @t AND period_start = @p
            GROUP BY job_id ORDER BY charged DESC LIMIT @n
            """);
        cmd.Parameters.AddWithValue("from", fromSeq);
        cmd.Parameters.AddWithValue("to", throughSeq);
        cmd.Parameters.AddWithValue("t", tenantId);
        cmd.Parameters.AddWithValue("p", PortableSql.ParseDay(periodStart));
        cmd.Parameters.AddWithValue("n", limit);
        using var r = cmd.ExecuteReader();
        var rows = new List<(string?, long, long)>();
        while (r.Read()) rows.Add((r.IsDBNull(0) ? null : r.GetString(0), r.GetInt64(1), r.GetInt64(2)));
        return rows;
    }

    public List<DailyRow> Daily(DbConnection connection, DbTransaction? tx, string tenantId, DateOnly from, DateOnly toExclusive, string? category)
    {
        using var cmd = Command(connection, tx, "SELECT day, category, provider, name, feature, is_meter, calls, input_tokens, output_tokens, cached_input_tokens, micro_credits, quantity_micro "
            + "FROM usage_daily WHERE tenant_id = @t AND day >= @from AND day < @to" + (category is null ? "" : " AND category = @c"));
        cmd.Parameters.AddWithValue("t", tenantId);
        cmd.Parameters.AddWithValue("from", from);
        cmd.Parameters.AddWithValue("to", toExclusive);
        if (category is not null) cmd.Parameters.AddWithValue("c", category);
        using var r = cmd.ExecuteReader();
        var rows = new List<DailyRow>();
        while (r.Read())
        {
            var feature = r.GetString(4);
            rows.Add(new DailyRow(r.GetFieldValue<DateOnly>(0), r.GetString(1), r.GetString(2), r.GetString(3), feature.Length == 0 ? null : feature,
                r.GetBoolean(5), r.GetInt64(6), r.GetInt64(7), r.GetInt64(8), r.GetInt64(9), r.GetInt64(10), r.GetInt64(11)));
        }
        return rows;
    }

    public List<JobRow> Jobs(DbConnection connection, string tenantId, long fromMs, long toMs, (long FirstAtMs, long RowId)? after, int offset, int limit,
        JobOrder order = JobOrder.Newest)
    {
        var (column, desc) = order switch
        {
            JobOrder.Oldest => ("first_at", false),
            JobOrder.MostCredits => ("micro_credits", true),
            JobOrder.FewestCredits => ("micro_credits", false),
            _ => ("first_at", true),
        };
        var cmp = desc ? "<" : ">";
        var dir = desc ? "DESC" : "ASC";
        using var cmd = Command(connection, null, "SELECT rowid, job_id, calls, billable_calls, input_tokens, output_tokens, cached_input_tokens, micro_credits, internal_micro_credits, first_at, last_at "
            + "FROM usage_jobs WHERE tenant_id = @t AND first_at >= @from AND first_at < @to"
            + (after is null ? "" : $" AND ({column} {cmp} @af OR ({column} = @af AND rowid {cmp} @ar))")
            + $" ORDER BY {column} {dir}, rowid {dir} LIMIT @n OFFSET @o");
        cmd.Parameters.AddWithValue("t", tenantId);
        cmd.Parameters.AddWithValue("from", fromMs);
        cmd.Parameters.AddWithValue("to", toMs);
        if (after is { } a)
        {
            cmd.Parameters.AddWithValue("af", a.FirstAtMs);
            cmd.Parameters.AddWithValue("ar", a.RowId);
        }
        cmd.Parameters.AddWithValue("n", limit);
        cmd.Parameters.AddWithValue("o", offset);
        using var r = cmd.ExecuteReader();
        var rows = new List<JobRow>();
        while (r.Read())
            rows.Add(new JobRow(r.GetInt64(0), r.GetString(1), r.GetInt64(2), r.GetInt64(3), r.GetInt64(4), r.GetInt64(5), r.GetInt64(6), r.GetInt64(7), r.GetInt64(8), r.GetInt64(9), r.GetInt64(10)));
        return rows;
    }

    public long? JobRefOf(DbConnection connection, string tenantId, string jobId)
    {
        using var cmd = Command(connection, null, "SELECT rowid FROM usage_jobs WHERE tenant_id = @t AND job_id = @j");
        cmd.Parameters.AddWithValue("t", tenantId);
        cmd.Parameters.AddWithValue("j", jobId);
        return cmd.ExecuteScalar() is long rowid ? rowid : null;
    }

    public List<long> MisreferencedJobs(DbConnection connection, DbTransaction tx, string tenantId, int limit)
    {
        using var cmd = Command(connection, tx, """
            SELECT e.seq FROM usage_events e LEFT JOIN usage_jobs j ON j.rowid = e.job_ref
            WHERE e.tenant_id = @t AND ((e.job_id IS NULL) <> (e.job_ref IS NULL)
              OR (e.job_id IS NOT NULL AND (j.tenant_id IS DISTINCT FROM e.tenant_id OR j.job_id IS DISTINCT FROM e.job_id)))
            LIMIT @n
            """);
        cmd.Parameters.AddWithValue("t", tenantId);
        cmd.Parameters.AddWithValue("n", limit);
        using var r = cmd.ExecuteReader();
        var seqs = new List<long>();
        while (r.Read()) seqs.Add(r.GetInt64(0));
        return seqs;
    }

    public long JobCalls(DbConnection connection, string tenantId, string jobId)
    {
        using var cmd = Command(connection, null, "SELECT calls FROM usage_jobs WHERE tenant_id = @t AND job_id = @j");
        cmd.Parameters.AddWithValue("t", tenantId);
        cmd.Parameters.AddWithValue("j", jobId);
        return cmd.ExecuteScalar() is long n ? n : 0;
    }

    // The same text as SQLite's recomputation, so that a verifier's report reads the same on both engines. The day of an
    // instant is taken in UTC from its milliseconds (as RateUsage does); a quantity's µunits are truncated, as decimal.ToInt64 does.
    private const string DailyStoredSql = """
        SELECT to_char(day, 'YYYY-MM-DD') || '|' || category || '|' || provider || '|' || name || '|' || feature,
               (CASE WHEN is_meter THEN 1 ELSE 0 END) || ' ' || calls || ' ' || input_tokens || ' ' || output_tokens || ' ' || cached_input_tokens || ' ' || micro_credits || ' ' || quantity_micro
        FROM usage_daily WHERE tenant_id = @t
        """;

    private const string DailyRecomputedSql = """
        SELECT day || '|' || category || '|' || provider || '|' || name || '|' || feature,
               MAX(is_meter) || ' ' || COUNT(*) || ' ' || SUM(input_tokens) || ' ' || SUM(output_tokens) || ' ' || SUM(cached_input_tokens) || ' ' || SUM(micro_credits) || ' ' || SUM(quantity_micro)
        FROM (SELECT to_char((TIMESTAMP '1970-01-01' + occurred_at * INTERVAL '1 millisecond')::date, 'YYYY-MM-DD') AS day,
                     CASE WHEN status = 'failed' THEN 'failed' WHEN "internal" THEN 'internal' ELSE 'billable' END AS category,
                     provider, COALESCE(model, meter) AS name, COALESCE(feature, '') AS feature, CASE WHEN meter IS NULL THEN 0 ELSE 1 END AS is_meter,
                     input_tokens, output_tokens, cached_input_tokens, micro_credits,
                     CASE WHEN quantity IS NULL THEN 0 ELSE trunc(quantity * 1000000)::bigint END AS quantity_micro
              FROM usage_events WHERE tenant_id = @t) AS e
        GROUP BY day, category, provider, name, feature
        """;

    private const string JobsStoredSql = """
        SELECT job_id, calls || ' ' || billable_calls || ' ' || input_tokens || ' ' || output_tokens || ' ' || cached_input_tokens || ' ' || micro_credits
               || ' ' || internal_micro_credits || ' ' || first_at || ' ' || last_at
        FROM usage_jobs WHERE tenant_id = @t
        """;

    private const string JobsRecomputedSql = """
        SELECT job_id, COUNT(*) || ' ' || SUM(CASE WHEN billable THEN 1 ELSE 0 END) || ' ' || SUM(CASE WHEN billable THEN input_tokens ELSE 0 END) || ' ' || SUM(CASE WHEN billable THEN output_tokens ELSE 0 END)
               || ' ' || SUM(CASE WHEN billable THEN cached_input_tokens ELSE 0 END) || ' ' || SUM(CASE WHEN billable THEN micro_credits ELSE 0 END)
               || ' ' || SUM(CASE WHEN "internal" AND status <> 'failed' THEN micro_credits ELSE 0 END) || ' ' || MIN(occurred_at) || ' ' || MAX(occurred_at)
        FROM usage_events WHERE tenant_id = @t AND job_id IS NOT NULL GROUP BY job_id
        """;

    public (Dictionary<string, string> Stored, Dictionary<string, string> Recomputed) DailyReconciliation(DbConnection connection, DbTransaction tx, string tenantId) =>
        (Keyed(connection, tx, tenantId, DailyStoredSql), Keyed(connection, tx, tenantId, DailyRecomputedSql));

    public (Dictionary<string, string> Stored, Dictionary<string, string> Recomputed) JobReconciliation(DbConnection connection, DbTransaction tx, string tenantId) =>
        (Keyed(connection, tx, tenantId, JobsStoredSql), Keyed(connection, tx, tenantId, JobsRecomputedSql));

    private static Dictionary<string, string> Keyed(DbConnection connection, DbTransaction tx, string tenantId, string sql)
    {
        using var cmd = Command(connection, tx, sql);
        cmd.Parameters.AddWithValue("t", tenantId);
        try
        {
            using var r = cmd.ExecuteReader();
            var result = new Dictionary<string, string>(StringComparer.Ordinal);
            while (r.Read()) result[r.GetString(0)] = r.GetString(1);
            return result;
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.NumericValueOutOfRange)
        {
            throw new OverflowException(ex.MessageText, ex);
        }
    }

    /// <summary>
    /// PostgreSQL plans the listing itself: the tenant's entries of ux_usage_events_tenant_event or of
    /// ix_usage_events_tenant_jobref, or the primary key in seq order filtered by tenant, by its statistics.
    /// </summary>
    public (string Sql, object[] Parameters) CallsQuery(string tenantId, long matching, long stored, int page, bool newestFirst,
        DateTimeOffset? from, DateTimeOffset? to, string? model, string? feature, string? jobId, long? beforeSeq, long? afterSeq, int? limit = null)
    {
        var where = new List<string>();
        var args = new List<object>();
        string Arg(object value) { args.Add(value); return $"{{{args.Count - 1}}}"; }
        var tenantArg = Arg(tenantId);
        where.Add($"tenant_id = {tenantArg}");
        if (!string.IsNullOrEmpty(jobId))
        {
            var jobArg = Arg(jobId);
            where.Add($"job_ref = (SELECT rowid FROM usage_jobs WHERE tenant_id = {tenantArg} AND job_id = {jobArg})");
            where.Add($"job_id = {jobArg}");
        }
        if (from is { } f) where.Add($"occurred_at >= {Arg(f.ToUnixTimeMilliseconds())}");
        if (to is { } t) where.Add($"occurred_at < {Arg(t.ToUnixTimeMilliseconds())}");
        if (!string.IsNullOrEmpty(model)) where.Add($"(model = {Arg(model)} OR meter = {Arg(model)})");
        if (!string.IsNullOrEmpty(feature)) where.Add($"feature = {Arg(feature)}");
        if (beforeSeq is { } b) where.Add($"seq < {Arg(b)}");
        if (afterSeq is { } a) where.Add($"seq > {Arg(a)}");
        var sql = $"SELECT * FROM usage_events WHERE {string.Join(" AND ", where)} ORDER BY seq {(newestFirst ? "DESC" : "ASC")}"
            + (limit is { } n ? $" LIMIT {Arg(n)}" : "");
        return (sql, args.ToArray());
    }

    public long TenantCalls(DbConnection connection, string tenantId)
    {
        using var cmd = Command(connection, null, "SELECT COALESCE(SUM(events), 0)::bigint FROM usage_totals WHERE tenant_id = @t");
        cmd.Parameters.AddWithValue("t", tenantId);
        return (long)cmd.ExecuteScalar()!;
    }

    /// <summary>
    /// One commit. Every commit takes one transaction-scoped advisory lock, so that commits of several writers
    /// (instances, the command line) follow one another: seqs become visible in order, which the flusher's watermark
    /// relies on, and what a commit read of the running totals is still so when it writes.
    /// <para>
    /// The ordinary commit holds no id that is stored already (a client's retry is the exception), so the writer
    /// first assumes so: it decides the outcomes against the period limits only, writes the jobs' rollups (which give
    /// the calls their job_ref), inserts the events in one <c>INSERT … ON CONFLICT DO NOTHING</c> over arrays, so that
    /// the unique index on (tenant_id, event_id) is both the probe and the write, and adds the totals and daily rollups.
    /// If the insert stored fewer rows than were accepted, some ids were stored before (or when a row would pass its
    /// period's limit, which only the exact pass may decide): the transaction is rolled back and the commit is made
    /// again exactly, with the stored ids read first (one probe of the unique index each). A
    /// commit of retries costs two passes; a commit of new events, the insert alone.
    /// </para>
    /// </summary>
    internal sealed class Writer(PostgresDatabase database) : IUsageWriter
    {
        /// <summary>The advisory lock key every ingestion commit holds: "rpt-ingest" as an integer.</summary>
        public const long IngestLockKey = 0x7270742D696E67;

        private readonly NpgsqlConnection _connection = database.OpenNpgsql();

        private static readonly string InsertSql =
            $"INSERT INTO usage_events ({string.Join(", ", Written.Select(Quote))}) SELECT * FROM unnest("
            + "@tenant::text[], @event::text[], @occurred::bigint[], @received::bigint[], @period::date[], @provider::text[], @model::text[], @meter::text[], "
            + "@quantity::numeric[], @input::bigint[], @output::bigint[], @cached::bigint[], @feature::text[], @job::text[], @user::text[], @status::text[], "
            + "@internal::boolean[], @billable::boolean[], @price::bigint[], @rule::bigint[], @cost::numeric[], @micro::bigint[], @jobref::bigint[]) "
            + "ON CONFLICT (tenant_id, event_id) DO NOTHING";

        public WriteOutcome[][] Write(IReadOnlyList<ArraySegment<RatedUsage>> batches, long receivedAtMs, long maxPeriodMicroCredits, long maxPeriodTokens,
            out HashSet<string> tenants) =>
            Attempt(batches, receivedAtMs, maxPeriodMicroCredits, maxPeriodTokens, probe: false, out tenants)
            ?? Attempt(batches, receivedAtMs, maxPeriodMicroCredits, maxPeriodTokens, probe: true, out tenants)
            ?? throw new InvalidOperationException("An ingestion commit found stored ids it had probed for as new: a writer wrote usage_events without the ingestion lock.");

        /// <summary>One try at the commit; null (rolled back) when <paramref name="probe"/> is off and an accepted id was stored already.</summary>
        private WriteOutcome[][]? Attempt(IReadOnlyList<ArraySegment<RatedUsage>> batches, long receivedAtMs, long maxPeriodMicroCredits, long maxPeriodTokens,
            bool probe, out HashSet<string> tenants)
        {
            tenants = new HashSet<string>(StringComparer.Ordinal);
            var outcomes = new WriteOutcome[batches.Count][];
            using var tx = _connection.BeginTransaction();
            using (var lockCmd = new NpgsqlCommand($"SELECT pg_advisory_xact_lock({IngestLockKey})", _connection, tx)) lockCmd.ExecuteNonQuery();

            var stored = probe ? StoredIds(tx, batches) : [];
            var periodUse = PeriodUse(tx, batches);
            var inCommit = new HashSet<(string, string)>();
            var accepted = new List<(int Batch, int Index)>();
            var totals = new Dictionary<(string, string, string, string, string), long[]>();
            var days = new Dictionary<(string, string, string, string, string, string), long[]>();
            var jobs = new Dictionary<(string, string), long[]>();
            for (var b = 0; b < batches.Count; b++)
            {
                var (rows, offset, length) = (batches[b].Array!, batches[b].Offset, batches[b].Count);
                var outcome = outcomes[b] = new WriteOutcome[length];
                for (var i = 0; i < length; i++)
                {
                    ref var r = ref rows[offset + i];
                    if (stored.Contains((r.TenantId, r.EventId)) || !inCommit.Add((r.TenantId, r.EventId)))
                    {
                        outcome[i] = WriteOutcome.Duplicate;
                        continue;
                    }
                    var use = periodUse.TryGetValue((r.TenantId, r.PeriodStart), out var u) ? u : periodUse[(r.TenantId, r.PeriodStart)] = [0, 0];
                    var micro = checked(use[0] + r.MicroCredits);
                    var tokenSum = checked(use[1] + r.TotalTokens);
                    if (micro > maxPeriodMicroCredits || tokenSum > maxPeriodTokens)
                    {
                        // A row past its period's limit may be a retry, which answers "duplicate" first; and an id
                        // stored before, counted here as new, may have pushed it past: only the exact pass decides.
                        if (!probe)
                        {
                            tx.Rollback();
                            return null;
                        }
                        inCommit.Remove((r.TenantId, r.EventId));
                        outcome[i] = WriteOutcome.OverPeriodLimit;
                        continue;
                    }
                    use[0] = micro;
                    use[1] = tokenSum;
                    tenants.Add(r.TenantId);
                    accepted.Add((b, offset + i));
                    Add(totals, (r.TenantId, r.PeriodStart, r.Category, r.Provider, r.Name), in r);
                    Add(days, (r.TenantId, r.Day, r.Category, r.Provider, r.Name, r.Feature ?? UsageDaily.NoFeature), in r);
                    if (r.JobId is not null)
                    {
                        if (!jobs.TryGetValue((r.TenantId, r.JobId), out var job))
                            jobs[(r.TenantId, r.JobId)] = job = [0, 0, 0, 0, 0, 0, 0, r.OccurredAtMs, r.OccurredAtMs];
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
            if (accepted.Count > 0)
            {
                var jobRefs = UpsertJobs(tx, jobs);
                if (InsertEvents(tx, batches, accepted, receivedAtMs, jobRefs) != accepted.Count)
                {
                    tx.Rollback();
                    return null;
                }
                UpsertTotals(tx, totals);
                UpsertDays(tx, days);
            }
            tx.Commit();
            return outcomes;
        }

        /// <summary>Inserts the accepted rows in seq order; answers how many the unique index let in.</summary>
        private int InsertEvents(NpgsqlTransaction tx, IReadOnlyList<ArraySegment<RatedUsage>> batches, List<(int Batch, int Index)> accepted,
            long receivedAtMs, Dictionary<(string, string), long> jobRefs)
        {
            var n = accepted.Count;
            var tenant = new string[n]; var @event = new string[n]; var occurred = new long[n]; var period = new DateOnly[n];
            var provider = new string[n]; var model = new string?[n]; var meter = new string?[n]; var quantity = new decimal?[n];
            var input = new long[n]; var output = new long[n]; var cached = new long[n]; var feature = new string?[n];
            var job = new string?[n]; var user = new string?[n]; var status = new string[n]; var @internal = new bool[n];
            var billable = new bool[n]; var price = new long[n]; var rule = new long[n]; var cost = new decimal[n];
            var micro = new long[n]; var jobref = new long?[n];
            for (var k = 0; k < n; k++)
            {
                var (b, index) = accepted[k];
                ref var r = ref batches[b].Array![index];
                tenant[k] = r.TenantId;
                @event[k] = r.EventId;
                occurred[k] = r.OccurredAtMs;
                period[k] = PortableSql.ParseDay(r.PeriodStart);
                provider[k] = r.Provider;
                model[k] = r.Model;
                meter[k] = r.Meter;
                quantity[k] = r.Quantity is null ? null : decimal.Parse(r.Quantity, NumberStyles.Number, CultureInfo.InvariantCulture);
                input[k] = r.InputTokens;
                output[k] = r.OutputTokens;
                cached[k] = r.CachedInputTokens;
                feature[k] = r.Feature;
                job[k] = r.JobId;
                user[k] = r.UserId;
                status[k] = r.Status;
                @internal[k] = r.Internal;
                billable[k] = r.Billable;
                price[k] = r.PriceId;
                rule[k] = r.RuleId;
                cost[k] = decimal.Parse(r.CostUsd, NumberStyles.Number, CultureInfo.InvariantCulture);
                micro[k] = r.MicroCredits;
                jobref[k] = r.JobId is null ? null : jobRefs[(r.TenantId, r.JobId)];
            }
            using var cmd = new NpgsqlCommand(InsertSql, _connection, tx);
            var received = new long[n];
            Array.Fill(received, receivedAtMs);
            cmd.Parameters.AddWithValue("tenant", tenant);
            cmd.Parameters.AddWithValue("event", @event);
            cmd.Parameters.AddWithValue("occurred", occurred);
            cmd.Parameters.AddWithValue("received", received);
            cmd.Parameters.AddWithValue("period", period);
            cmd.Parameters.AddWithValue("provider", provider);
            cmd.Parameters.AddWithValue("model", model);
            cmd.Parameters.AddWithValue("meter", meter);
            cmd.Parameters.AddWithValue("quantity", quantity);
            cmd.Parameters.AddWithValue("input", input);
            cmd.Parameters.AddWithValue("output", output);
            cmd.Parameters.AddWithValue("cached", cached);
            cmd.Parameters.AddWithValue("feature", feature);
            cmd.Parameters.AddWithValue("job", job);
            cmd.Parameters.AddWithValue("user", user);
            cmd.Parameters.AddWithValue("status", status);
            cmd.Parameters.AddWithValue("internal", @internal);
            cmd.Parameters.AddWithValue("billable", billable);
            cmd.Parameters.AddWithValue("price", price);
            cmd.Parameters.AddWithValue("rule", rule);
            cmd.Parameters.AddWithValue("cost", cost);
            cmd.Parameters.AddWithValue("micro", micro);
            cmd.Parameters.AddWithValue("jobref", jobref);
            return cmd.ExecuteNonQuery();
        }

        private static void Add<TKey>(Dictionary<TKey, long[]> sums, TKey key, in RatedUsage r) where TKey : notnull
        {
            if (!sums.TryGetValue(key, out var acc)) sums[key] = acc = [r.Meter is null ? 0 : 1, 0, 0, 0, 0, 0, 0];
            acc[1]++;
            acc[2] += r.InputTokens;
            acc[3] += r.OutputTokens;
            acc[4] += r.CachedInputTokens;
            acc[5] += r.MicroCredits;
            acc[6] += r.QuantityMicro;
        }

        /// <summary>The (tenant, event id) pairs of the commit that are stored already: one probe of the unique index each.</summary>
        private HashSet<(string, string)> StoredIds(NpgsqlTransaction tx, IReadOnlyList<ArraySegment<RatedUsage>> batches)
        {
            var tenantIds = new List<string>();
            var eventIds = new List<string>();
            foreach (var batch in batches)
                foreach (var r in batch)
                {
                    tenantIds.Add(r.TenantId);
                    eventIds.Add(r.EventId);
                }
            using var cmd = new NpgsqlCommand("""
                SELECT e.tenant_id, e.event_id FROM usage_events e
                JOIN unnest(@t::text[], @e::text[]) AS u(t, e) ON e.tenant_id = u.t AND e.event_id = u.e
                """, _connection, tx);
            cmd.Parameters.AddWithValue("t", tenantIds);
            cmd.Parameters.AddWithValue("e", eventIds);
            using var r2 = cmd.ExecuteReader();
            var found = new HashSet<(string, string)>();
            while (r2.Read()) found.Add((r2.GetString(0), r2.GetString(1)));
            return found;
        }

        /// <summary>What each (tenant, period) of the commit already holds (µcr, tokens), from the running totals.</summary>
        private Dictionary<(string, string), long[]> PeriodUse(NpgsqlTransaction tx, IReadOnlyList<ArraySegment<RatedUsage>> batches)
        {
            var keys = new HashSet<(string, string)>();
            foreach (var batch in batches)
                foreach (var row in batch) keys.Add((row.TenantId, row.PeriodStart));
            using var cmd = new NpgsqlCommand("""
                SELECT s.tenant_id, s.period_start, COALESCE(SUM(s.micro_credits), 0)::bigint, COALESCE(SUM(s.input_tokens + s.output_tokens + s.cached_input_tokens), 0)::bigint
                FROM usage_totals s JOIN unnest(@t::text[], @p::date[]) AS u(t, p) ON s.tenant_id = u.t AND s.period_start = u.p
                GROUP BY s.tenant_id, s.period_start
                """, _connection, tx);
            cmd.Parameters.AddWithValue("t", keys.Select(k => k.Item1).ToArray());
            cmd.Parameters.AddWithValue("p", keys.Select(k => PortableSql.ParseDay(k.Item2)).ToArray());
            using var r = cmd.ExecuteReader();
            var use = new Dictionary<(string, string), long[]>();
            while (r.Read()) use[(r.GetString(0), r.GetDay(1))] = [r.GetInt64(2), r.GetInt64(3)];
            return use;
        }

        /// <summary>Adds the commit's calls to their jobs' rollups, creating a job's row on its first call; answers each job's rowid.</summary>
        private Dictionary<(string, string), long> UpsertJobs(NpgsqlTransaction tx, Dictionary<(string, string), long[]> jobs)
        {
            var refs = new Dictionary<(string, string), long>();
            if (jobs.Count == 0) return refs;
            using var cmd = new NpgsqlCommand("""
                INSERT INTO usage_jobs (tenant_id, job_id, calls, billable_calls, input_tokens, output_tokens, cached_input_tokens,
                  micro_credits, internal_micro_credits, first_at, last_at)
                SELECT * FROM unnest(@t::text[], @j::text[], @c0::bigint[], @c1::bigint[], @c2::bigint[], @c3::bigint[], @c4::bigint[], @c5::bigint[], @c6::bigint[], @c7::bigint[], @c8::bigint[])
                ON CONFLICT (tenant_id, job_id) DO UPDATE SET
                  calls = usage_jobs.calls + excluded.calls,
                  billable_calls = usage_jobs.billable_calls + excluded.billable_calls,
                  input_tokens = usage_jobs.input_tokens + excluded.input_tokens,
                  output_tokens = usage_jobs.output_tokens + excluded.output_tokens,
                  cached_input_tokens = usage_jobs.cached_input_tokens + excluded.cached_input_tokens,
                  micro_credits = usage_jobs.micro_credits + excluded.micro_credits,
                  internal_micro_credits = usage_jobs.internal_micro_credits + excluded.internal_micro_credits,
                  first_at = LEAST(usage_jobs.first_at, excluded.first_at),
                  last_at = GREATEST(usage_jobs.last_at, excluded.last_at)
                RETURNING tenant_id, job_id, rowid
                """, _connection, tx);
            var list = jobs.ToList();
            cmd.Parameters.AddWithValue("t", list.Select(j => j.Key.Item1).ToArray());
            cmd.Parameters.AddWithValue("j", list.Select(j => j.Key.Item2).ToArray());
            for (var c = 0; c < 9; c++) cmd.Parameters.AddWithValue($"c{c}", list.Select(j => j.Value[c]).ToArray());
            using var r = cmd.ExecuteReader();
            while (r.Read()) refs[(r.GetString(0), r.GetString(1))] = r.GetInt64(2);
            return refs;
        }

        private void UpsertTotals(NpgsqlTransaction tx, Dictionary<(string, string, string, string, string), long[]> totals)
        {
            using var cmd = new NpgsqlCommand("""
                INSERT INTO usage_totals (tenant_id, period_start, category, provider, name, is_meter, events,
                  input_tokens, output_tokens, cached_input_tokens, micro_credits, quantity_micro)
                SELECT * FROM unnest(@t::text[], @p::date[], @c::text[], @pr::text[], @n::text[], @m::boolean[], @v1::bigint[], @v2::bigint[], @v3::bigint[], @v4::bigint[], @v5::bigint[], @v6::bigint[])
                ON CONFLICT (tenant_id, period_start, category, provider, name) DO UPDATE SET
                  events = usage_totals.events + excluded.events,
                  input_tokens = usage_totals.input_tokens + excluded.input_tokens,
                  output_tokens = usage_totals.output_tokens + excluded.output_tokens,
                  cached_input_tokens = usage_totals.cached_input_tokens + excluded.cached_input_tokens,
                  micro_credits = usage_totals.micro_credits + excluded.micro_credits,
                  quantity_micro = usage_totals.quantity_micro + excluded.quantity_micro
                """, _connection, tx);
            var list = totals.ToList();
            cmd.Parameters.AddWithValue("t", list.Select(x => x.Key.Item1).ToArray());
            cmd.Parameters.AddWithValue("p", list.Select(x => PortableSql.ParseDay(x.Key.Item2)).ToArray());
            cmd.Parameters.AddWithValue("c", list.Select(x => x.Key.Item3).ToArray());
            cmd.Parameters.AddWithValue("pr", list.Select(x => x.Key.Item4).ToArray());
            cmd.Parameters.AddWithValue("n", list.Select(x => x.Key.Item5).ToArray());
            cmd.Parameters.AddWithValue("m", list.Select(x => x.Value[0] == 1).ToArray());
            for (var c = 1; c < 7; c++) cmd.Parameters.AddWithValue($"v{c}", list.Select(x => x.Value[c]).ToArray());
            cmd.ExecuteNonQuery();
        }

        private void UpsertDays(NpgsqlTransaction tx, Dictionary<(string, string, string, string, string, string), long[]> days)
        {
            using var cmd = new NpgsqlCommand("""
                INSERT INTO usage_daily (tenant_id, day, category, provider, name, feature, is_meter, calls,
                  input_tokens, output_tokens, cached_input_tokens, micro_credits, quantity_micro)
                SELECT * FROM unnest(@t::text[], @d::date[], @c::text[], @pr::text[], @n::text[], @f::text[], @m::boolean[], @v1::bigint[], @v2::bigint[], @v3::bigint[], @v4::bigint[], @v5::bigint[], @v6::bigint[])
                ON CONFLICT (tenant_id, day, category, provider, name, feature) DO UPDATE SET
                  calls = usage_daily.calls + excluded.calls,
                  input_tokens = usage_daily.input_tokens + excluded.input_tokens,
                  output_tokens = usage_daily.output_tokens + excluded.output_tokens,
                  cached_input_tokens = usage_daily.cached_input_tokens + excluded.cached_input_tokens,
                  micro_credits = usage_daily.micro_credits + excluded.micro_credits,
                  quantity_micro = usage_daily.quantity_micro + excluded.quantity_micro
                """, _connection, tx);
            var list = days.ToList();
            cmd.Parameters.AddWithValue("t", list.Select(x => x.Key.Item1).ToArray());
            cmd.Parameters.AddWithValue("d", list.Select(x => PortableSql.ParseDay(x.Key.Item2)).ToArray());
            cmd.Parameters.AddWithValue("c", list.Select(x => x.Key.Item3).ToArray());
            cmd.Parameters.AddWithValue("pr", list.Select(x => x.Key.Item4).ToArray());
            cmd.Parameters.AddWithValue("n", list.Select(x => x.Key.Item5).ToArray());
            cmd.Parameters.AddWithValue("f", list.Select(x => x.Key.Item6).ToArray());
            cmd.Parameters.AddWithValue("m", list.Select(x => x.Value[0] == 1).ToArray());
            for (var c = 1; c < 7; c++) cmd.Parameters.AddWithValue($"v{c}", list.Select(x => x.Value[c]).ToArray());
            cmd.ExecuteNonQuery();
        }

        public void BetweenCommits(long nowMs) { }

        public void Dispose() => _connection.Dispose();
    }
}
