using System.Data.Common;
using System.Globalization;
using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Data;

namespace Rpt.Portal.Metering;

public enum TokenGrouping { Job, Model, Feature }

/// <summary>How the jobs of a period are listed.</summary>
public enum JobOrder { Newest, Oldest, MostCredits, FewestCredits }

public sealed record TokenUsageGroup(
    string? Key,
    long Calls,
    long InputTokens,
    long OutputTokens,
    long CachedInputTokens,
    long TotalTokens,
    long MicroCredits,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    DateTimeOffset? FirstAt = null);

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

/// <summary>Filters of the Usage page: [From, To), model or meter, feature, job.</summary>
public sealed record UsageFilter(DateTimeOffset? From = null, DateTimeOffset? To = null, string? Model = null, string? Feature = null, string? JobId = null);

public sealed record DailyCredits(DateOnly Day, string Key, long MicroCredits, long Tokens);

/// <summary>
/// Token usage summaries, charts, call listings and per-job explanations. Summaries and charts read the
/// rollups (<c>usage_daily</c>, <c>usage_jobs</c>), so their cost grows with days and groups, not with
/// events; listings read a page of audit records from an index, never counting millions.
/// Rollups are per UTC day: a report's range is widened to whole UTC days and says which it used.
/// </summary>
public sealed class UsageReports(IDbContextFactory<ApplicationDbContext> dbFactory, PortalDatabase database, IUsageStore usage)
{
    /// <summary>Offset paging through jobs stops here; past it, follow the cursor.</summary>
    public const int MaxJobOffset = 10_000;

    /// <summary>[from, to) widened to whole UTC days.</summary>
    public static (DateOnly From, DateOnly ToExclusive) Days(DateTimeOffset from, DateTimeOffset to)
    {
        var first = DateOnly.FromDateTime(from.UtcDateTime);
        var last = DateOnly.FromDateTime(to.UtcDateTime);
        if (to.UtcDateTime.TimeOfDay != TimeSpan.Zero) last = last.AddDays(1);
        return (first, last > first ? last : first.AddDays(1));
    }

    private static DateTimeOffset Instant(DateOnly day) => new(day.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);

    public TokenUsageSummary Tokens(string tenantId, TokenGrouping groupBy, DateTimeOffset from, DateTimeOffset to, int page, int pageSize, string? cursor = null,
        JobOrder jobOrder = JobOrder.Newest)
    {
        var (firstDay, endDay) = Days(from, to);
        using var connection = database.Open();
        using var tx = database.BeginRead(connection);
        var rows = usage.Daily(connection, tx, tenantId, firstDay, endDay, UsageCategory.Billable);
        var totalTokens = rows.Sum(r => r.TotalTokens);
        var totalMicro = rows.Sum(r => r.MicroCredits);
        Paged<TokenUsageGroup> groups;
        if (groupBy == TokenGrouping.Job)
        {
            groups = JobPage(connection, tenantId, Instant(firstDay), Instant(endDay), page, pageSize, cursor, jobOrder);
        }
        else
        {
            var all = rows.GroupBy(r => groupBy == TokenGrouping.Model ? r.Name : r.Feature)
                .Select(g => new TokenUsageGroup(g.Key, g.Sum(r => r.Calls), g.Sum(r => r.InputTokens), g.Sum(r => r.OutputTokens),
                    g.Sum(r => r.CachedInputTokens), g.Sum(r => r.TotalTokens), g.Sum(r => r.MicroCredits)))
                .OrderByDescending(g => g.TotalTokens).ThenBy(g => g.Key, StringComparer.Ordinal).ToList();
            groups = new Paged<TokenUsageGroup>(all.Skip((page - 1) * pageSize).Take(pageSize).ToList(), page, pageSize, all.Count);
        }
        return new TokenUsageSummary(groupBy.ToString().ToLowerInvariant(), Instant(firstDay), Instant(endDay), totalTokens, totalMicro, groups);
    }

    /// <summary>Jobs that started in the range, in the given order: billed calls, tokens and credits of each.</summary>
    private Paged<TokenUsageGroup> JobPage(DbConnection connection, string tenantId, DateTimeOffset from, DateTimeOffset to,
        int page, int pageSize, string? cursor, JobOrder order)
    {
        (long, long)? after = Cursor.TryParse(cursor, out var c) ? c : null;
        var offset = after is null ? Math.Min((page - 1) * pageSize, MaxJobOffset) : 0;
        var rows = usage.Jobs(connection, tenantId, from.ToUnixTimeMilliseconds(), to.ToUnixTimeMilliseconds(), after, offset, pageSize + 1, order);
        var more = rows.Count > pageSize;
        if (more) rows.RemoveAt(rows.Count - 1);
        var items = rows.Select(j => new TokenUsageGroup(j.JobId, j.BillableCalls, j.InputTokens, j.OutputTokens, j.CachedInputTokens,
            j.InputTokens + j.OutputTokens + j.CachedInputTokens, j.MicroCredits, DateTimeOffset.FromUnixTimeMilliseconds(j.FirstAtMs))).ToList();
        return new Paged<TokenUsageGroup>(items, page, pageSize, null, more ? Cursor.Of(order is JobOrder.MostCredits or JobOrder.FewestCredits ? rows[^1].MicroCredits : rows[^1].FirstAtMs, rows[^1].RowId) : null);
    }

    /// <summary>Billed credits per UTC day by model and by feature, from one read of the rollups (the dashboard's two charts).</summary>
    public (IReadOnlyList<DailyCredits> ByModel, IReadOnlyList<DailyCredits> ByFeature) DailyByModelAndFeature(string tenantId, DateTimeOffset from, DateTimeOffset to)
    {
        var (firstDay, endDay) = Days(from, to);
        using var connection = database.Open();
        var rows = usage.Daily(connection, null, tenantId, firstDay, endDay, UsageCategory.Billable);
        return (Group(rows, TokenGrouping.Model), Group(rows, TokenGrouping.Feature));
    }

    private static IReadOnlyList<DailyCredits> Group(List<DailyRow> rows, TokenGrouping by) => rows
        .GroupBy(r => (r.Day, Key: by == TokenGrouping.Feature ? r.Feature ?? "(none)" : r.Name))
        .Select(g => new DailyCredits(g.Key.Day, g.Key.Key, g.Sum(r => r.MicroCredits), g.Sum(r => r.TotalTokens)))
        .OrderBy(d => d.Day).ThenBy(d => d.Key, StringComparer.Ordinal).ToList();

    /// <summary>
    /// The audit records of a tenant, newest first, filtered as the Usage page and its CSV export ask: one page
    /// read from the (tenant, seq) index after <paramref name="beforeSeq"/>, and a count from the rollups where the
    /// filter allows it (whole days, model, feature), or from the job's rollup for a job.
    /// </summary>
    public async Task<Paged<UsageEvent>> CallsAsync(string tenantId, UsageFilter filter, long? beforeSeq, int pageSize, int page = 1,
        CancellationToken cancellationToken = default)
    {
        var count = CountCalls(tenantId, filter);
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var items = await Query(db, tenantId, filter, count, pageSize + 1, newestFirst: true, beforeSeq, limit: pageSize + 1).ToListAsync(cancellationToken);
        var more = items.Count > pageSize;
        if (more) items.RemoveAt(items.Count - 1);
        return new Paged<UsageEvent>(items, page, pageSize, count, more ? items[^1].Seq.ToString(CultureInfo.InvariantCulture) : null);
    }

    /// <summary>The matching audit records through the plan <see cref="IUsageStore.CallsQuery"/> chooses.</summary>
    private IQueryable<UsageEvent> Query(ApplicationDbContext db, string tenantId, UsageFilter f, long? count, int page, bool newestFirst, long? beforeSeq, int? limit = null)
    {
        long matching, stored;
        using (var connection = database.Open())
        {
            matching = Math.Max(1, count ?? usage.TenantCalls(connection, tenantId));
            stored = usage.MaxSeq(connection);
        }
        var (sql, args) = usage.CallsQuery(tenantId, matching, stored, page, newestFirst, f.From, f.To, f.Model, f.Feature, f.JobId, beforeSeq, null, limit);
        return db.UsageEvents.FromSqlRaw(sql, args).AsNoTracking();
    }

    /// <summary>Billable credits consumed per UTC day in [from, toExclusive), every day listed (0 where nothing was used), from the rollups.</summary>
    public IReadOnlyList<(DateOnly Day, long MicroCredits)> DailyCredits(string tenantId, DateOnly from, DateOnly toExclusive)
    {
        using var connection = database.Open();
        var byDay = usage.Daily(connection, null, tenantId, from, toExclusive, UsageCategory.Billable)
            .GroupBy(r => r.Day).ToDictionary(g => g.Key, g => g.Aggregate(0L, (sum, r) => checked(sum + r.MicroCredits)));
        var days = new List<(DateOnly, long)>();
        for (var d = from; d < toExclusive; d = d.AddDays(1)) days.Add((d, byDay.GetValueOrDefault(d)));
        return days;
    }

    /// <summary>How many calls match, from the rollups; null where they cannot say (a range that is not whole days).</summary>
    public long? CountCalls(string tenantId, UsageFilter filter)
    {
        using var connection = database.Open();
        if (!string.IsNullOrEmpty(filter.JobId))
            return filter.From is null && filter.To is null && filter.Model is null && filter.Feature is null ? usage.JobCalls(connection, tenantId, filter.JobId) : null;
        if (filter.From is { } f && f.UtcDateTime.TimeOfDay != TimeSpan.Zero || filter.To is { } t && t.UtcDateTime.TimeOfDay != TimeSpan.Zero) return null;
        var from = filter.From is { } a ? DateOnly.FromDateTime(a.UtcDateTime) : DateOnly.MinValue;
        var to = filter.To is { } b ? DateOnly.FromDateTime(b.UtcDateTime) : DateOnly.MaxValue;
        return usage.Daily(connection, null, tenantId, from, to, null)
            .Where(r => (string.IsNullOrEmpty(filter.Model) || r.Name == filter.Model) && (string.IsNullOrEmpty(filter.Feature) || r.Feature == filter.Feature))
            .Sum(r => r.Calls);
    }

    /// <summary>Every matching audit record, oldest first, streamed (for CSV export): memory stays bounded at any count.</summary>
    public async IAsyncEnumerable<UsageEvent> StreamCallsAsync(string tenantId, UsageFilter filter,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        await foreach (var e in Query(db, tenantId, filter, CountCalls(tenantId, filter), 1_000, newestFirst: false, null).AsAsyncEnumerable().WithCancellation(cancellationToken))
            yield return e;
    }

    /// <summary>The models (and meters) or the features the tenant has used, from the rollups.</summary>
    public Task<IReadOnlyList<string>> ModelsAndFeaturesAsync(string tenantId, bool features, CancellationToken cancellationToken = default)
    {
        using var connection = database.Open();
        var rows = usage.Daily(connection, null, tenantId, DateOnly.MinValue, DateOnly.MaxValue, null);
        IReadOnlyList<string> names = (features ? rows.Select(r => r.Feature).OfType<string>() : rows.Select(r => r.Name))
            .Distinct().Order(StringComparer.Ordinal).Take(500).ToList();
        return Task.FromResult(names);
    }
}
