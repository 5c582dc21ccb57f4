using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Rpt.Portal.Data;
using Rpt.Portal.Tenants;
using Stripe;

namespace Rpt.Portal.Billing;

/// <summary>
/// Stripe through Stripe.net. Checkout Sessions carry the tenant as <c>client_reference_id</c> and in
/// <c>metadata</c>, also on the subscription (<c>subscription_data</c>), whose billing cycle is anchored on
/// the tenant's next period start so that Stripe's invoices and our periods begin on the same day.
/// </summary>
public sealed class StripeGateway(IStripeClient client, IDbContextFactory<ApplicationDbContext> dbFactory, StripePrices prices,
    BillingEvents events, TimeProvider time) : IBillingGateway
{
    public bool TestMode => false;

    public async Task<string> StartCheckoutAsync(Tenant tenant, string planCode, Uri portalBase, CancellationToken cancellationToken)
    {
        var price = prices.ForPlan(planCode)
            ?? throw new BillingException($"No Stripe price is set for the {planCode} plan (the console's Plans page, or Rpt:Stripe:PlanPrices:{planCode}).");
        var customer = await EnsureCustomerAsync(tenant, cancellationToken);
        var metadata = new Dictionary<string, string> { ["tenant_id"] = tenant.Id, ["kind"] = "plan", ["plan"] = planCode };
        var nextPeriod = tenant.PeriodAt(time.GetUtcNow()).EndInstant.UtcDateTime;
        var session = await new Stripe.Checkout.SessionService(client).CreateAsync(new Stripe.Checkout.SessionCreateOptions
        {
            Mode = "subscription",
            Customer = customer,
            ClientReferenceId = tenant.Id,
            Metadata = metadata,
            LineItems = [new() { Price = price, Quantity = 1 }],
            SubscriptionData = new() { Metadata = metadata, BillingCycleAnchor = nextPeriod },
            SuccessUrl = new Uri(portalBase, "billing/success?session_id={CHECKOUT_SESSION_ID}").ToString(),
            CancelUrl = new Uri(portalBase, "billing/cancelled").ToString(),
        }, cancellationToken: cancellationToken);
        return session.Url;
    }

    public async Task<string> StartTopUpCheckoutAsync(Tenant tenant, TopUpPack pack, Uri portalBase, CancellationToken cancellationToken)
    {
        var price = prices.ForPack(pack.Code)
            ?? throw new BillingException($"No Stripe price is configured for the {pack.Code} pack (Rpt:Stripe:PackPrices:{pack.Code}).");
        var customer = await EnsureCustomerAsync(tenant, cancellationToken);
        var metadata = new Dictionary<string, string> { ["tenant_id"] = tenant.Id, ["kind"] = "top_up", ["pack"] = pack.Code };
        var session = await new Stripe.Checkout.SessionService(client).CreateAsync(new Stripe.Checkout.SessionCreateOptions
        {
            Mode = "payment",
            Customer = customer,
            ClientReferenceId = tenant.Id,
            Metadata = metadata,
            LineItems = [new() { Price = price, Quantity = 1 }],
            // The card is kept for auto top-up, which pays off-session.
            PaymentIntentData = new() { Metadata = metadata, SetupFutureUsage = "off_session" },
            SuccessUrl = new Uri(portalBase, "billing/success?session_id={CHECKOUT_SESSION_ID}").ToString(),
            CancelUrl = new Uri(portalBase, "billing/cancelled").ToString(),
        }, cancellationToken: cancellationToken);
        return session.Url;
    }

    public async Task ChargeAutoTopUpAsync(Tenant tenant, TopUpPack pack, string key, CancellationToken cancellationToken)
    {
        if (tenant.StripeCustomerId is null) throw new BillingException("There is no saved card yet: buy a pack once, and auto top-up uses that card.");
        var customer = await new CustomerService(client).GetAsync(tenant.StripeCustomerId, cancellationToken: cancellationToken);
        var card = customer.InvoiceSettings?.DefaultPaymentMethodId
            ?? (await new PaymentMethodService(client).ListAsync(new PaymentMethodListOptions { Customer = customer.Id, Type = "card", Limit = 1 },
                cancellationToken: cancellationToken)).Data.FirstOrDefault()?.Id
            ?? throw new BillingException("There is no saved card: add one in the billing portal, or buy a pack once.");
        await new PaymentIntentService(client).CreateAsync(new PaymentIntentCreateOptions
        {
            Amount = (long)(pack.PriceUsd * 100m),
            Currency = "usd",
            Customer = customer.Id,
            PaymentMethod = card,
            OffSession = true,
            Confirm = true,
            Description = $"Auto top-up: {pack.Name}",
            Metadata = new() { ["tenant_id"] = tenant.Id, ["kind"] = "auto_top_up", ["pack"] = pack.Code, ["key"] = key },
        }, new RequestOptions { IdempotencyKey = key }, cancellationToken);
    }

    public async Task ReportMeterEventAsync(string eventName, string customerId, long quantity, string identifier, DateTimeOffset at,
        CancellationToken cancellationToken)
    {
        if (quantity <= 0) throw new ArgumentOutOfRangeException(nameof(quantity), "A meter report is a positive whole number of credits.");
        await new Stripe.Billing.MeterEventService(client).CreateAsync(new Stripe.Billing.MeterEventCreateOptions
        {
            EventName = eventName,
            Identifier = identifier,
            Timestamp = at.UtcDateTime,
            Payload = new() { ["stripe_customer_id"] = customerId, ["value"] = quantity.ToString(System.Globalization.CultureInfo.InvariantCulture) },
        }, new RequestOptions { IdempotencyKey = identifier }, cancellationToken);
    }

    public async Task<string> ChangeSubscriptionAsync(Tenant tenant, string planCode, bool upgrade, CancellationToken cancellationToken)
    {
        var price = prices.ForPlan(planCode)
            ?? throw new BillingException($"No Stripe price is set for the {planCode} plan (the console's Plans page, or Rpt:Stripe:PlanPrices:{planCode}).");
        var service = new SubscriptionService(client);
        var subscription = await service.GetAsync(tenant.StripeSubscriptionId, cancellationToken: cancellationToken);
        var item = subscription.Items.Data.FirstOrDefault()
            ?? throw new BillingException($"Stripe subscription {subscription.Id} has no item to change.");
        var updated = await service.UpdateAsync(subscription.Id, new SubscriptionUpdateOptions
        {
            Items = [new() { Id = item.Id, Price = price }],
            // An upgrade is charged now for the rest of the period; a downgrade is billed from the next invoice.
            ProrationBehavior = upgrade ? "always_invoice" : "none",
            CancelAtPeriodEnd = false,
            Metadata = new() { ["tenant_id"] = tenant.Id, ["kind"] = "plan", ["plan"] = planCode },
        }, cancellationToken: cancellationToken);
        return await events.ApplySubscriptionAsync(updated, cancellationToken);
    }

    public async Task<string> CancelSubscriptionAsync(Tenant tenant, CancellationToken cancellationToken)
    {
        var cancelled = await new SubscriptionService(client).CancelAsync(tenant.StripeSubscriptionId, cancellationToken: cancellationToken);
        return await events.ApplySubscriptionAsync(cancelled, cancellationToken);
    }

    public async Task<string> CustomerPortalUrlAsync(Tenant tenant, Uri portalBase, CancellationToken cancellationToken)
    {
        var customer = await EnsureCustomerAsync(tenant, cancellationToken);
        var session = await new Stripe.BillingPortal.SessionService(client).CreateAsync(new Stripe.BillingPortal.SessionCreateOptions
        {
            Customer = customer,
            ReturnUrl = new Uri(portalBase, "billing").ToString(),
        }, cancellationToken: cancellationToken);
        return session.Url;
    }

    public async Task<IReadOnlyList<InvoiceSummary>> InvoicesAsync(Tenant tenant, CancellationToken cancellationToken)
    {
        if (tenant.StripeCustomerId is null) return [];
        var list = await new InvoiceService(client).ListAsync(new InvoiceListOptions { Customer = tenant.StripeCustomerId, Limit = 24 },
            cancellationToken: cancellationToken);
        return list.Data.Select(Summarize).ToList();
    }

    public async Task<IReadOnlyList<PaidObject>> PaidObjectsAsync(DateTimeOffset since, CancellationToken cancellationToken)
    {
        var created = new DateRangeOptions { GreaterThanOrEqual = since.UtcDateTime };
        var paid = new List<PaidObject>();
        await foreach (var s in new Stripe.Checkout.SessionService(client).ListAutoPagingAsync(
                           new Stripe.Checkout.SessionListOptions { Status = "complete", Created = created, Limit = 100 }, cancellationToken: cancellationToken))
            if (s.PaymentStatus is "paid" or "no_payment_required") paid.Add(PaidObject.OfSession(s));
        await foreach (var i in new InvoiceService(client).ListAutoPagingAsync(new InvoiceListOptions { Status = "paid", Created = created, Limit = 100 },
                           cancellationToken: cancellationToken))
            paid.Add(PaidObject.OfInvoice(i));
        await foreach (var p in new PaymentIntentService(client).ListAutoPagingAsync(new PaymentIntentListOptions { Created = created, Limit = 100 },
                           cancellationToken: cancellationToken))
            if (p.Status == "succeeded" && p.Metadata?.GetValueOrDefault("kind") == "auto_top_up") paid.Add(PaidObject.OfPaymentIntent(p));
        return paid;
    }

    internal static InvoiceSummary Summarize(Invoice i) => new(i.Id, i.Number,
        new DateTimeOffset(DateTime.SpecifyKind(i.Created, DateTimeKind.Utc)),
        (i.Status == "paid" ? i.AmountPaid : i.AmountDue) / 100m, (i.Currency ?? "usd").ToUpperInvariant(), i.Status ?? "", i.HostedInvoiceUrl, i.BillingReason);

    /// <summary>The tenant's Stripe customer, created on first need; Stripe's idempotency key keeps a racing second request from making another.</summary>
    private async Task<string> EnsureCustomerAsync(Tenant tenant, CancellationToken ct)
    {
        if (tenant.StripeCustomerId is { } id) return id;
        var customer = await new CustomerService(client).CreateAsync(new CustomerCreateOptions
        {
            Name = tenant.Name,
            Metadata = new() { ["tenant_id"] = tenant.Id },
        }, new RequestOptions { IdempotencyKey = $"customer:{tenant.Id}" }, ct);
        return await CustomerLink.StoreAsync(dbFactory, tenant.Id, customer.Id, ct);
    }
}

/// <summary>A billing step that cannot be taken, with a message for the owner.</summary>
public sealed class BillingException(string message) : Exception(message);
