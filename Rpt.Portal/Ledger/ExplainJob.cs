using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Data;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Ledger;

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

/// <summary>
/// A job explained call by call: what each call cost, the overhead, the credits, and which consumption entry of the
/// ledger each billable call was written into (none yet while it waits for the next flush). It reads the audit records
/// (Metering) and the ledger, so it lives with the ledger, which depends on metering and never the other way.
/// </summary>
public sealed class ExplainJob(IDbContextFactory<ApplicationDbContext> dbFactory, PortalDatabase database, IUsageStore usage, PriceBookProvider prices)
{
    public const int MaxCallsPerJob = 5_000;

    public async Task<JobExplanation?> ExplainJobAsync(string tenantId, string jobId, CancellationToken cancellationToken = default)
    {
        long? jobRef;
        using (var connection = database.Open())
            jobRef = usage.JobRefOf(connection, tenantId, jobId);
        if (jobRef is null) return null;
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var events = await db.UsageEvents.AsNoTracking().Where(e => e.TenantId == tenantId && e.JobRef == jobRef && e.JobId == jobId)
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
