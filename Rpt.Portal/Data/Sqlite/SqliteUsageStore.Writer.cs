using System.Data.Common;
using System.Globalization;
using System.Text;
using Microsoft.Data.Sqlite;
using Rpt.Portal.Metering;
using SQLitePCL;

namespace Rpt.Portal.Data.Sqlite;

/// <summary>The ingestion writer: the native binding, one transaction per group commit.</summary>
public sealed partial class SqliteUsageStore
{
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

        // Each row keeps its period's sums and those of its latest day: an event of a later day starts the day over, one of
        // the same day adds to it, one of an earlier day (late) adds to the period only. Every SET reads the row as it was.
        private const string ScopeSql = """
            INSERT INTO usage_scopes (tenant_id, scope, period_start, value, calls, micro_credits, last_day, day_calls, day_micro_credits)
            VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)
            ON CONFLICT (tenant_id, scope, period_start, value) DO UPDATE SET
              calls = calls + excluded.calls,
              micro_credits = micro_credits + excluded.micro_credits,
              day_calls = CASE WHEN excluded.last_day > last_day THEN excluded.day_calls
                               WHEN excluded.last_day = last_day THEN day_calls + excluded.day_calls ELSE day_calls END,
              day_micro_credits = CASE WHEN excluded.last_day > last_day THEN excluded.day_micro_credits
                                       WHEN excluded.last_day = last_day THEN day_micro_credits + excluded.day_micro_credits ELSE day_micro_credits END,
              last_day = max(last_day, excluded.last_day)
            """;

        // first_at is indexed: assigning it in the upsert would rewrite the index entry of every job touched by
        // every commit. A job's calls arrive in order nearly always, so the rare earlier call is a separate update
        // whose WHERE is false (a key lookup, no write) in the common case.
        /// <summary>A job's billed credits of the commit (?3) drawn from each of its unreleased holds (<see cref="Ledger.Reservations.DrawSet"/>).</summary>
        private static readonly string DrawSql = "UPDATE credit_reservations SET " + Ledger.Reservations.DrawSet("?3")
            + " WHERE tenant_id = ?1 AND job_id = ?2 AND released_at IS NULL";

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

        private readonly sqlite3_stmt _insert, _upsert, _daily, _scope, _job, _draw, _jobFirst, _periodUseQuery, _confirm, _since, _jobRef, _jobCreate;
        private readonly Dictionary<(string, string), long> _jobRefs = new();
        private readonly EventIdIndex _ids;
        private long _indexedSeq;
        private readonly HashSet<(string, string)> _inCommit = new();
        private readonly List<(ulong Hash, long Seq)> _added = new();
        private readonly Dictionary<(string, string, string, string, string, string), long[]> _days = new();
        private readonly Dictionary<(string, string), long[]> _jobs = new();
        private readonly Dictionary<(string, string, string, string), ScopeSum> _scopes = new();
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
            Check(raw.sqlite3_prepare_v2(_db, ScopeSql, out _scope), "prepare");
            Check(raw.sqlite3_prepare_v2(_db, JobSql, out _job), "prepare");
            Check(raw.sqlite3_prepare_v2(_db, JobFirstSql, out _jobFirst), "prepare");
            Check(raw.sqlite3_prepare_v2(_db, DrawSql, out _draw), "prepare");
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
            _scopes.Clear();
            _periodUse.Clear();
            _inCommit.Clear();
            _added.Clear();
            _jobRefs.Clear();
            var outcomes = new WriteOutcome[batches.Count][];
            _database.WriteTurn.Wait();
            try
            {
                Exec("BEGIN IMMEDIATE");
            }
            catch
            {
                _database.WriteTurn.Release();
                throw;
            }
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

                        if (r.Billable) UsageScopeSums.Add(_scopes, in r);

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
                foreach (var ((tenant, scope, period, value), sum) in _scopes)
                {
                    Text(_scope, 1, tenant);
                    Text(_scope, 2, scope);
                    Text(_scope, 3, period);
                    Text(_scope, 4, value);
                    raw.sqlite3_bind_int64(_scope, 5, sum.Calls);
                    raw.sqlite3_bind_int64(_scope, 6, sum.MicroCredits);
                    Text(_scope, 7, sum.Day);
                    raw.sqlite3_bind_int64(_scope, 8, sum.DayCalls);
                    raw.sqlite3_bind_int64(_scope, 9, sum.DayMicroCredits);
                    Step(_scope, "scope rollup");
                }
                foreach (var ((tenant, jobId), acc) in _jobs)
                {
                    Text(_job, 1, tenant);
                    Text(_job, 2, jobId);
                    for (var i = 0; i < 9; i++) raw.sqlite3_bind_int64(_job, 3 + i, acc[i]);
                    Step(_job, "job rollup");
                    if (acc[5] > 0)
                    {
                        // The job's holds draw what it was billed, in the commit that bills it (a key lookup when it has none).
                        Text(_draw, 1, tenant);
                        Text(_draw, 2, jobId);
                        raw.sqlite3_bind_int64(_draw, 3, acc[5]);
                        Step(_draw, "holds drawn");
                    }
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
            finally
            {
                _database.WriteTurn.Release();
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
            _scope.Dispose();
            _job.Dispose();
            _jobFirst.Dispose();
            _draw.Dispose();
            _confirm.Dispose();
            _since.Dispose();
            _jobRef.Dispose();
            _jobCreate.Dispose();
            _db.Dispose();
        }
    }
}
