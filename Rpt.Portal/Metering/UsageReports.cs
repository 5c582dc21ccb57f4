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

/// <summary>Token usage summaries and per-job explanations, read from the audit records.</summary>
public sealed class UsageReports(IDbContextFactory<ApplicationDbContext> dbFactory, SqliteDatabase database, PriceBookProvider prices)
{
    public const int MaxCallsPerJob = 5_000;

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
