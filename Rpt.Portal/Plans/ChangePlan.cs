using System.Globalization;
using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Data;
using Rpt.Portal.Ledger;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Plans;

public sealed record PlanChangeResult(bool Changed, string? Error, long GrantedCredits);

/// <summary>
/// Moves a tenant to another plan. An upgrade tops this period's plan allocation (signup, renewal and
/// earlier plan changes) up to the new plan's monthly credits at once, so switching down and up again
/// never grants twice; a downgrade takes nothing back and applies from the next renewal. The plan and
/// its grant are one transaction: either both are written or neither, so a retry after a failure grants.
/// </summary>
public sealed class ChangePlan(IDbContextFactory<ApplicationDbContext> dbFactory, GrantCredits grant, TimeProvider time, TenantChanges changes)
{
    private static readonly EntrySource[] PlanSources = [EntrySource.Signup, EntrySource.Renewal, EntrySource.PlanChange];

    public async Task<PlanChangeResult> ExecuteAsync(string tenantId, string planCode, CancellationToken cancellationToken = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        await using var tx = await db.Database.BeginTransactionAsync(cancellationToken);
        var tenant = await db.Tenants.FirstOrDefaultAsync(t => t.Id == tenantId, cancellationToken);
        if (tenant is null) return new(false, $"unknown tenant '{tenantId}'", 0);
        var plans = await db.Plans.AsNoTracking().ToDictionaryAsync(p => p.Code, cancellationToken);
        if (!plans.TryGetValue(planCode, out var target)) return new(false, $"unknown plan '{planCode}'", 0);
        if (tenant.PlanCode == planCode) return new(false, null, 0);
        var current = plans.GetValueOrDefault(tenant.PlanCode);

        tenant.ChangePlan(planCode);
        await db.SaveChangesAsync(cancellationToken);

        long granted = 0;
        if (!target.Unlimited)
        {
            var period = tenant.PeriodAt(time.GetUtcNow());
            var planAllocated = await db.LedgerEntries
                .Where(e => e.TenantId == tenantId && e.PeriodStart == period.Start && e.Kind == EntryKind.Allocation && PlanSources.Contains(e.Source))
                .SumAsync(e => e.AmountMicroCredits, cancellationToken);
            var difference = target.MonthlyCredits!.Value - Credit.FloorCredits(planAllocated);
            if (difference > 0)
            {
                var key = $"plan_change:{tenantId}:{period.Start.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)}:{planCode}";
                var result = await grant.AppendAsync(db, tenantId, EntrySource.PlanChange, Credit.ToMicro(difference), key,
                    $"Upgrade from {current?.Name ?? tenant.PlanCode} to {target.Name}", null, cancellationToken);
                if (result.Status == GrantStatus.Rejected) return new(false, result.Error, 0); // rolled back: the plan stays
                if (result.Status == GrantStatus.Granted) granted = difference;
            }
        }
        await tx.CommitAsync(cancellationToken);
        changes.Publish(TenantChange.PlanChanged, tenantId);
        if (granted > 0) changes.Publish(TenantChange.GrantChanged, tenantId);
        return new(true, null, granted);
    }
}
