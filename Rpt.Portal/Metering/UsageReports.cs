using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Data;
using Rpt.Portal.Ledger;

namespace Rpt.Portal.Metering;

public enum TokenGrouping { Job, Model, Feature }

public sealed record TokenUsageGroup(
    string? Key,
    long Calls,
    long InputTokens,
    long OutputTokens,
    long CachedInputTokens,
    long TotalTokens,
    long MicroCredits);

public sealed record TokenUsageSummary(
    string GroupBy,
    DateTimeOffset From,
    DateTimeOffset To,
    long TotalTokens,
    long MicroCredits,
    Paged<TokenUsageGroup> Groups);

public sealed record PriceVersion(
    long Id,
    string Provider,
    string? Model,
    string? Meter,
    decimal? InputPerMtok,
    decimal? OutputPerMtok,
    decimal? CachedInputPerMtok,
    decimal? UnitPrice,
    string Currency,
    DateTimeOffset EffectiveFrom)
{
    public static PriceVersion Of(Price p) => new(p.Id, p.Provider, p.Model, p.Meter, p.InputPerMtok, p.OutputPerMtok,
        p.CachedInputPerMtok, p.UnitPrice, p.Currency, p.EffectiveFrom);
}

/// <summary>One AI call of a job, with every number that turned it into credits.</summary>
public sealed record ExplainedCall(
    string Id,
    DateTimeOffset OccurredAt,
    string Provider,
    string? Model,
    string? Meter,
    decimal? Quantity,
    long InputTokens,
    long OutputTokens,
    long CachedInputTokens,
    string? Feature,
    string? UserId,
    string Status,
    bool Internal,
    bool Billable,
    PriceVersion? Price,
    decimal CostUsd,
    decimal Overhead,
    decimal OverheadUsd,
    decimal UsdPerCredit,
    long MicroCredits,
    long? LedgerSeq);

public sealed record JobExplanation(
    string JobId,
    long Calls,
    long TotalTokens,
    decimal CostUsd,
    decimal OverheadUsd,
    long ChargedMicroCredits,
    long InternalMicroCredits,
    IReadOnlyList<long> LedgerEntries,
    long UnflushedCalls,
    IReadOnlyList<ExplainedCall> Items);

/// <summary>Filters of the Usage page: [From, To), model or meter, feature, job.</summary>
public sealed record UsageFilter(DateTimeOffset? From = null, DateTimeOffset? To = null, string? Model = null, string? Feature = null, string? JobId = null);

public sealed record DailyCredits(DateOnly Day, string Key, long MicroCredits, long Tokens);

/// <summary>Token usage summaries and per-job explanations, read from the audit records.</summary>
public sealed class UsageReports(IDbContextFactory<ApplicationDbContext> dbFactory, SqliteDatabase database, PriceBookProvider prices)
{
    public const int MaxCallsPerJob = 5_000;
    public const int RecentCallsForFilters = 50_000;

    public TokenUsageSummary Tokens(string tenantId, TokenGrouping groupBy, DateTimeOffset from, DateTimeOffset to, int page, int pageSize)
    {
        var column = groupBy switch { TokenGrouping.Job => "job_id", TokenGrouping.Model => "COALESCE(model, meter)", _ => "feature" };
        using var connection = database.Open();
        using var tx = connection.BeginTransaction(deferred: true);
        using var cmd = connection.CreateCommand();
        cmd.Transaction = tx;
        cmd.Parameters.AddWithValue("$t", tenantId);
        cmd.Parameters.AddWithValue("$from", from.ToUnixTimeMilliseconds());
        cmd.Parameters.AddWithValue("$to", to.ToUnixTimeMilliseconds());
        const string where = "FROM usage_events WHERE tenant_id = $t AND billable = 1 AND occurred_at >= $from AND occurred_at < $to";
        cmd.CommandText = $"SELECT COUNT(DISTINCT {column}), COALESCE(SUM(input_tokens + output_tokens + cached_input_tokens), 0), COALESCE(SUM(micro_credits), 0), SUM({column} IS NULL) {where}";
        long groups, totalTokens, totalMicro;
        using (var r = cmd.ExecuteReader())
        {
            r.Read();
            groups = r.GetInt64(0) + (r.IsDBNull(3) || r.GetInt64(3) == 0 ? 0 : 1);
            totalTokens = r.GetInt64(1);
            totalMicro = r.GetInt64(2);
        }
        cmd.CommandText = $"""
            SELECT {column} AS k, COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cached_input_tokens),
                   SUM(input_tokens + output_tokens + cached_input_tokens) AS total, SUM(micro_credits)
            {where} GROUP BY k ORDER BY total DESC, k LIMIT $take OFFSET $skip
            """;
        cmd.Parameters.AddWithValue("$take", pageSize);
        cmd.Parameters.AddWithValue("$skip", (page - 1) * pageSize);
        var items = new List<TokenUsageGroup>();
        using (var r = cmd.ExecuteReader())
        {
            while (r.Read())
                items.Add(new TokenUsageGroup(r.IsDBNull(0) ? null : r.GetString(0), r.GetInt64(1), r.GetInt64(2), r.GetInt64(3), r.GetInt64(4), r.GetInt64(5), r.GetInt64(6)));
        }
        return new TokenUsageSummary(groupBy.ToString().ToLowerInvariant(), from, to, totalTokens, totalMicro, new Paged<TokenUsageGroup>(items, page, pageSize, groups));
    }

    /// <summary>Billed credits per UTC day and model (or feature) between two instants, for charts.</summary>
    public IReadOnlyList<DailyCredits> Daily(string tenantId, TokenGrouping by, DateTimeOffset from, DateTimeOffset to)
    {
        var column = by == TokenGrouping.Feature ? "COALESCE(feature, '(none)')" : "COALESCE(model, meter)";
        using var connection = database.Open();
        using var cmd = connection.CreateCommand();
        cmd.CommandText = $"SELECT occurred_at / 86400000 AS d, {column} AS k, SUM(micro_credits), SUM(input_tokens + output_tokens + cached_input_tokens) " +
            "FROM usage_events WHERE tenant_id = $t AND billable = 1 AND occurred_at >= $from AND occurred_at < $to GROUP BY d, k ORDER BY d, k";
        cmd.Parameters.AddWithValue("$t", tenantId);
        cmd.Parameters.AddWithValue("$from", from.ToUnixTimeMilliseconds());
        cmd.Parameters.AddWithValue("$to", to.ToUnixTimeMilliseconds());
        var epoch = DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber;
        var result = new List<DailyCredits>();
        using var r = cmd.ExecuteReader();
        while (r.Read())
            result.Add(new DailyCredits(DateOnly.FromDayNumber(epoch + (int)r.GetInt64(0)), r.GetString(1), r.GetInt64(2), r.GetInt64(3)));
        return result;
    }

    /// <summary>The audit records of a tenant, newest first, filtered as the Usage page and its CSV export ask.</summary>
    public async Task<Paged<UsageEvent>> CallsAsync(string tenantId, UsageFilter filter, int page, int pageSize, CancellationToken cancellationToken = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var query = Filtered(db, tenantId, filter);
        var total = await query.LongCountAsync(cancellationToken);
        var items = await query.OrderByDescending(e => e.OccurredAt).ThenByDescending(e => e.Seq)
            .Skip((page - 1) * pageSize).Take(pageSize).ToListAsync(cancellationToken);
        return new Paged<UsageEvent>(items, page, pageSize, total);
    }

    /// <summary>Every matching audit record, oldest first, streamed (for CSV export).</summary>
    public async IAsyncEnumerable<UsageEvent> StreamCallsAsync(string tenantId, UsageFilter filter,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        await foreach (var e in Filtered(db, tenantId, filter).OrderBy(e => e.Seq).AsAsyncEnumerable().WithCancellation(cancellationToken))
            yield return e;
    }

    public async Task<IReadOnlyList<string>> ModelsAndFeaturesAsync(string tenantId, bool features, CancellationToken cancellationToken = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var q = db.UsageTotals.AsNoTracking().Where(t => t.TenantId == tenantId);
        if (features)
        {
            // The features of the most recent calls: a bounded read, not a scan of every call the tenant ever made.
            var recent = await db.UsageEvents.AsNoTracking().Where(e => e.TenantId == tenantId)
                .OrderByDescending(e => e.Seq).Take(RecentCallsForFilters).Select(e => e.Feature).ToListAsync(cancellationToken);
            return recent.OfType<string>().Distinct().Order(StringComparer.Ordinal).Take(200).ToList();
        }
        return await q.Select(t => t.Name).Distinct().OrderBy(n => n).ToListAsync(cancellationToken);
    }

    private static IQueryable<UsageEvent> Filtered(ApplicationDbContext db, string tenantId, UsageFilter f)
    {
        var q = db.UsageEvents.AsNoTracking().Where(e => e.TenantId == tenantId);
        if (f.From is { } from) q = q.Where(e => e.OccurredAt >= from);
        if (f.To is { } to) q = q.Where(e => e.OccurredAt < to);
        if (!string.IsNullOrEmpty(f.Model)) q = q.Where(e => e.Model == f.Model || e.Meter == f.Model);
        if (!string.IsNullOrEmpty(f.Feature)) q = q.Where(e => e.Feature == f.Feature);
        if (!string.IsNullOrEmpty(f.JobId)) q = q.Where(e => e.JobId == f.JobId);
        return q;
    }

    public async Task<JobExplanation?> ExplainJobAsync(string tenantId, string jobId, CancellationToken cancellationToken = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var events = await db.UsageEvents.AsNoTracking().Where(e => e.TenantId == tenantId && e.JobId == jobId)
            .OrderBy(e => e.OccurredAt).ThenBy(e => e.Seq).Take(MaxCallsPerJob).ToListAsync(cancellationToken);
        if (events.Count == 0) return null;

        var minSeq = events.Min(e => e.Seq);
        var maxSeq = events.Max(e => e.Seq);
        var entries = await db.LedgerEntries.AsNoTracking()
            .Where(e => e.TenantId == tenantId && e.Kind == EntryKind.Consumption && e.CoversToSeq >= minSeq && e.CoversFromSeq < maxSeq)
            .Select(e => new { e.Seq, e.CoversFromSeq, e.CoversToSeq, e.PeriodStart }).ToListAsync(cancellationToken);
        var book = prices.Current;

        var items = events.Select(e =>
        {
            var rule = book.RuleById(e.RuleId);
            var price = e.PriceId is { } id ? book.PriceById(id) : null;
            var entry = entries.FirstOrDefault(x => x.CoversFromSeq < e.Seq && e.Seq <= x.CoversToSeq && x.PeriodStart == e.PeriodStart);
            return new ExplainedCall(e.EventId, e.OccurredAt, e.Provider, e.Model, e.Meter, e.Quantity, e.InputTokens, e.OutputTokens,
                e.CachedInputTokens, e.Feature, e.UserId, e.Status == UsageStatus.Failed ? "failed" : "succeeded", e.Internal, e.Billable,
                price is null ? null : PriceVersion.Of(price), e.CostUsd, rule?.Overhead ?? 0m, rule is null ? 0m : Rating.OverheadUsd(e.CostUsd, rule),
                rule?.UsdPerCredit ?? 0m, e.MicroCredits, e.Billable ? entry?.Seq : null);
        }).ToList();

        var billable = items.Where(i => i.Billable).ToList();
        return new JobExplanation(jobId, items.Count, billable.Sum(i => i.InputTokens + i.OutputTokens + i.CachedInputTokens),
            billable.Sum(i => i.CostUsd), billable.Sum(i => i.OverheadUsd), billable.Sum(i => i.MicroCredits),
            items.Where(i => i.Internal).Sum(i => i.MicroCredits),
            items.Where(i => i.LedgerSeq is not null).Select(i => i.LedgerSeq!.Value).Distinct().Order().ToList(),
            billable.Count(i => i.LedgerSeq is null && i.MicroCredits > 0), items);
    }
}
