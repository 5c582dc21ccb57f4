using System.Collections.Concurrent;
using System.Globalization;
using System.Threading.Channels;
using Microsoft.Data.Sqlite;
using SQLitePCL;
using Microsoft.Extensions.Options;
using Rpt.Portal.Data;
using Rpt.Portal.Ledger;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Metering;

/// <summary>
/// Accepts usage events exactly once per tenant and id, rated and durable before it answers.
/// Validation and rating run on the caller's thread; one writer thread takes whatever batches are
/// waiting and commits them in a single transaction (group commit), so that the fsync that
/// synchronous=FULL costs is shared by every request that arrived meanwhile.
/// </summary>
public sealed class UsageIngestor : IDisposable
{
    public const int MaxIdLength = 128;
    public const int MaxTextLength = 128;
    public const long MaxTokensPerCall = 10_000_000_000;
    public const decimal MaxQuantity = 1_000_000_000m;

    private readonly SqliteDatabase _database;
    private readonly PriceBookProvider _prices;
    private readonly TenantDirectory _tenants;
    private readonly TimeProvider _time;
    private readonly MeteringOptions _options;
    private readonly Channel<PendingBatch> _queue = Channel.CreateBounded<PendingBatch>(
        new BoundedChannelOptions(512) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
    private readonly Thread _writer;
    private static readonly ConcurrentDictionary<DateOnly, string> DayText = new();

    public UsageIngestor(SqliteDatabase database, PriceBookProvider prices, TenantDirectory tenants, TimeProvider time,
        IOptions<MeteringOptions> options)
    {
        _database = database;
        _prices = prices;
        _tenants = tenants;
        _time = time;
        _options = options.Value;
        _writer = new Thread(WriterLoop) { IsBackground = true, Name = "usage-writer" };
        _writer.Start();
    }

    /// <summary>Raised after a commit with the tenants whose usage changed (on a pool thread).</summary>
    public event Action<IReadOnlyCollection<string>>? Committed;

    /// <param name="events">The batch, in the order sent.</param>
    /// <param name="keyTenant">The tenant of a tenant key; null for a platform key, which must name the tenant per event.</param>
    public async Task<IngestResult> IngestAsync(IReadOnlyList<UsageEventInput?> events, string? keyTenant, CancellationToken cancellationToken = default)
    {
        var now = _time.GetUtcNow();
        var book = _prices.Current;
        var results = new IngestItemResult[events.Count];
        var rows = new List<Row>(events.Count);
        for (var i = 0; i < events.Count; i++)
        {
            var error = Prepare(events[i], keyTenant, now, book, out var row);
            if (error is null)
            {
                row.Index = i;
                rows.Add(row);
            }
            else
            {
                results[i] = new IngestItemResult(events[i]?.Id, IngestStatus.Rejected, error);
            }
        }

        var accepted = 0;
        var duplicates = 0;
        if (rows.Count > 0)
        {
            var batch = new PendingBatch(rows.ToArray());
            await _queue.Writer.WriteAsync(batch, cancellationToken);
            // Once queued the batch will be written; waiting is not cancellable, so the answer is never lost.
            var outcome = await batch.Done.Task;
            for (var j = 0; j < batch.Rows.Length; j++)
            {
                ref var row = ref batch.Rows[j];
                if (outcome[j]) accepted++; else duplicates++;
                results[row.Index] = new IngestItemResult(row.EventId, outcome[j] ? IngestStatus.Accepted : IngestStatus.Duplicate);
            }
        }
        return new IngestResult(accepted, duplicates, events.Count - accepted - duplicates, results);
    }

    private string? Prepare(UsageEventInput? e, string? keyTenant, DateTimeOffset now, PriceBook book, out Row row)
    {
        row = default;
        if (e is null) return "the event is null";
        if (string.IsNullOrEmpty(e.Id)) return "id is required";
        if (e.Id.Length > MaxIdLength) return $"id is {e.Id.Length} characters long; at most {MaxIdLength} are allowed";

        string tenantId;
        if (keyTenant is null)
        {
            if (string.IsNullOrEmpty(e.TenantId)) return "tenant_id is required with a platform key";
            tenantId = e.TenantId;
        }
        else
        {
            if (!string.IsNullOrEmpty(e.TenantId) && e.TenantId != keyTenant)
                return $"tenant_id '{e.TenantId}' does not match the tenant of the API key";
            tenantId = keyTenant;
        }
        if (!_tenants.TryGetAnchor(tenantId, out var anchor)) return $"unknown tenant '{tenantId}'";

        if (e.OccurredAt is not { } occurredAt) return "occurred_at is required";
        if (occurredAt > now + _options.MaxFutureSkew)
            return $"occurred_at {occurredAt:O} is in the future (now is {now:O})";

        var status = UsageStatus.Succeeded;
        if (e.Status is not null)
        {
            if (e.Status == "failed") status = UsageStatus.Failed;
            else if (e.Status != "succeeded") return $"status '{e.Status}' is not one of: succeeded, failed";
        }

        var lengthError = TooLong(e.Provider, "provider") ?? TooLong(e.Feature, "feature") ?? TooLong(e.JobId, "job_id")
            ?? TooLong(e.UserId, "user_id") ?? TooLong(e.Model, "model") ?? TooLong(e.Meter, "meter");
        if (lengthError is not null) return lengthError;

        var input = e.InputTokens ?? 0;
        var output = e.OutputTokens ?? 0;
        var cached = e.CachedInputTokens ?? 0;
        var tokenError = TokenError(input, "input_tokens") ?? TokenError(output, "output_tokens") ?? TokenError(cached, "cached_input_tokens");
        if (tokenError is not null) return tokenError;

        var isMeter = !string.IsNullOrEmpty(e.Meter);
        if (isMeter == !string.IsNullOrEmpty(e.Model))
            return isMeter ? "model and meter cannot both be set" : "either model or meter is required";
        decimal? quantity = null;
        if (isMeter)
        {
            if (e.Quantity is not { } q) return $"quantity is required for meter '{e.Meter}'";
            if (q <= 0 || q > MaxQuantity) return $"quantity {q} must be greater than 0 and at most {MaxQuantity}";
            if (decimal.Round(q, 6) != q) return $"quantity {q} has more than 6 decimal places";
            if (input != 0 || output != 0 || cached != 0) return $"tokens cannot be reported for meter '{e.Meter}'";
            quantity = q;
        }
        else if (e.Quantity is not null)
        {
            return "quantity is only for non-token meters; report tokens for a model";
        }

        var (price, priceError) = book.Find(e.Provider, isMeter ? e.Meter! : e.Model!, isMeter, occurredAt);
        if (price is null) return priceError;
        var rule = book.RuleAt(occurredAt);

        var succeeded = status == UsageStatus.Succeeded;
        var cost = succeeded ? Rating.CostUsd(price, input, output, cached, quantity) : 0m;
        var micro = succeeded ? Rating.MicroCredits(cost, rule) : 0L;
        var isInternal = e.Internal ?? false;
        var period = BillingPeriod.Containing(anchor, occurredAt);

        row = new Row
        {
            TenantId = tenantId,
            EventId = e.Id,
            OccurredAtMs = occurredAt.ToUnixTimeMilliseconds(),
            PeriodStart = DayText.GetOrAdd(period.Start, d => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)),
            Provider = price.Provider,
            Model = price.Model,
            Meter = price.Meter,
            Quantity = quantity?.ToString(CultureInfo.InvariantCulture),
            QuantityMicro = quantity is { } qm ? (long)(qm * 1_000_000m) : 0,
            InputTokens = input,
            OutputTokens = output,
            CachedInputTokens = cached,
            Feature = e.Feature,
            JobId = e.JobId,
            UserId = e.UserId,
            Failed = !succeeded,
            Internal = isInternal,
            Billable = succeeded && !isInternal,
            PriceId = price.Id,
            RuleId = rule.Id,
            CostUsd = cost.ToString(CultureInfo.InvariantCulture),
            MicroCredits = micro,
        };
        return null;
    }

    private static string? TooLong(string? value, string field) =>
        value is { Length: > MaxTextLength } ? $"{field} is {value.Length} characters long; at most {MaxTextLength} are allowed" : null;

    private static string? TokenError(long value, string field) =>
        value < 0 ? $"{field} must not be negative (got {value})"
        : value > MaxTokensPerCall ? $"{field} {value} exceeds the per-call limit of {MaxTokensPerCall}"
        : null;

    private void WriterLoop()
    {
        using var writer = new BatchWriter(_database);
        var batches = new List<PendingBatch>();
        var reader = _queue.Reader;
        while (true)
        {
            if (!reader.TryRead(out var first))
            {
                if (!reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult()) return;
                continue;
            }
            batches.Add(first);
            var count = first.Rows.Length;
            while (count < _options.MaxEventsPerCommit && reader.TryRead(out var next))
            {
                batches.Add(next);
                count += next.Rows.Length;
            }
            HashSet<string>? tenants = null;
            try
            {
                var outcomes = writer.Write(batches, _time.GetUtcNow().ToUnixTimeMilliseconds(), out tenants);
                for (var i = 0; i < batches.Count; i++) batches[i].Done.TrySetResult(outcomes[i]);
            }
            catch (Exception ex)
            {
                foreach (var b in batches) b.Done.TrySetException(new IngestUnavailableException(ex));
                tenants = null;
            }
            batches.Clear();
            if (tenants is { Count: > 0 } && Committed is { } handler)
                ThreadPool.QueueUserWorkItem(_ => handler(tenants));
        }
    }

    public void Dispose()
    {
        _queue.Writer.TryComplete();
        _writer.Join(TimeSpan.FromSeconds(30));
    }

    private sealed class PendingBatch(Row[] rows)
    {
        public Row[] Rows { get; } = rows;
        public TaskCompletionSource<bool[]> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    internal struct Row
    {
        public int Index;
        public string TenantId, EventId, PeriodStart, Provider, CostUsd;
        public string? Model, Meter, Quantity, Feature, JobId, UserId;
        public long OccurredAtMs, QuantityMicro, InputTokens, OutputTokens, CachedInputTokens, PriceId, RuleId, MicroCredits;
        public bool Failed, Internal, Billable;
    }

    /// <summary>
    /// The writer's own SQLite connection, driven through the native binding under Microsoft.Data.Sqlite:
    /// binding 22 values per row through ADO.NET parameters costs more than SQLite's own work, and this is
    /// the loop every event goes through. The connection is used by this thread only, so it is opened
    /// without SQLite's per-connection mutex.
    /// </summary>
    private sealed class BatchWriter : IDisposable
    {
        private const string InsertSql = """
            INSERT INTO usage_events (tenant_id, event_id, occurred_at, received_at, period_start, provider, model, meter,
              quantity, input_tokens, output_tokens, cached_input_tokens, feature, job_id, user_id, status, internal,
              billable, price_id, rule_id, cost_usd, micro_credits)
            VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22)
            ON CONFLICT (tenant_id, event_id) DO NOTHING
            """;

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

        private readonly sqlite3 _db;
        private readonly sqlite3_stmt _insert;
        private readonly sqlite3_stmt _upsert;
        private readonly Dictionary<(string, string, string, string, string), long[]> _totals = new();

        public BatchWriter(SqliteDatabase database)
        {
            Check(raw.sqlite3_open_v2(database.FilePath, out _db, raw.SQLITE_OPEN_READWRITE | raw.SQLITE_OPEN_NOMUTEX, null), "open");
            raw.sqlite3_busy_timeout(_db, 15_000);
            // synchronous=FULL: an acknowledged event survives a power cut. The unique (tenant_id, event_id)
            // index is probed for every event, so its pages stay in a 64 MiB cache; WAL checkpoints are left
            // to the flusher's thread instead of the commit path.
            Exec("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-65536; PRAGMA wal_autocheckpoint=0;");
            Check(raw.sqlite3_prepare_v2(_db, InsertSql, out _insert), "prepare");
            Check(raw.sqlite3_prepare_v2(_db, UpsertSql, out _upsert), "prepare");
        }

        public bool[][] Write(List<PendingBatch> batches, long receivedAtMs, out HashSet<string> tenants)
        {
            tenants = new HashSet<string>(StringComparer.Ordinal);
            _totals.Clear();
            var outcomes = new bool[batches.Count][];
            Exec("BEGIN IMMEDIATE");
            try
            {
                for (var b = 0; b < batches.Count; b++)
                {
                    var rows = batches[b].Rows;
                    var outcome = outcomes[b] = new bool[rows.Length];
                    for (var i = 0; i < rows.Length; i++)
                    {
                        ref var r = ref rows[i];
                        Bind(_insert, ref r, receivedAtMs);
                        Step(_insert, "insert");
                        if (raw.sqlite3_changes(_db) != 1) continue; // the id was already counted: a duplicate
                        outcome[i] = true;
                        tenants.Add(r.TenantId);
                        var category = r.Failed ? "failed" : r.Internal ? "internal" : "billable";
                        var key = (r.TenantId, r.PeriodStart, category, r.Provider, r.Model ?? r.Meter!);
                        if (!_totals.TryGetValue(key, out var acc)) _totals[key] = acc = new long[7] { r.Meter is null ? 0 : 1, 0, 0, 0, 0, 0, 0 };
                        acc[1]++;
                        acc[2] += r.InputTokens;
                        acc[3] += r.OutputTokens;
                        acc[4] += r.CachedInputTokens;
                        acc[5] += r.MicroCredits;
                        acc[6] += r.QuantityMicro;
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
                Exec("COMMIT");
            }
            catch
            {
                raw.sqlite3_exec(_db, "ROLLBACK");
                throw;
            }
            return outcomes;
        }

        private static void Bind(sqlite3_stmt s, ref Row r, long receivedAtMs)
        {
            Text(s, 1, r.TenantId);
            Text(s, 2, r.EventId);
            raw.sqlite3_bind_int64(s, 3, r.OccurredAtMs);
            raw.sqlite3_bind_int64(s, 4, receivedAtMs);
            Text(s, 5, r.PeriodStart);
            Text(s, 6, r.Provider);
            Text(s, 7, r.Model);
            Text(s, 8, r.Meter);
            Text(s, 9, r.Quantity);
            raw.sqlite3_bind_int64(s, 10, r.InputTokens);
            raw.sqlite3_bind_int64(s, 11, r.OutputTokens);
            raw.sqlite3_bind_int64(s, 12, r.CachedInputTokens);
            Text(s, 13, r.Feature);
            Text(s, 14, r.JobId);
            Text(s, 15, r.UserId);
            Text(s, 16, r.Failed ? "failed" : "succeeded");
            raw.sqlite3_bind_int64(s, 17, r.Internal ? 1 : 0);
            raw.sqlite3_bind_int64(s, 18, r.Billable ? 1 : 0);
            raw.sqlite3_bind_int64(s, 19, r.PriceId);
            raw.sqlite3_bind_int64(s, 20, r.RuleId);
            Text(s, 21, r.CostUsd);
            raw.sqlite3_bind_int64(s, 22, r.MicroCredits);
        }

        private void Step(sqlite3_stmt s, string what)
        {
            var rc = raw.sqlite3_step(s);
            raw.sqlite3_reset(s);
            if (rc != raw.SQLITE_DONE) Check(rc, what);
        }

        private void Exec(string sql) => Check(raw.sqlite3_exec(_db, sql), sql);

        private static void Text(sqlite3_stmt s, int index, string? value)
        {
            if (value is null) raw.sqlite3_bind_null(s, index);
            else raw.sqlite3_bind_text16(s, index, value);
        }

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
            _db.Dispose();
        }
    }
}

/// <summary>The database could not take the batch; nothing of it was accepted.</summary>
public sealed class IngestUnavailableException(Exception inner)
    : Exception("The usage store could not commit the batch; nothing in it was accepted. Retry with the same ids.", inner);
