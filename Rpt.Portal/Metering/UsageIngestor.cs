using System.Buffers;
using System.Threading.Channels;
using Microsoft.Extensions.Options;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Metering;

/// <summary>
/// Accepts usage events exactly once per tenant and id, rated and durable before it answers.
/// Validation and rating (<see cref="RateUsage"/>) run on the caller's thread; one writer thread takes
/// whatever batches are waiting and commits them through <see cref="IUsageStore"/> in a single transaction
/// (group commit), so that the fsync that synchronous=FULL costs is shared by every request that arrived
/// meanwhile.
/// </summary>
public sealed class UsageIngestor : IDisposable
{
    private readonly RateUsage _rate;
    private readonly IUsageStore _store;
    private readonly PriceBookProvider _prices;
    private readonly TenantChanges _changes;
    private readonly TimeProvider _time;
    private readonly MeteringOptions _options;
    private readonly Channel<PendingBatch> _queue = Channel.CreateBounded<PendingBatch>(
        new BoundedChannelOptions(512) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
    private readonly Thread _writer;

    private readonly Observability.PortalMetrics _metrics;

    public UsageIngestor(RateUsage rate, IUsageStore store, PriceBookProvider prices, TenantChanges changes, TimeProvider time,
        IOptions<MeteringOptions> options, Observability.PortalMetrics metrics)
    {
        _metrics = metrics;
        _rate = rate;
        _store = store;
        _prices = prices;
        _changes = changes;
        _time = time;
        _options = options.Value;
        _writer = new Thread(WriterLoop) { IsBackground = true, Name = "usage-writer" };
        _writer.Start();
    }

    /// <param name="events">The batch, in the order sent.</param>
    /// <param name="keyTenant">The tenant of a tenant key; null for a platform key, which must name the tenant per event.</param>
    /// <param name="rejected">Items already rejected by the caller (a wrong JSON type), by position; they keep their place in the answer.</param>
    public async Task<IngestResult> IngestAsync(IReadOnlyList<UsageEventInput?> events, string? keyTenant, CancellationToken cancellationToken = default,
        IReadOnlyDictionary<int, IngestItemResult>? rejected = null, IngestKey? key = null)
    {
        if (events.Count == 0) return new IngestResult(0, 0, 0, []); // nothing to rent an array for
        var arrived = System.Diagnostics.Stopwatch.GetTimestamp();
        var now = _time.GetUtcNow();
        var book = _prices.Current;
        var results = new IngestItemResult[events.Count];
        // A batch's rows (about 200 bytes each) are a large object for any real batch: rented, so that a request
        // does not add to the large-object heap, whose budget triggers full collections that stop every thread.
        var rows = ArrayPool<RatedUsage>.Shared.Rent(events.Count);
        var count = 0;
        try
        {
            for (var i = 0; i < events.Count; i++)
            {
                if (rejected is not null && rejected.TryGetValue(i, out var early))
                {
                    results[i] = early;
                    _metrics.Rejected("malformed");
                    continue;
                }
                var error = _rate.TryRate(events[i], keyTenant, now, book, out var row, key);
                if (error is null)
                {
                    row.Index = i;
                    rows[count++] = row;
                }
                else
                {
                    results[i] = new IngestItemResult(events[i]?.Id, IngestStatus.Rejected, error);
                    _metrics.Rejected(IsUnpriced(error) ? "unpriced" : "invalid");
                }
            }

            var accepted = 0;
            var duplicates = 0;
            if (count > 0)
            {
                var batch = new PendingBatch(new ArraySegment<RatedUsage>(rows, 0, count));
                await _queue.Writer.WriteAsync(batch, cancellationToken);
                // Once queued the batch will be written; waiting is not cancellable, so the answer is never lost.
                // The writer is done with the rows once it has answered, so they go back to the pool below.
                var outcome = await batch.Done.Task;
                for (var j = 0; j < count; j++)
                {
                    ref var row = ref rows[j];
                    results[row.Index] = outcome[j] switch
                    {
                        WriteOutcome.Accepted => new IngestItemResult(row.EventId, IngestStatus.Accepted),
                        WriteOutcome.Duplicate => new IngestItemResult(row.EventId, IngestStatus.Duplicate),
                        _ => new IngestItemResult(row.EventId, IngestStatus.Rejected, PeriodLimitError(row.PeriodStart)),
                    };
                    if (outcome[j] == WriteOutcome.Accepted) accepted++;
                    else if (outcome[j] == WriteOutcome.Duplicate) duplicates++;
                }
                _metrics.BalanceLatency.Record(System.Diagnostics.Stopwatch.GetElapsedTime(arrived).TotalSeconds);
                _metrics.EventsAccepted.Add(accepted);
                _metrics.EventsDuplicate.Add(duplicates);
                if (count - accepted - duplicates > 0) _metrics.Rejected("period_limit", count - accepted - duplicates);
            }
            return new IngestResult(accepted, duplicates, events.Count - accepted - duplicates, results);
        }
        finally
        {
            // Cleared: a pooled array must not keep the batch's strings alive.
            ArrayPool<RatedUsage>.Shared.Return(rows, clearArray: true);
        }
    }

    /// <summary>The price book's words for an event it has no price for (PriceBook.Find).</summary>
    private static bool IsUnpriced(string error) =>
        error.Contains("unknown model", StringComparison.Ordinal) || error.Contains("unknown meter", StringComparison.Ordinal)
        || error.Contains("no price for", StringComparison.Ordinal);

    private string PeriodLimitError(string periodStart) =>
        $"the tenant's billing period starting {periodStart} would pass the per-period limit of "
        + $"{UsageLimits.Number(_options.MaxMicroCreditsPerTenantPeriod)} µcr or {UsageLimits.Number(_options.MaxTokensPerTenantPeriod)} tokens; nothing else is affected";

    private void WriterLoop()
    {
        using var writer = _store.OpenWriter();
        var batches = new List<PendingBatch>();
        var rows = new List<ArraySegment<RatedUsage>>();
        var reader = _queue.Reader;
        while (true)
        {
            if (!reader.TryRead(out var first))
            {
                if (!reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult()) return;
                continue;
            }
            batches.Add(first);
            var count = first.Rows.Count;
            while (count < _options.MaxEventsPerCommit && reader.TryRead(out var next))
            {
                batches.Add(next);
                count += next.Rows.Count;
            }
            foreach (var b in batches) rows.Add(b.Rows);
            HashSet<string>? tenants = null;
            try
            {
                var outcomes = writer.Write(rows, _time.GetUtcNow().ToUnixTimeMilliseconds(),
                    _options.MaxMicroCreditsPerTenantPeriod, _options.MaxTokensPerTenantPeriod, out tenants);
                for (var i = 0; i < batches.Count; i++) batches[i].Done.TrySetResult(outcomes[i]);
            }
            catch (Exception ex)
            {
                foreach (var b in batches) b.Done.TrySetException(new IngestUnavailableException(ex));
                tenants = null;
            }
            batches.Clear();
            rows.Clear();
            if (tenants is { Count: > 0 }) _changes.Publish(TenantChange.UsageCommitted, tenants);
            // After the answers, before the next commit: the one moment the WAL can be started over under sustained ingestion.
            writer.BetweenCommits(_time.GetUtcNow().ToUnixTimeMilliseconds());
        }
    }

    public void Dispose()
    {
        _queue.Writer.TryComplete();
        _writer.Join(TimeSpan.FromSeconds(30));
    }

    private sealed class PendingBatch(ArraySegment<RatedUsage> rows)
    {
        public ArraySegment<RatedUsage> Rows { get; } = rows;
        public TaskCompletionSource<WriteOutcome[]> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}

/// <summary>The database could not take the batch; nothing of it was accepted.</summary>
public sealed class IngestUnavailableException(Exception inner)
    : Exception("The usage store could not commit the batch; nothing in it was accepted. Retry with the same ids.", inner);
