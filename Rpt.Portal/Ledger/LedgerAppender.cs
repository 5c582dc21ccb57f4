using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Data;

namespace Rpt.Portal.Ledger;

/// <summary>
/// Appends the next entry of a tenant's chain, inside the caller's transaction: <see cref="TenantLock"/> makes reading
/// the head and inserting after it one step for every writer process; the unique (tenant_id, seq) index is the backstop.
/// The entry's period sum (<see cref="LedgerPeriodSum"/>) is kept in the same transaction.
/// </summary>
internal static class LedgerAppender
{
    public static async Task<LedgerEntry> AppendAsync(ApplicationDbContext db, string tenantId, EntryKind kind, EntrySource source,
        long amountMicroCredits, DateOnly periodStart, string idempotencyKey, string? description, DateTimeOffset now,
        long? coversFromSeq = null, long? coversToSeq = null, long? eventCount = null, string? eventsDigest = null,
        DateTimeOffset? expiresAt = null, long? grantSeq = null, CancellationToken cancellationToken = default)
    {
        if (amountMicroCredits <= 0)
            throw new ArgumentOutOfRangeException(nameof(amountMicroCredits), "Ledger amounts are positive micro-credits.");
        await TenantLock.TakeAsync(db, tenantId, cancellationToken);
        var head = await db.LedgerEntries.AsNoTracking()
            .Where(e => e.TenantId == tenantId)
            .OrderByDescending(e => e.Seq)
            .Select(e => new { e.Seq, e.Hash })
            .FirstOrDefaultAsync(cancellationToken);
        var entry = new LedgerEntry(tenantId, (head?.Seq ?? 0) + 1, kind, source, amountMicroCredits, periodStart,
            idempotencyKey, description, coversFromSeq, coversToSeq, eventCount, eventsDigest, now, head?.Hash ?? LedgerHash.Genesis,
            expiresAt, grantSeq);
        db.LedgerEntries.Add(entry);
        await db.SaveChangesAsync(cancellationToken);
        await LedgerPeriodSum.AddAsync(db, entry, cancellationToken);
        return entry;
    }
}
