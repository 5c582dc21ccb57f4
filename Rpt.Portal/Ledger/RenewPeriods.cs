using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Rpt.Portal.Data;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Ledger;

/// <summary>
/// Grants each tenant its plan's monthly credits when a new billing period begins
/// (key <c>renewal:{tenant}:{period start}</c>, so a period is renewed once however often this runs).
/// The first period is covered by the signup allocation. A downgrade or cancellation scheduled for the new
/// period takes effect first. A tenant paying through a Stripe subscription is renewed by its paid invoice
/// instead (Billing): no payment, no credits.
/// </summary>
public sealed class RenewPeriods(IDbContextFactory<ApplicationDbContext> dbFactory, GrantCredits grant, TimeProvider time, TenantChanges changes)
{
    private readonly ConcurrentDictionary<string, DateOnly> _renewed = new();

    public async Task<int> ExecuteAsync(CancellationToken cancellationToken = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var now = time.GetUtcNow();
        var tenants = await db.Tenants.ToListAsync(cancellationToken);
        var plans = await db.Plans.AsNoTracking().ToDictionaryAsync(p => p.Code, cancellationToken);
        var granted = 0;
        foreach (var tenant in tenants)
        {
            var period = tenant.PeriodAt(now);
            if (period.Start <= tenant.Anchor) continue;
            if (_renewed.TryGetValue(tenant.Id, out var done) && done == period.Start) continue;
            if (tenant.ApplyPendingPlan(period.Start))
            {
                await db.SaveChangesAsync(cancellationToken);
                changes.Publish(TenantChange.PlanChanged, tenant.Id);
            }
            if (tenant.StripeSubscriptionId is not null)
            {
                _renewed[tenant.Id] = period.Start;
                continue;
            }
            if (!plans.TryGetValue(tenant.PlanCode, out var plan) || plan.MonthlyCredits is not > 0)
            {
                _renewed[tenant.Id] = period.Start;
                continue;
            }
            var key = $"renewal:{tenant.Id}:{period.Start.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)}";
            var result = await grant.ExecuteAsync(tenant.Id, EntrySource.Renewal, plan.MonthlyCredits.Value, key,
                $"{plan.Name} plan, period from {period.Start:yyyy-MM-dd}", now, cancellationToken);
            if (result.Status == GrantStatus.Granted) granted++;
            if (result.Status != GrantStatus.Rejected) _renewed[tenant.Id] = period.Start;
        }
        return granted;
    }
}
