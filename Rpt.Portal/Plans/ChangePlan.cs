using System.Globalization;
using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Data;
using Rpt.Portal.Ledger;

namespace Rpt.Portal.Plans;

public sealed record PlanChangeResult(bool Changed, string? Error, long GrantedCredits);

/// <summary>
/// Moves a tenant to another plan. An upgrade tops this period's plan allocation (signup, renewal and
/// earlier plan changes) up to the new plan's monthly credits at once, so switching down and up again
/// never grants twice; a downgrade takes nothing back and applies from the next renewal.
/// </summary>
public sealed class ChangePlan(IDbContextFactory<ApplicationDbContext> dbFactory, GrantCredits grant, TimeProvider time)
{
    public async Task<PlanChangeResult> ExecuteAsync(string tenantId, string planCode, CancellationToken cancellationToken = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var tenant = await db.Tenants.FirstOrDefaultAsync(t => t.Id == tenantId, cancellationToken);
        if (tenant is null) return new(false, $"unknown tenant '{tenantId}'", 0);
        var plans = await db.Plans.AsNoTracking().ToDictionaryAsync(p => p.Code, cancellationToken);
        if (!plans.TryGetValue(planCode, out var target)) return new(false, $"unknown plan '{planCode}'", 0);
        if (tenant.PlanCode == planCode) return new(false, null, 0);
        var current = plans.GetValueOrDefault(tenant.PlanCode);

        tenant.ChangePlan(planCode);
        await db.SaveChangesAsync(cancellationToken);

        if (target.Unlimited) return new(true, null, 0);
        var period = tenant.PeriodAt(time.GetUtcNow());
        var planSources = new[] { EntrySource.Signup, EntrySource.Renewal, EntrySource.PlanChange };
        var planAllocated = await db.LedgerEntries
            .Where(e => e.TenantId == tenantId && e.PeriodStart == period.Start && e.Kind == EntryKind.Allocation && planSources.Contains(e.Source))
            .SumAsync(e => e.AmountMicroCredits, cancellationToken);
        var difference = target.MonthlyCredits!.Value - Credit.FloorCredits(planAllocated);
        if (difference <= 0) return new(true, null, 0);
        var key = $"plan_change:{tenantId}:{period.Start.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)}:{planCode}";
        var result = await grant.ExecuteAsync(tenantId, EntrySource.PlanChange, difference, key,
            $"Upgrade from {current?.Name ?? tenant.PlanCode} to {target.Name}", cancellationToken: cancellationToken);
        return new(true, null, result.Status == GrantStatus.Granted ? difference : 0);
    }
}
