using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Data;
using Rpt.Portal.Metering;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Ledger;

public enum GrantStatus { Granted, AlreadyGranted, Rejected }

public sealed record GrantResult(GrantStatus Status, LedgerEntry? Entry, string? Error = null);

/// <summary>
/// Grants credits to a tenant: one allocation entry per idempotency key, ever. A retried signup,
/// renewal or payment webhook finds the entry it already made and grants nothing.
/// </summary>
public sealed class GrantCredits(IDbContextFactory<ApplicationDbContext> dbFactory, TimeProvider time, TenantChanges changes)
{
    /// <summary>One grant is at most 10^15 µcr (a billion credits).</summary>
    public const long MaxMicroCreditsPerGrant = 1_000_000_000_000_000;

    /// <param name="credits">Whole credits to grant (positive).</param>
    /// <param name="at">The instant whose billing period the grant belongs to; now when omitted.</param>
    /// <param name="expiresAt">Another expiry than the source's default (see <see cref="CreditGrants.ExpiryOf"/>); ignored for plan allocations.</param>
    public Task<GrantResult> ExecuteAsync(string tenantId, EntrySource source, long credits, string idempotencyKey,
        string? description = null, DateTimeOffset? at = null, CancellationToken cancellationToken = default, DateTimeOffset? expiresAt = null)
    {
        if (credits <= 0) return Task.FromResult(new GrantResult(GrantStatus.Rejected, null, $"credits must be positive (got {credits})"));
        if (credits > MaxMicroCreditsPerGrant / Credit.MicroPerCredit)
            return Task.FromResult(new GrantResult(GrantStatus.Rejected, null,
                $"credits {UsageLimits.Number(credits)} exceed the per-grant limit of {UsageLimits.Number(MaxMicroCreditsPerGrant / Credit.MicroPerCredit)}"));
        if (expiresAt is { } x && x <= time.GetUtcNow())
            return Task.FromResult(new GrantResult(GrantStatus.Rejected, null, $"the expiry {x:yyyy-MM-dd} is not in the future"));
        return GrantMicroAsync(tenantId, source, Credit.ToMicro(credits), idempotencyKey, description, at, cancellationToken, expiresAt);
    }

    public async Task<GrantResult> GrantMicroAsync(string tenantId, EntrySource source, long microCredits, string idempotencyKey,
        string? description, DateTimeOffset? at, CancellationToken cancellationToken, DateTimeOffset? expiresAt = null)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        await using var tx = await db.Database.BeginTransactionAsync(cancellationToken);
        var result = await AppendAsync(db, tenantId, source, microCredits, idempotencyKey, description, at, cancellationToken, expiresAt);
        if (result.Status != GrantStatus.Granted) return result;
        await tx.CommitAsync(cancellationToken);
        changes.Publish(TenantChange.GrantChanged, tenantId);
        return result;
    }

    /// <summary>
    /// The grant inside the caller's write transaction, for a use case that changes more than the ledger
    /// in one commit (a plan change). The caller commits, then publishes <see cref="TenantChange.GrantChanged"/>.
    /// </summary>
    internal async Task<GrantResult> AppendAsync(ApplicationDbContext db, string tenantId, EntrySource source, long microCredits,
        string idempotencyKey, string? description, DateTimeOffset? at, CancellationToken cancellationToken, DateTimeOffset? expiresAt = null)
    {
        if (source == EntrySource.Usage) return new(GrantStatus.Rejected, null, "usage is consumption, not an allocation");
        if (microCredits <= 0) return new(GrantStatus.Rejected, null, $"the amount must be positive (got {microCredits} µcr)");
        if (microCredits > MaxMicroCreditsPerGrant)
            return new(GrantStatus.Rejected, null, $"the amount exceeds the per-grant limit of {UsageLimits.Number(MaxMicroCreditsPerGrant)} µcr");
        if (string.IsNullOrWhiteSpace(idempotencyKey) || idempotencyKey.Length > 200)
            return new(GrantStatus.Rejected, null, "an idempotency key of 1 to 200 characters is required");

        // The key is looked up and the grant appended under the tenant's lock: a retry racing the first attempt finds it.
        await TenantLock.TakeAsync(db, tenantId, cancellationToken);
        var existing = await db.LedgerEntries.AsNoTracking()
            .FirstOrDefaultAsync(e => e.TenantId == tenantId && e.IdempotencyKey == idempotencyKey, cancellationToken);
        if (existing is not null) return new(GrantStatus.AlreadyGranted, existing);

        var tenant = await db.Tenants.AsNoTracking().FirstOrDefaultAsync(t => t.Id == tenantId, cancellationToken);
        if (tenant is null) return new(GrantStatus.Rejected, null, $"unknown tenant '{tenantId}'");

        var now = time.GetUtcNow();
        var period = tenant.PeriodAt(at ?? now);
        var granted = await db.LedgerEntries
            .Where(e => e.TenantId == tenantId && e.PeriodStart == period.Start && e.Kind == EntryKind.Allocation)
            .Select(e => e.AmountMicroCredits).ToListAsync(cancellationToken);
        if (granted.Aggregate((Int128)microCredits, (sum, a) => sum + a) > UsageLimits.MaxMicroCreditsPerTenantPeriod)
            return new(GrantStatus.Rejected, null, $"the period's grants would pass the per-period limit of {UsageLimits.Number(UsageLimits.MaxMicroCreditsPerTenantPeriod)} µcr");
        var expiry = CreditGrants.ExpiryOf(tenant.Anchor, source, period, at ?? now, expiresAt);
        var entry = await LedgerAppender.AppendAsync(db, tenantId, EntryKind.Allocation, source, microCredits, period.Start,
            idempotencyKey, description, now, expiresAt: expiry, cancellationToken: cancellationToken);
        return new(GrantStatus.Granted, entry);
    }
}
