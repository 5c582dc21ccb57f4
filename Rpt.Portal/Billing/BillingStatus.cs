using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Rpt.Portal.Data;
using Rpt.Portal.Plans;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Billing;

/// <summary>What the plans and billing pages show of an account: its plan, what is scheduled, how it pays.</summary>
public sealed record BillingAccount(
    Tenant Tenant,
    Plan Plan,
    Plan? PendingPlan,
    IReadOnlyList<Plan> Catalog,
    bool TestMode,
    string SalesEmail,
    bool PaymentsUnavailable = false)
{
    public bool Subscribed => Tenant.StripeSubscriptionId is not null;
    public bool PaymentFailed => Tenant.PaymentFailedInvoiceId is not null;
}

public sealed class BillingStatus(IDbContextFactory<ApplicationDbContext> dbFactory, IOptions<StripeOptions> options)
{
    public async Task<BillingAccount?> ExecuteAsync(string tenantId, CancellationToken cancellationToken = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var tenant = await db.Tenants.AsNoTracking().FirstOrDefaultAsync(t => t.Id == tenantId, cancellationToken);
        if (tenant is null) return null;
        var all = await db.Plans.AsNoTracking().OrderBy(p => p.SortOrder).ToListAsync(cancellationToken);
        var plan = all.FirstOrDefault(p => p.Code == tenant.PlanCode);
        if (plan is null) return null;
        // A retired plan is offered to no one; the tenants on it (or moving to it) still see theirs.
        var catalog = all.Where(p => !p.Retired || p.Code == tenant.PlanCode || p.Code == tenant.PendingPlanCode).ToList();
        return new BillingAccount(tenant, plan, catalog.FirstOrDefault(p => p.Code == tenant.PendingPlanCode), catalog,
            options.Value.TestMode, options.Value.SalesEmail, options.Value.PaymentsUnavailable);
    }

    /// <summary>Just the unpaid invoice, for the banner every page of an owner shows (one indexed read).</summary>
    public async Task<(string InvoiceId, string? Url)?> FailedPaymentAsync(string tenantId, CancellationToken cancellationToken = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var row = await db.Tenants.AsNoTracking().Where(t => t.Id == tenantId)
            .Select(t => new { t.PaymentFailedInvoiceId, t.PaymentFailedInvoiceUrl }).FirstOrDefaultAsync(cancellationToken);
        return row?.PaymentFailedInvoiceId is { } id ? (id, row.PaymentFailedInvoiceUrl) : null;
    }
}
