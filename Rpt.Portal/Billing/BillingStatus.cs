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
    string SalesEmail)
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
        var catalog = await db.Plans.AsNoTracking().OrderBy(p => p.SortOrder).ToListAsync(cancellationToken);
        var plan = catalog.FirstOrDefault(p => p.Code == tenant.PlanCode);
        if (plan is null) return null;
        return new BillingAccount(tenant, plan, catalog.FirstOrDefault(p => p.Code == tenant.PendingPlanCode), catalog,
            options.Value.TestMode, options.Value.SalesEmail);
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

/// <summary>Plans and entitlements in the words of the plans page.</summary>
public static class PlanText
{
    public static string Price(Plan plan) => plan.MonthlyPriceUsd switch
    {
        null => "Contract",
        0m => "$0",
        { } p => Components.Shared.Show.PlanPrice(p),
    };

    public static string Credits(Plan plan) => plan.MonthlyCredits is { } c ? $"{Components.Shared.Show.Credits(c)} credits a month" : "Unlimited credits";

    public static string PastTheAllocation(Plan plan) => plan.Overage switch
    {
        OveragePolicy.Blocked => "Stops at the allocation: top up or upgrade to go on",
        OveragePolicy.Overage => $"Past the allocation: {Components.Shared.Show.Price(plan.OverageUsdPerCredit)} per credit",
        _ => "No allocation to pass",
    };

    public static string Entitlement(Entitlement e) => (e.Key, e.Kind) switch
    {
        ("email_alerts", _) => e.IsEnabled ? "Email alerts" : "No email alerts",
        ("csv_export", _) => e.IsEnabled ? "CSV export of usage" : "No CSV export",
        ("webhook_alerts", _) => e.IsEnabled ? "Webhook alerts" : "No webhook alerts",
        ("anomaly_hints", _) => e.IsEnabled ? "Anomaly hints" : "No anomaly hints",
        ("max_api_keys", _) => $"Up to {Quantity(e)} API keys",
        ("team_seats", _) => Quantity(e) == "1" ? "1 team seat" : $"{Quantity(e)} team seats",
        ("model_access_tier", _) => $"Models: {e.Value}",
        (_, EntitlementKind.Boolean) => e.IsEnabled ? e.Key.Replace('_', ' ') : "No " + e.Key.Replace('_', ' '),
        _ => $"{e.Key.Replace('_', ' ')}: {e.Value}",
    };

    private static string Quantity(Entitlement e) => long.TryParse(e.Value, out var n) ? Components.Shared.Show.Count(n) : e.Value;
}
