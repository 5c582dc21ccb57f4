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
public sealed class LedgerHistory(IDbContextFactory<ApplicationDbContext> dbFactory, SqliteDatabase database, TimeProvider time)
{
    public const int MaxJobsPerRecord = 20;

    public async Task<Paged<ConsumptionRecord>> ConsumptionAsync(string tenantId, int days, int page, int pageSize, CancellationToken cancellationToken = default)
    {
        var since = time.GetUtcNow().AddDays(-days);
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var query = db.LedgerEntries.AsNoTracking()
            .Where(e => e.TenantId == tenantId && e.Kind == EntryKind.Consumption && e.CreatedAt >= since);
        var total = await query.LongCountAsync(cancellationToken);
        var entries = await query.OrderByDescending(e => e.Seq).Skip((page - 1) * pageSize).Take(pageSize).ToListAsync(cancellationToken);

        using var connection = database.Open();
        var records = entries.Select(e =>
        {
            var (jobs, truncated) = JobsOf(connection, e);
            return new ConsumptionRecord(e.Seq, e.CreatedAt, e.PeriodStart, e.AmountMicroCredits, Credit.FloorCredits(e.AmountMicroCredits),
                e.EventCount ?? 0, e.CoversFromSeq ?? 0, e.CoversToSeq ?? 0, e.Hash, jobs, truncated);
        }).ToList();
        return new Paged<ConsumptionRecord>(records, page, pageSize, total);
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

    private static (IReadOnlyList<JobLink>, bool) JobsOf(Microsoft.Data.Sqlite.SqliteConnection connection, LedgerEntry e)
    {
        var jobs = UsageStore.JobsInRange(connection, e.TenantId, e.PeriodStart.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
                e.CoversFromSeq ?? 0, e.CoversToSeq ?? 0, MaxJobsPerRecord + 1)
            .Select(j => new JobLink(j.JobId, j.Calls, j.MicroCredits, j.JobId is null ? null : $"/v1/usage/jobs/{Uri.EscapeDataString(j.JobId)}"))
            .ToList();
        var truncated = jobs.Count > MaxJobsPerRecord;
        return (truncated ? jobs.Take(MaxJobsPerRecord).ToList() : jobs, truncated);
    }
}
