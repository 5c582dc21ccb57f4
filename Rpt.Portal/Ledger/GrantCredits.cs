using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Data;

namespace Rpt.Portal.Ledger;

public enum GrantStatus { Granted, AlreadyGranted, Rejected }

public sealed record GrantResult(GrantStatus Status, LedgerEntry? Entry, string? Error = null);

/// <summary>
/// Grants credits to a tenant: one allocation entry per idempotency key, ever. A retried signup,
/// renewal or payment webhook finds the entry it already made and grants nothing.
/// </summary>
public sealed class GrantCredits(IDbContextFactory<ApplicationDbContext> dbFactory, TimeProvider time, LedgerEvents events)
{
    /// <param name="credits">Whole credits to grant (positive).</param>
    /// <param name="at">The instant whose billing period the grant belongs to; now when omitted.</param>
    public Task<GrantResult> ExecuteAsync(string tenantId, EntrySource source, long credits, string idempotencyKey,
        string? description = null, DateTimeOffset? at = null, CancellationToken cancellationToken = default)
    {
        if (credits <= 0) return Task.FromResult(new GrantResult(GrantStatus.Rejected, null, $"credits must be positive (got {credits})"));
        return GrantMicroAsync(tenantId, source, Credit.ToMicro(credits), idempotencyKey, description, at, cancellationToken);
    }

    public async Task<GrantResult> GrantMicroAsync(string tenantId, EntrySource source, long microCredits, string idempotencyKey,
        string? description, DateTimeOffset? at, CancellationToken cancellationToken)
    {
        if (source == EntrySource.Usage) return new(GrantStatus.Rejected, null, "usage is consumption, not an allocation");
        if (microCredits <= 0) return new(GrantStatus.Rejected, null, $"the amount must be positive (got {microCredits} µcr)");
        if (string.IsNullOrWhiteSpace(idempotencyKey) || idempotencyKey.Length > 200)
            return new(GrantStatus.Rejected, null, "an idempotency key of 1 to 200 characters is required");

        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        await using var tx = await db.Database.BeginTransactionAsync(cancellationToken);
        var existing = await db.LedgerEntries.AsNoTracking()
            .FirstOrDefaultAsync(e => e.TenantId == tenantId && e.IdempotencyKey == idempotencyKey, cancellationToken);
        if (existing is not null) return new(GrantStatus.AlreadyGranted, existing);

        var tenant = await db.Tenants.AsNoTracking().FirstOrDefaultAsync(t => t.Id == tenantId, cancellationToken);
        if (tenant is null) return new(GrantStatus.Rejected, null, $"unknown tenant '{tenantId}'");

        var now = time.GetUtcNow();
        var period = tenant.PeriodAt(at ?? now);
        var entry = await LedgerAppender.AppendAsync(db, tenantId, EntryKind.Allocation, source, microCredits, period.Start,
            idempotencyKey, description, now, cancellationToken: cancellationToken);
        await tx.CommitAsync(cancellationToken);
        events.RaiseAllocationChanged(tenantId);
        return new(GrantStatus.Granted, entry);
    }
}

/// <summary>Tells listeners (alerts, the live dashboard) that a tenant's ledger moved.</summary>
public sealed class LedgerEvents
{
    public event Action<string>? AllocationChanged;
    public event Action<IReadOnlyCollection<string>>? UsageFlushed;

    public void RaiseAllocationChanged(string tenantId) => AllocationChanged?.Invoke(tenantId);
    public void RaiseUsageFlushed(IReadOnlyCollection<string> tenantIds) => UsageFlushed?.Invoke(tenantIds);
}
