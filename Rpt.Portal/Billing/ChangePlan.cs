using Rpt.Portal.Plans;
using System.Globalization;
using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Data;
using Rpt.Portal.Ledger;
using Rpt.Portal.Tenants;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Billing;

public enum PlanChangeKind
{
    /// <summary>Already on that plan with nothing scheduled.</summary>
    None,
    /// <summary>At once; this period's plan allocation is topped up to the new plan's credits.</summary>
    Upgrade,
    /// <summary>From the next period; this period keeps what it was granted.</summary>
    Downgrade,
    /// <summary>Back to the current plan: a downgrade that was waiting for the next period is dropped.</summary>
    KeepCurrent,
}

public sealed record PlanChangeResult(bool Changed, string? Error, long GrantedCredits,
    PlanChangeKind Kind = PlanChangeKind.None, DateOnly? EffectiveFrom = null);

/// <summary>Who asked for a change, for the grant it may make: the key names the Stripe object that paid for it.</summary>
public sealed record PlanChangeOrigin(string GrantKey, string Description);

/// <summary>What a plan change would do, from the same decision that applies it.</summary>
public sealed record PlanChangePreview(
    Plan From,
    Plan To,
    PlanChangeKind Kind,
    DateOnly EffectiveFrom,
    BillingPeriod Period,
    long CreditsGrantedNow,
    long Consumed,
    long? AllocatedBefore,
    long? AllocatedAfter,
    long? RemainingBefore,
    long? RemainingAfter,
    decimal PercentBefore,
    decimal PercentAfter,
    string? PendingPlanCode)
{
    /// <summary>Monthly price difference (positive for an upgrade); null when either price is a contract.</summary>
    public decimal? MonthlyPriceDifference => To.MonthlyPriceUsd - From.MonthlyPriceUsd;
}

/// <summary>
/// Moves a tenant to another plan. An upgrade applies at once and tops this period's plan allocation
/// (signup, renewal and earlier plan changes) up to the new plan's monthly credits, so switching down and
/// up again never grants twice. A downgrade keeps the current plan, its allocation and its entitlements
/// for the rest of the period and applies from the next one (the renewal grants the new plan's credits);
/// nothing is taken back. The plan and its grant are one transaction. <see cref="PreviewAsync"/> answers
/// from the same decision, so what the plans page shows is what happens.
/// </summary>
public sealed class ChangePlan(IDbContextFactory<ApplicationDbContext> dbFactory, GrantCredits grant, GetBalance balances,
    TimeProvider time, TenantChanges changes)
{
    private static readonly EntrySource[] PlanSources = [EntrySource.Signup, EntrySource.Renewal, EntrySource.PlanChange];

    internal readonly record struct Decision(PlanChangeKind Kind, long GrantCredits, DateOnly EffectiveFrom);

    /// <summary>Upgrade or downgrade: by monthly credits (unlimited above all), then by catalog order.</summary>
    public static int Compare(Plan a, Plan b)
    {
        var credits = (a.MonthlyCredits ?? long.MaxValue).CompareTo(b.MonthlyCredits ?? long.MaxValue);
        return credits != 0 ? credits : a.SortOrder.CompareTo(b.SortOrder);
    }

    internal static Decision Decide(Tenant tenant, Plan current, Plan target, long planAllocatedMicro, BillingPeriod period)
    {
        if (target.Code == current.Code)
            return new(tenant.PendingPlanCode is null ? PlanChangeKind.None : PlanChangeKind.KeepCurrent, 0, period.Start);
        if (Compare(target, current) > 0)
            return new(PlanChangeKind.Upgrade,
                target.Unlimited ? 0 : Math.Max(0, target.MonthlyCredits!.Value - Credit.FloorCredits(planAllocatedMicro)), period.Start);
        return new(PlanChangeKind.Downgrade, 0, period.EndExclusive);
    }

    public async Task<PlanChangePreview?> PreviewAsync(string tenantId, string planCode, CancellationToken cancellationToken = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var tenant = await db.Tenants.AsNoTracking().FirstOrDefaultAsync(t => t.Id == tenantId, cancellationToken);
        if (tenant is null) return null;
        var plans = await db.Plans.AsNoTracking().ToDictionaryAsync(p => p.Code, cancellationToken);
        if (!plans.TryGetValue(planCode, out var target) || !plans.TryGetValue(tenant.PlanCode, out var current)) return null;
        var balance = balances.Execute(tenantId);
        if (balance is null) return null;
        var period = balance.Period;
        var planAllocated = await PlanAllocatedAsync(db, tenantId, period, cancellationToken);
        var decision = Decide(tenant, current, target, planAllocated, period);

        var allocatedAfterMicro = balance.AllocatedMicroCredits + Credit.ToMicro(decision.GrantCredits);
        var overageAfter = decision.Kind == PlanChangeKind.Upgrade ? target.Overage : current.Overage;
        var after = balance with { AllocatedMicroCredits = allocatedAfterMicro, Overage = overageAfter };
        return new PlanChangePreview(current, target, decision.Kind, decision.EffectiveFrom, period, decision.GrantCredits,
            balance.Consumed, balance.Allocated, after.Allocated, balance.Remaining, after.Remaining,
            balance.PercentConsumed, after.PercentConsumed, tenant.PendingPlanCode);
    }

    public async Task<PlanChangeResult> ExecuteAsync(string tenantId, string planCode, PlanChangeOrigin? origin = null,
        CancellationToken cancellationToken = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        await using var tx = await db.Database.BeginTransactionAsync(cancellationToken);
        // What the period holds is read, and topped up, under the tenant's lock: two changes at once (two instances, a
        // page and a webhook) decide one after the other, so an upgrade never grants what another just granted.
        await TenantLock.TakeAsync(db, tenantId, cancellationToken);
        var tenant = await db.Tenants.FirstOrDefaultAsync(t => t.Id == tenantId, cancellationToken);
        if (tenant is null) return new(false, $"unknown tenant '{tenantId}'", 0);
        var plans = await db.Plans.AsNoTracking().ToDictionaryAsync(p => p.Code, cancellationToken);
        if (!plans.TryGetValue(planCode, out var target)) return new(false, $"unknown plan '{planCode}'", 0);
        var current = plans.GetValueOrDefault(tenant.PlanCode);
        var period = tenant.PeriodAt(time.GetUtcNow());
        var planAllocated = await PlanAllocatedAsync(db, tenantId, period, cancellationToken);
        var decision = current is null
            ? new Decision(PlanChangeKind.Upgrade, target.MonthlyCredits is { } c ? Math.Max(0, c - Credit.FloorCredits(planAllocated)) : 0, period.Start)
            : Decide(tenant, current, target, planAllocated, period);

        switch (decision.Kind)
        {
            case PlanChangeKind.None:
                return new(false, null, 0, PlanChangeKind.None, period.Start);
            case PlanChangeKind.KeepCurrent:
                tenant.ChangePlan(tenant.PlanCode);
                break;
            case PlanChangeKind.Downgrade:
                if (tenant.PendingPlanCode == planCode && tenant.PendingPlanFrom == decision.EffectiveFrom)
                    return new(false, null, 0, PlanChangeKind.Downgrade, decision.EffectiveFrom);
                tenant.SchedulePlan(planCode, decision.EffectiveFrom);
                break;
            case PlanChangeKind.Upgrade:
                tenant.ChangePlan(planCode);
                break;
        }
        await db.SaveChangesAsync(cancellationToken);

        long granted = 0;
        if (decision.GrantCredits > 0)
        {
            var key = origin?.GrantKey ?? $"plan_change:{tenantId}:{period.Start.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)}:{planCode}";
            var description = origin?.Description ?? $"Upgrade from {current?.Name ?? tenant.PlanCode} to {target.Name}";
            var result = await grant.AppendAsync(db, tenantId, EntrySource.PlanChange, Credit.ToMicro(decision.GrantCredits), key,
                description, null, cancellationToken);
            if (result.Status == GrantStatus.Rejected) return new(false, result.Error, 0); // rolled back: the plan stays
            if (result.Status == GrantStatus.Granted) granted = decision.GrantCredits;
        }
        await tx.CommitAsync(cancellationToken);
        changes.Publish(TenantChange.PlanChanged, tenantId);
        if (granted > 0) changes.Publish(TenantChange.GrantChanged, tenantId);
        return new(true, null, granted, decision.Kind, decision.EffectiveFrom);
    }

    /// <summary>
    /// The renewal a paid invoice stands for: a change scheduled for the period that contains
    /// <paramref name="at"/> takes effect, and the period's plan allocation is topped up to the plan's credits
    /// under the invoice's key (so a renewal the scheduler already made, or a replayed invoice, grants nothing more).
    /// </summary>
    public async Task<GrantResult?> RenewAsync(string tenantId, DateTimeOffset at, PlanChangeOrigin origin, CancellationToken cancellationToken = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        await using var tx = await db.Database.BeginTransactionAsync(cancellationToken);
        await TenantLock.TakeAsync(db, tenantId, cancellationToken);
        var tenant = await db.Tenants.FirstOrDefaultAsync(t => t.Id == tenantId, cancellationToken);
        if (tenant is null) return new(GrantStatus.Rejected, null, $"unknown tenant '{tenantId}'");
        var period = tenant.PeriodAt(at);
        var moved = tenant.ApplyPendingPlan(period.Start);
        await db.SaveChangesAsync(cancellationToken);
        var plan = await db.Plans.AsNoTracking().FirstOrDefaultAsync(p => p.Code == tenant.PlanCode, cancellationToken);
        GrantResult? result = null;
        if (plan?.MonthlyCredits is { } credits)
        {
            var missing = credits - Credit.FloorCredits(await PlanAllocatedAsync(db, tenantId, period, cancellationToken));
            if (missing > 0)
            {
                result = await grant.AppendAsync(db, tenantId, EntrySource.Renewal, Credit.ToMicro(missing), origin.GrantKey,
                    origin.Description, at, cancellationToken);
                if (result.Status == GrantStatus.Rejected) return result;
            }
        }
        await tx.CommitAsync(cancellationToken);
        if (moved) changes.Publish(TenantChange.PlanChanged, tenantId);
        if (result?.Status == GrantStatus.Granted) changes.Publish(TenantChange.GrantChanged, tenantId);
        return result;
    }

    private static Task<long> PlanAllocatedAsync(ApplicationDbContext db, string tenantId, BillingPeriod period, CancellationToken ct) =>
        db.LedgerEntries
            .Where(e => e.TenantId == tenantId && e.PeriodStart == period.Start && e.Kind == EntryKind.Allocation && PlanSources.Contains(e.Source))
            .SumAsync(e => e.AmountMicroCredits, ct);
}
