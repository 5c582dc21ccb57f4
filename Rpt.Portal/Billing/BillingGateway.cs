using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Data;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Billing;

/// <summary>An invoice as the billing page lists it (amounts in USD, converted from Stripe's cents).</summary>
public sealed record InvoiceSummary(string Id, string? Number, DateTimeOffset Date, decimal Amount, string Currency, string Status,
    string? HostedUrl, string? Reason);

/// <summary>
/// Where subscriptions are paid: Stripe (<see cref="StripeGateway"/>) or, without a key, the in-portal
/// test mode (<see cref="TestModeGateway"/>). Every state change either makes still reaches the tenant
/// through <see cref="BillingEvents"/>.
/// </summary>
public interface IBillingGateway
{
    bool TestMode { get; }

    /// <summary>A checkout page for a first subscription to <paramref name="planCode"/>; the URL to send the owner to.</summary>
    Task<string> StartCheckoutAsync(Tenant tenant, string planCode, Uri portalBase, CancellationToken cancellationToken);

    /// <summary>A checkout for one top-up pack (payment mode; the card is kept for auto top-up); the URL to send the owner to.</summary>
    Task<string> StartTopUpCheckoutAsync(Tenant tenant, TopUpPack pack, Uri portalBase, CancellationToken cancellationToken);

    /// <summary>
    /// Pays for an auto top-up off-session on the saved card (a PaymentIntent keyed by <paramref name="key"/>). The credits
    /// follow <c>payment_intent.succeeded</c>; a decline throws (Stripe answers it at once) or arrives as <c>payment_intent.payment_failed</c>.
    /// </summary>
    Task ChargeAutoTopUpAsync(Tenant tenant, TopUpPack pack, string key, CancellationToken cancellationToken);

    /// <summary>One billing meter event (a whole number of credits for a customer), identified so that Stripe counts it once.</summary>
    Task ReportMeterEventAsync(string eventName, string customerId, long quantity, string identifier, DateTimeOffset at, CancellationToken cancellationToken);

    /// <summary>Moves the tenant's subscription to another price (prorated by Stripe on an upgrade); what it did, in words.</summary>
    Task<string> ChangeSubscriptionAsync(Tenant tenant, string planCode, bool upgrade, CancellationToken cancellationToken);

    /// <summary>Ends the subscription; the tenant keeps the paid period, then moves to Free.</summary>
    Task<string> CancelSubscriptionAsync(Tenant tenant, CancellationToken cancellationToken);

    /// <summary>Stripe's customer portal (payment methods, cancellation), or test mode's stand-in.</summary>
    Task<string> CustomerPortalUrlAsync(Tenant tenant, Uri portalBase, CancellationToken cancellationToken);

    Task<IReadOnlyList<InvoiceSummary>> InvoicesAsync(Tenant tenant, CancellationToken cancellationToken);

    /// <summary>
    /// Every paid object created since <paramref name="since"/> that grants credits: completed and paid Checkout Sessions,
    /// paid invoices, succeeded auto top-up payments; for the console's reconciliation with the ledger.
    /// </summary>
    Task<IReadOnlyList<PaidObject>> PaidObjectsAsync(DateTimeOffset since, CancellationToken cancellationToken);
}

/// <summary>
/// A paid Stripe object. <see cref="Kind"/>: <c>checkout_session</c>, <c>invoice</c> or <c>payment_intent</c>;
/// <see cref="Purpose"/>: a session's <c>top_up</c> or <c>plan</c>, an invoice's billing reason, <c>auto_top_up</c>.
/// </summary>
public sealed record PaidObject(string Kind, string Id, string? TenantId, string? CustomerId, string? SubscriptionId, string? InvoiceId,
    string? Purpose, string? Key, DateTimeOffset Created, DateTimeOffset? PeriodStart, string? Url)
{
    /// <summary>Where an operator sees it: Stripe's dashboard (test-mode objects live in the portal only).</summary>
    public string? DashboardUrl => Id.Contains("_test_", StringComparison.Ordinal) && Kind != "checkout_session" ? Url
        : Kind switch
        {
            "checkout_session" => $"https://dashboard.stripe.com/checkout/sessions/{Id}",
            "invoice" => $"https://dashboard.stripe.com/invoices/{Id}",
            _ => $"https://dashboard.stripe.com/payments/{Id}",
        };

    public static PaidObject OfSession(Stripe.Checkout.Session s) => new("checkout_session", s.Id, s.Metadata?.GetValueOrDefault("tenant_id") ?? s.ClientReferenceId,
        s.CustomerId, s.SubscriptionId, s.InvoiceId, s.Metadata?.GetValueOrDefault("kind"), null, Utc(s.Created), null, null);

    public static PaidObject OfInvoice(Stripe.Invoice i) => new("invoice", i.Id, i.Parent?.SubscriptionDetails?.Metadata?.GetValueOrDefault("tenant_id"),
        i.CustomerId, i.Parent?.SubscriptionDetails?.SubscriptionId, i.Id, i.BillingReason, null, Utc(i.Created),
        i.Lines?.Data?.FirstOrDefault()?.Period?.Start is { } start && start > DateTime.UnixEpoch ? Utc(start) : null, i.HostedInvoiceUrl);

    public static PaidObject OfPaymentIntent(Stripe.PaymentIntent p) => new("payment_intent", p.Id, p.Metadata?.GetValueOrDefault("tenant_id"), p.CustomerId,
        null, null, p.Metadata?.GetValueOrDefault("kind"), p.Metadata?.GetValueOrDefault("key"), Utc(p.Created), null, null);

    private static DateTimeOffset Utc(DateTime t) => new(DateTime.SpecifyKind(t, DateTimeKind.Utc));
}

/// <summary>Links a tenant to its Stripe customer once (the first caller stores it; a racing second keeps the first).</summary>
internal static class CustomerLink
{
    public static async Task<string> StoreAsync(IDbContextFactory<ApplicationDbContext> dbFactory, string tenantId, string customerId, CancellationToken ct)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var tenant = await db.Tenants.FirstAsync(t => t.Id == tenantId, ct);
        if (tenant.StripeCustomerId is { } existing) return existing;
        tenant.LinkStripeCustomer(customerId);
        await db.SaveChangesAsync(ct);
        return customerId;
    }
}
