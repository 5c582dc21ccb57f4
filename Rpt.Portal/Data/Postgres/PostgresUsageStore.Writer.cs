using System.Data.Common;
using System.Globalization;
using System.Text;
using Npgsql;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Data.Postgres;

/// <summary>The ingestion writer: one transaction per group commit, INSERT … ON CONFLICT DO NOTHING from arrays.</summary>
public sealed partial class PostgresUsageStore
{
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

        /// <summary>
        /// The writer's connection, opened at its first commit and again after one broke (the primary restarted or
        /// failed over, the network was cut): the commit that met the break answers "unavailable", the next one
        /// connects anew, to whichever host is primary by then.
        /// </summary>
        private NpgsqlConnection? _connection;

        private NpgsqlConnection Connection()
        {
            if (_connection is { State: System.Data.ConnectionState.Open }) return _connection;
            _connection?.Dispose();
            _connection = null;
            return _connection = database.OpenNpgsql();
        }

        private static readonly string InsertSql =
            $"INSERT INTO usage_events ({string.Join(", ", Written.Select(Quote))}) SELECT * FROM unnest("
            + "@tenant::text[], @event::text[], @occurred::bigint[], @received::bigint[], @period::date[], @provider::text[], @model::text[], @meter::text[], "
            + "@quantity::numeric[], @input::bigint[], @output::bigint[], @cached::bigint[], @feature::text[], @job::text[], @user::text[], @status::text[], "
            + "@internal::boolean[], @billable::boolean[], @price::bigint[], @rule::bigint[], @cost::numeric[], @micro::bigint[], @project::text[], @apikey::text[], @jobref::bigint[]) "
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
            using var tx = Connection().BeginTransaction();
            using (var lockCmd = new NpgsqlCommand($"SELECT pg_advisory_xact_lock({IngestLockKey})", _connection!, tx)) lockCmd.ExecuteNonQuery();

            var stored = probe ? StoredIds(tx, batches) : [];
            var periodUse = PeriodUse(tx, batches);
            var inCommit = new HashSet<(string, string)>();
            var accepted = new List<(int Batch, int Index)>();
            var totals = new Dictionary<(string, string, string, string, string), long[]>();
            var days = new Dictionary<(string, string, string, string, string, string), long[]>();
            var jobs = new Dictionary<(string, string), long[]>();
            var scopes = new Dictionary<(string, string, string, string), ScopeSum>();
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
                    if (r.Billable) UsageScopeSums.Add(scopes, in r);
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
                DrawHolds(tx, jobs);
                if (InsertEvents(tx, batches, accepted, receivedAtMs, jobRefs) != accepted.Count)
                {
                    tx.Rollback();
                    return null;
                }
                UpsertTotals(tx, totals);
                UpsertDays(tx, days);
                UpsertScopes(tx, scopes);
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
            var micro = new long[n]; var jobref = new long?[n]; var project = new string?[n]; var apiKey = new string?[n];
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
                project[k] = r.Project;
                apiKey[k] = r.ApiKeyId;
                jobref[k] = r.JobId is null ? null : jobRefs[(r.TenantId, r.JobId)];
            }
            using var cmd = new NpgsqlCommand(InsertSql, _connection!, tx);
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
            cmd.Parameters.AddWithValue("project", project);
            cmd.Parameters.AddWithValue("apikey", apiKey);
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
                """, _connection!, tx);
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
                """, _connection!, tx);
            cmd.Parameters.AddWithValue("t", keys.Select(k => k.Item1).ToArray());
            cmd.Parameters.AddWithValue("p", keys.Select(k => PortableSql.ParseDay(k.Item2)).ToArray());
            using var r = cmd.ExecuteReader();
            var use = new Dictionary<(string, string), long[]>();
            while (r.Read()) use[(r.GetString(0), r.GetDay(1))] = [r.GetInt64(2), r.GetInt64(3)];
            return use;
        }

        /// <summary>
        /// Each job's billed credits of the commit drawn from every unreleased hold of the job (<see cref="Ledger.Reservations.DrawSet"/>),
        /// in one statement, after the jobs' rows are locked by their upsert: two commits that draw the same hold wait on that
        /// row first. A hold placed while this commit is written, and committed after this statement ran, is not drawn by it:
        /// that usage counts as usage before the hold (docs/RULES.md, "Reservations").
        /// </summary>
        private void DrawHolds(NpgsqlTransaction tx, Dictionary<(string, string), long[]> jobs)
        {
            var billed = jobs.Where(j => j.Value[5] > 0).ToList();
            if (billed.Count == 0) return;
            using var cmd = new NpgsqlCommand($"""
                UPDATE credit_reservations SET {Ledger.Reservations.DrawSet("u.d")}
                FROM unnest(@t::text[], @j::text[], @d::bigint[]) AS u(t, j, d)
                WHERE credit_reservations.tenant_id = u.t AND credit_reservations.job_id = u.j AND credit_reservations.released_at IS NULL
                """, _connection!, tx);
            cmd.Parameters.AddWithValue("t", billed.Select(j => j.Key.Item1).ToArray());
            cmd.Parameters.AddWithValue("j", billed.Select(j => j.Key.Item2).ToArray());
            cmd.Parameters.AddWithValue("d", billed.Select(j => j.Value[5]).ToArray());
            cmd.ExecuteNonQuery();
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
                """, _connection!, tx);
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
                """, _connection!, tx);
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
                """, _connection!, tx);
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

        private void UpsertScopes(NpgsqlTransaction tx, Dictionary<(string, string, string, string), ScopeSum> scopes)
        {
            if (scopes.Count == 0) return;
            using var cmd = new NpgsqlCommand("""
                INSERT INTO usage_scopes (tenant_id, scope, period_start, value, calls, micro_credits, last_day, day_calls, day_micro_credits)
                SELECT * FROM unnest(@t::text[], @s::text[], @p::date[], @v::text[], @c::bigint[], @m::bigint[], @d::date[], @dc::bigint[], @dm::bigint[])
                ON CONFLICT (tenant_id, scope, period_start, value) DO UPDATE SET
                  calls = usage_scopes.calls + excluded.calls,
                  micro_credits = usage_scopes.micro_credits + excluded.micro_credits,
                  day_calls = CASE WHEN excluded.last_day > usage_scopes.last_day THEN excluded.day_calls
                                   WHEN excluded.last_day = usage_scopes.last_day THEN usage_scopes.day_calls + excluded.day_calls ELSE usage_scopes.day_calls END,
                  day_micro_credits = CASE WHEN excluded.last_day > usage_scopes.last_day THEN excluded.day_micro_credits
                                           WHEN excluded.last_day = usage_scopes.last_day THEN usage_scopes.day_micro_credits + excluded.day_micro_credits
                                           ELSE usage_scopes.day_micro_credits END,
                  last_day = GREATEST(usage_scopes.last_day, excluded.last_day)
                """, _connection!, tx);
            var list = scopes.ToList();
            cmd.Parameters.AddWithValue("t", list.Select(x => x.Key.Item1).ToArray());
            cmd.Parameters.AddWithValue("s", list.Select(x => x.Key.Item2).ToArray());
            cmd.Parameters.AddWithValue("p", list.Select(x => PortableSql.ParseDay(x.Key.Item3)).ToArray());
            cmd.Parameters.AddWithValue("v", list.Select(x => x.Key.Item4).ToArray());
            cmd.Parameters.AddWithValue("c", list.Select(x => x.Value.Calls).ToArray());
            cmd.Parameters.AddWithValue("m", list.Select(x => x.Value.MicroCredits).ToArray());
            cmd.Parameters.AddWithValue("d", list.Select(x => PortableSql.ParseDay(x.Value.Day)).ToArray());
            cmd.Parameters.AddWithValue("dc", list.Select(x => x.Value.DayCalls).ToArray());
            cmd.Parameters.AddWithValue("dm", list.Select(x => x.Value.DayMicroCredits).ToArray());
            cmd.ExecuteNonQuery();
        }

        public void BetweenCommits(long nowMs) { }

        public void Dispose() => _connection?.Dispose();
    }
}
