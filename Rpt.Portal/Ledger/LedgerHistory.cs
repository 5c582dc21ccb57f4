using System.Data.Common;
using System.Globalization;
using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Data;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Ledger;

public sealed record JobLink(string? JobId, long Calls, long MicroCredits, string? Href);

/// <summary>An immutable consumption entry, with the jobs whose calls it charged.</summary>
public sealed record ConsumptionRecord(
    long Seq,
    DateTimeOffset RecordedAt,
    DateOnly PeriodStart,
    long MicroCredits,
    long Credits,
    long Events,
    long CoversFromSeq,
    long CoversToSeq,
    string Hash,
    IReadOnlyList<JobLink> Jobs,
    bool JobsTruncated);

public sealed record AllocationRecord(
    long Seq,
    DateTimeOffset RecordedAt,
    DateOnly PeriodStart,
    string Source,
    long Credits,
    long MicroCredits,
    string IdempotencyKey,
    string? Description,
    string Hash);

public enum PeriodFilter { Current, Previous, All }

/// <summary>Reads a tenant's ledger for people: consumption newest first, allocations by period.</summary>
public sealed class LedgerHistory(IDbContextFactory<ApplicationDbContext> dbFactory, PortalDatabase database, IUsageStore usage, TimeProvider time)
{
    public const int MaxJobsPerRecord = 20;

    /// <summary>Offset paging stops here; past it, follow the cursor.</summary>
    public const int MaxOffset = 10_000;

    /// <summary>
    /// Consumption entries of the last <paramref name="days"/> days, newest first: a range of the (tenant, seq)
    /// index from <paramref name="beforeSeq"/> (or the newest), never a count over every entry. The jobs each entry
    /// charged come from what the flusher recorded beside it.
    /// </summary>
    public async Task<Paged<ConsumptionRecord>> ConsumptionAsync(string tenantId, int days, int page, int pageSize, long? beforeSeq = null,
        CancellationToken cancellationToken = default)
    {
        var since = time.GetUtcNow().AddDays(-days);
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var query = db.LedgerEntries.AsNoTracking()
            .Where(e => e.TenantId == tenantId && e.Kind == EntryKind.Consumption && e.CreatedAt >= since);
        if (beforeSeq is { } before) query = query.Where(e => e.Seq < before);
        var skip = beforeSeq is null ? Math.Min((page - 1) * pageSize, MaxOffset) : 0;
        var entries = await query.OrderByDescending(e => e.Seq).Skip(skip).Take(pageSize + 1).ToListAsync(cancellationToken);
        var more = entries.Count > pageSize;
        if (more) entries.RemoveAt(entries.Count - 1);

        var seqs = entries.Select(e => e.Seq).ToList();
        var recorded = (await db.EntryJobs.AsNoTracking().Where(j => j.TenantId == tenantId && seqs.Contains(j.EntrySeq)).ToListAsync(cancellationToken))
            .GroupBy(j => j.EntrySeq).ToDictionary(g => g.Key, g => g.OrderBy(j => j.Rank).Select(j => (j.JobId, j.Calls, j.MicroCredits)).ToList());
        using var connection = database.Open();
        var records = entries.Select(e =>
        {
            // Entries flushed before the jobs were recorded beside them are read from their audit records.
            var jobs = recorded.TryGetValue(e.Seq, out var kept) ? kept
                : usage.JobsInRange(connection, e.TenantId, e.PeriodStart.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
                    e.CoversFromSeq ?? 0, e.CoversToSeq ?? 0, MaxJobsPerRecord + 1);
            var links = jobs.Select(j => new JobLink(j.JobId, j.Calls, j.MicroCredits, j.JobId is null ? null : $"/v1/usage/jobs/{Uri.EscapeDataString(j.JobId)}")).ToList();
            var truncated = links.Count > MaxJobsPerRecord;
            return new ConsumptionRecord(e.Seq, e.CreatedAt, e.PeriodStart, e.AmountMicroCredits, Credit.FloorCredits(e.AmountMicroCredits),
                e.EventCount ?? 0, e.CoversFromSeq ?? 0, e.CoversToSeq ?? 0, e.Hash, truncated ? links.Take(MaxJobsPerRecord).ToList() : links, truncated);
        }).ToList();
        return new Paged<ConsumptionRecord>(records, page, pageSize, null, more ? entries[^1].Seq.ToString(CultureInfo.InvariantCulture) : null);
    }

    public async Task<IReadOnlyList<AllocationRecord>> AllocationsAsync(string tenantId, PeriodFilter filter, CancellationToken cancellationToken = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var tenant = await db.Tenants.AsNoTracking().FirstAsync(t => t.Id == tenantId, cancellationToken);
        var current = tenant.PeriodAt(time.GetUtcNow());
        var query = db.LedgerEntries.AsNoTracking().Where(e => e.TenantId == tenantId && e.Kind == EntryKind.Allocation);
        query = filter switch
        {
            PeriodFilter.Current => query.Where(e => e.PeriodStart == current.Start),
            PeriodFilter.Previous => query.Where(e => e.PeriodStart == current.Previous(tenant.Anchor).Start),
            _ => query,
        };
        var entries = await query.OrderByDescending(e => e.Seq).ToListAsync(cancellationToken);
        return entries.Select(e => new AllocationRecord(e.Seq, e.CreatedAt, e.PeriodStart, EnumText.ToText(e.Source),
            Credit.FloorCredits(e.AmountMicroCredits), e.AmountMicroCredits, e.IdempotencyKey, e.Description, e.Hash)).ToList();
    }
}
