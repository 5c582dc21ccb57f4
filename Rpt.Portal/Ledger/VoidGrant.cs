using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Data;
using Rpt.Portal.Metering;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Ledger;

public enum VoidStatus { Voided, AlreadyVoided, Rejected }

/// <param name="Field">The input at fault when rejected: <c>grant</c>, <c>reason</c>, <c>key</c> or <c>tenant</c>.</param>
public sealed record VoidResult(VoidStatus Status, LedgerEntry? Entry, string? Error = null, string? Field = null);

/// <summary>
/// Voids what a grant still holds: one <c>void</c> entry, hash-chained like every entry, naming the grant
/// (<c>grant_seq</c>) and the operator's reason, for the amount the draw-down says the grant holds now. The draw-down
/// treats it like an expiry at that instant: the grant is closed, later consumption draws from the others, and the
/// period's allocation is what was granted less what was voided. Idempotent by key: the same key voids once, ever.
/// </summary>
public sealed class VoidGrant(IDbContextFactory<ApplicationDbContext> dbFactory, CreditGrants grants, TimeProvider time, TenantChanges changes)
{
    public const int MaxReason = 500;
    public const int MaxKey = 200;

    public async Task<VoidResult> ExecuteAsync(string tenantId, long grantSeq, string? reason, string? idempotencyKey,
        CancellationToken cancellationToken = default)
    {
        reason = reason?.Trim();
        if (string.IsNullOrEmpty(reason)) return Rejected("reason", "a reason is required: the tenant and the audit log read it");
        if (reason.Length > MaxReason) return Rejected("reason", $"the reason is {reason.Length} characters; at most {MaxReason}");
        if (string.IsNullOrWhiteSpace(idempotencyKey) || idempotencyKey.Length > MaxKey)
            return Rejected("key", $"an idempotency key of 1 to {MaxKey} characters is required");
        if (grantSeq <= 0) return Rejected("grant", $"grant #{grantSeq} does not exist: grants are numbered from 1");

        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        await using var tx = await db.Database.BeginTransactionAsync(cancellationToken);
        if (!await db.Tenants.AnyAsync(t => t.Id == tenantId, cancellationToken)) return Rejected("tenant", $"unknown tenant '{tenantId}'");
        // The key and the grant's state are read under the tenant's lock: a retry racing the first attempt finds its entry.
        await TenantLock.TakeAsync(db, tenantId, cancellationToken);
        var existing = await db.LedgerEntries.AsNoTracking()
            .FirstOrDefaultAsync(e => e.TenantId == tenantId && e.IdempotencyKey == idempotencyKey, cancellationToken);
        if (existing is not null)
            return existing.Kind == EntryKind.Void && existing.GrantSeq == grantSeq
                ? new VoidResult(VoidStatus.AlreadyVoided, existing)
                : Rejected("key", $"the key '{idempotencyKey}' already names ledger entry #{existing.Seq} ({EnumText.ToText(existing.Kind)}), not a void of grant #{grantSeq}");

        var grant = grants.Derive(tenantId).Grants.FirstOrDefault(g => g.Seq == grantSeq);
        var now = time.GetUtcNow();
        if (grant is null) return Rejected("grant", $"ledger entry #{grantSeq} of '{tenantId}' is not a grant");
        if (grant.Voided) return Rejected("grant", $"grant #{grantSeq} was already voided by entry #{grant.VoidSeq}");
        if (grant.ExpiryWritten || grant.ExpiresAt <= now) return Rejected("grant", $"grant #{grantSeq} has expired; nothing is left to void");
        if (grant.RemainingMicro == 0) return Rejected("grant", $"grant #{grantSeq} is used up; nothing is left to void");

        var tenant = await db.Tenants.AsNoTracking().FirstAsync(t => t.Id == tenantId, cancellationToken);
        var entry = await LedgerAppender.AppendAsync(db, tenantId, EntryKind.Void, grant.Source, grant.RemainingMicro, tenant.PeriodAt(now).Start,
            idempotencyKey, reason, now, grantSeq: grantSeq, cancellationToken: cancellationToken);
        await tx.CommitAsync(cancellationToken);
        changes.Publish(TenantChange.GrantChanged, tenantId);
        return new VoidResult(VoidStatus.Voided, entry);
    }

    private static VoidResult Rejected(string field, string message) => new(VoidStatus.Rejected, null, message, field);
}
