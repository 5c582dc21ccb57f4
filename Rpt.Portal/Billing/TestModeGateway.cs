using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Rpt.Portal.Data;
using Rpt.Portal.Ledger;
using Rpt.Portal.Plans;
using Rpt.Portal.Tenants;
using Plan = Rpt.Portal.Plans.Plan;
using StripeConfiguration = Stripe.StripeConfiguration;

namespace Rpt.Portal.Billing;

/// <summary>A checkout opened in test mode, waiting for the owner to pay or cancel on the labelled page.</summary>
public sealed record TestCheckout(string Id, string TenantId, string? PlanCode, string? PackCode, DateTimeOffset CreatedAt);

/// <summary>
/// Test mode (no Stripe key): the portal plays Stripe's part. A checkout is a labelled page inside the
/// portal; paying it, changing or cancelling the subscription, and each period's renewal make the events
/// Stripe would send, in Stripe's format, and hand them to <see cref="BillingEvents"/>, the code a
/// webhook goes through. Nothing is charged; every state change is the real one.
/// </summary>
public sealed class TestModeGateway(IDbContextFactory<ApplicationDbContext> dbFactory, BillingEvents events, StripePrices prices,
    IOptions<StripeOptions> options, TimeProvider time) : IBillingGateway
{
    private static readonly TimeSpan CheckoutLifetime = TimeSpan.FromHours(24);
    private readonly ConcurrentDictionary<string, TestCheckout> _checkouts = new(StringComparer.Ordinal);

    public bool TestMode => true;

    /// <summary>With a Stripe key, Stripe alone says what was paid: every test-mode action refuses.</summary>
    private void EnsureTestMode()
    {
        if (!options.Value.TestMode) throw new BillingException("Test mode is off: Stripe handles payments for this portal.");
    }

    public async Task<string> StartCheckoutAsync(Tenant tenant, string planCode, Uri portalBase, CancellationToken cancellationToken)
    {
        EnsureTestMode();
        await EnsureCustomerAsync(tenant, cancellationToken);
        var now = time.GetUtcNow();
        foreach (var stale in _checkouts.Values.Where(c => now - c.CreatedAt > CheckoutLifetime)) _checkouts.TryRemove(stale.Id, out _);
        var checkout = new TestCheckout(NewId("cs_test_"), tenant.Id, planCode, null, now);
        _checkouts[checkout.Id] = checkout;
        return new Uri(portalBase, $"billing/test-checkout/{checkout.Id}").ToString();
    }

    public async Task<string> StartTopUpCheckoutAsync(Tenant tenant, TopUpPack pack, Uri portalBase, CancellationToken cancellationToken)
    {
        EnsureTestMode();
        await EnsureCustomerAsync(tenant, cancellationToken);
        var checkout = new TestCheckout(NewId("cs_test_"), tenant.Id, null, pack.Code, time.GetUtcNow());
        _checkouts[checkout.Id] = checkout;
        return new Uri(portalBase, $"billing/test-checkout/{checkout.Id}").ToString();
    }

    public TestCheckout? FindCheckout(string id, string tenantId) =>
        _checkouts.TryGetValue(id, out var c) && c.TenantId == tenantId && time.GetUtcNow() - c.CreatedAt <= CheckoutLifetime ? c : null;

    /// <summary>The owner paid on the test checkout page: Stripe's three events, in the order Stripe often sends them.</summary>
    public async Task<string> CompleteCheckoutAsync(string checkoutId, string tenantId, CancellationToken cancellationToken)
    {
        EnsureTestMode();
        var checkout = FindCheckout(checkoutId, tenantId) ?? throw new BillingException("This test checkout has expired or belongs to another account.");
        _checkouts.TryRemove(checkoutId, out _);
        var tenant = await TenantAsync(tenantId, cancellationToken);
        var customer = await EnsureCustomerAsync(tenant, cancellationToken);
        if (TopUpPacks.Find(checkout.PackCode) is { } pack)
        {
            var paid = new JsonObject
            {
                ["id"] = checkout.Id, ["object"] = "checkout.session", ["mode"] = "payment", ["status"] = "complete",
                ["payment_status"] = "paid", ["client_reference_id"] = tenant.Id, ["customer"] = customer,
                ["payment_intent"] = NewId("pi_test_"), ["livemode"] = false, ["amount_total"] = Cents(pack.PriceUsd), ["currency"] = "usd",
                ["metadata"] = new JsonObject { ["tenant_id"] = tenant.Id, ["kind"] = "top_up", ["pack"] = pack.Code },
            };
            await events.ReceiveAsync(Event("checkout.session.completed", paid), cancellationToken);
            return checkout.Id;
        }
        var plan = await PlanAsync(checkout.PlanCode!, cancellationToken);
        var subscriptionId = NewId("sub_test_");
        var metadata = Metadata(tenant.Id, plan.Code);
        var period = tenant.PeriodAt(time.GetUtcNow());
        var subscription = Subscription(subscriptionId, customer, plan, period, metadata, cancelAtPeriodEnd: false, status: "active");
        var invoice = Invoice(NewId("in_test_"), customer, subscriptionId, metadata, plan, "subscription_create", ProratedCents(plan, period), period, "paid");
        var session = new JsonObject
        {
            ["id"] = checkout.Id, ["object"] = "checkout.session", ["mode"] = "subscription", ["status"] = "complete",
            ["payment_status"] = "paid", ["client_reference_id"] = tenant.Id, ["customer"] = customer,
            ["subscription"] = subscriptionId, ["metadata"] = metadata.DeepClone(), ["livemode"] = false,
            ["amount_total"] = ProratedCents(plan, period), ["currency"] = "usd",
        };
        await events.ReceiveAsync(Event("checkout.session.completed", session), cancellationToken);
        await events.ReceiveAsync(Event("customer.subscription.created", subscription), cancellationToken);
        await events.ReceiveAsync(Event("invoice.paid", invoice), cancellationToken);
        return subscriptionId;
    }

    public async Task ChargeAutoTopUpAsync(Tenant tenant, TopUpPack pack, string key, CancellationToken cancellationToken)
    {
        EnsureTestMode();
        if (tenant.StripeCustomerId is null) throw new BillingException("There is no saved card yet: buy a pack once, and auto top-up uses that card.");
        var intent = new JsonObject
        {
            ["id"] = NewId("pi_test_"), ["object"] = "payment_intent", ["amount"] = Cents(pack.PriceUsd), ["amount_received"] = Cents(pack.PriceUsd),
            ["currency"] = "usd", ["customer"] = tenant.StripeCustomerId, ["status"] = "succeeded", ["livemode"] = false,
            ["metadata"] = new JsonObject { ["tenant_id"] = tenant.Id, ["kind"] = "auto_top_up", ["pack"] = pack.Code, ["key"] = key },
        };
        await events.ReceiveAsync(Event("payment_intent.succeeded", intent), cancellationToken);
    }

    /// <summary>Test mode has no meter to send to: the report is kept in <c>meter_reports</c> as sent, which is what the operator reads.</summary>
    public Task ReportMeterEventAsync(string eventName, string customerId, long quantity, string identifier, DateTimeOffset at,
        CancellationToken cancellationToken)
    {
        EnsureTestMode();
        return quantity > 0 ? Task.CompletedTask : throw new ArgumentOutOfRangeException(nameof(quantity));
    }

    public async Task<string> ChangeSubscriptionAsync(Tenant tenant, string planCode, bool upgrade, CancellationToken cancellationToken)
    {
        EnsureTestMode();
        var customer = await EnsureCustomerAsync(tenant, cancellationToken);
        var plan = await PlanAsync(planCode, cancellationToken);
        var period = tenant.PeriodAt(time.GetUtcNow());
        var metadata = Metadata(tenant.Id, plan.Code);
        var subscription = Subscription(tenant.StripeSubscriptionId!, customer, plan, period, metadata, cancelAtPeriodEnd: false, status: "active");
        var result = await events.ReceiveAsync(Event("customer.subscription.updated", subscription), cancellationToken);
        if (upgrade)
        {
            // Stripe invoices the prorated difference at once ("always_invoice").
            var current = await PlanAsync(tenant.PlanCode, cancellationToken);
            var cents = ProratedCents(plan, period) - ProratedCents(current, period);
            if (cents > 0)
                await events.ReceiveAsync(Event("invoice.paid",
                    Invoice(NewId("in_test_"), customer, tenant.StripeSubscriptionId!, metadata, plan, "subscription_update", cents, period, "paid")), cancellationToken);
        }
        return result.Outcome;
    }

    public async Task<string> CancelSubscriptionAsync(Tenant tenant, CancellationToken cancellationToken)
    {
        EnsureTestMode();
        var customer = await EnsureCustomerAsync(tenant, cancellationToken);
        var plan = await PlanAsync(tenant.PlanCode, cancellationToken);
        var subscription = Subscription(tenant.StripeSubscriptionId!, customer, plan, tenant.PeriodAt(time.GetUtcNow()),
            Metadata(tenant.Id, plan.Code), cancelAtPeriodEnd: false, status: "canceled");
        return (await events.ReceiveAsync(Event("customer.subscription.deleted", subscription), cancellationToken)).Outcome;
    }

    /// <summary>Test mode's stand-in for Stripe's dunning: the renewal invoice of the tenant's subscription fails.</summary>
    public async Task<string> FailRenewalPaymentAsync(Tenant tenant, CancellationToken cancellationToken)
    {
        EnsureTestMode();
        var customer = await EnsureCustomerAsync(tenant, cancellationToken);
        var plan = await PlanAsync(tenant.PlanCode, cancellationToken);
        var period = tenant.PeriodAt(time.GetUtcNow());
        var invoice = Invoice(NewId("in_test_"), customer, tenant.StripeSubscriptionId!, Metadata(tenant.Id, plan.Code), plan,
            "subscription_cycle", Cents(plan.MonthlyPriceUsd ?? 0m), period, "open");
        return (await events.ReceiveAsync(Event("invoice.payment_failed", invoice), cancellationToken)).Outcome;
    }

    /// <summary>Pays the invoice whose payment failed (as the owner would with a new card in Stripe's portal).</summary>
    public async Task<string> PayFailedInvoiceAsync(Tenant tenant, CancellationToken cancellationToken)
    {
        EnsureTestMode();
        if (tenant.PaymentFailedInvoiceId is null) throw new BillingException("No invoice is waiting for payment.");
        var failed = await InvoicesAsync(tenant, cancellationToken);
        var customer = await EnsureCustomerAsync(tenant, cancellationToken);
        var plan = await PlanAsync(tenant.PlanCode, cancellationToken);
        var period = tenant.PeriodAt(time.GetUtcNow());
        var amount = failed.FirstOrDefault(i => i.Id == tenant.PaymentFailedInvoiceId)?.Amount ?? plan.MonthlyPriceUsd ?? 0m;
        var invoice = Invoice(tenant.PaymentFailedInvoiceId, customer, tenant.StripeSubscriptionId ?? "", Metadata(tenant.Id, plan.Code), plan,
            "subscription_cycle", Cents(amount), period, "paid");
        return (await events.ReceiveAsync(Event("invoice.paid", invoice), cancellationToken)).Outcome;
    }

    /// <summary>
    /// Test mode's Stripe clock: each new period of a test subscription is paid by an <c>invoice.paid</c> whose ids
    /// are derived from the tenant and the period, so renewing twice makes one event and one grant.
    /// </summary>
    public async Task<int> RenewAsync(CancellationToken cancellationToken)
    {
        EnsureTestMode();
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var tenants = await db.Tenants.AsNoTracking().Where(t => t.StripeSubscriptionId != null && t.StripeSubscriptionId.StartsWith("sub_test_"))
            .ToListAsync(cancellationToken);
        var renewed = 0;
        foreach (var tenant in tenants)
        {
            var period = tenant.PeriodAt(time.GetUtcNow());
            if (period.Start <= tenant.Anchor) continue;
            var day = period.Start.ToString("yyyyMMdd", CultureInfo.InvariantCulture);
            var invoiceId = $"in_test_{Suffix(tenant.Id)}_{day}";
            if (await db.LedgerEntries.AnyAsync(e => e.TenantId == tenant.Id && e.IdempotencyKey == $"stripe:invoice:{invoiceId}", cancellationToken)) continue;
            var planCode = tenant.PendingPlanCode is { } p && tenant.PendingPlanFrom <= period.Start ? p : tenant.PlanCode;
            var plan = await PlanAsync(planCode, cancellationToken);
            var invoice = Invoice(invoiceId, tenant.StripeCustomerId ?? "", tenant.StripeSubscriptionId!, Metadata(tenant.Id, plan.Code), plan,
                "subscription_cycle", Cents(plan.MonthlyPriceUsd ?? 0m), period, "paid");
            var result = await events.ReceiveAsync(Event("invoice.paid", invoice, $"evt_test_{Suffix(tenant.Id)}_{day}_renewal"), cancellationToken);
            if (result.Status == StripeEventStatus.Processed) renewed++;
        }
        return renewed;
    }

    public Task<string> CustomerPortalUrlAsync(Tenant tenant, Uri portalBase, CancellationToken cancellationToken) =>
        Task.FromResult(new Uri(portalBase, "billing/test-portal").ToString());

    /// <summary>The invoices test mode made for the tenant, newest first, each in its latest state.</summary>
    /// <summary>Test mode's "Stripe" is the events its checkout made: the paid objects are in them.</summary>
    public async Task<IReadOnlyList<PaidObject>> PaidObjectsAsync(DateTimeOffset since, CancellationToken cancellationToken)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var payloads = await db.StripeEvents.AsNoTracking()
            .Where(e => e.CreatedAt >= since && (e.Type == "checkout.session.completed" || e.Type == "invoice.paid" || e.Type == "payment_intent.succeeded"))
            .OrderBy(e => e.CreatedAt).Select(e => e.Payload).ToListAsync(cancellationToken);
        var paid = new Dictionary<string, PaidObject>(StringComparer.Ordinal);
        foreach (var json in payloads)
        {
            var object_ = BillingEvents.Parse(json).Data.Object;
            var p = object_ switch
            {
                Stripe.Checkout.Session s when s.PaymentStatus is "paid" or "no_payment_required" => PaidObject.OfSession(s),
                Stripe.Invoice i => PaidObject.OfInvoice(i),
                Stripe.PaymentIntent pi when pi.Metadata?.GetValueOrDefault("kind") == "auto_top_up" => PaidObject.OfPaymentIntent(pi),
                _ => null,
            };
            if (p is not null) paid[p.Id] = p;
        }
        return paid.Values.ToList();
    }

    public async Task<IReadOnlyList<InvoiceSummary>> InvoicesAsync(Tenant tenant, CancellationToken cancellationToken)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var payloads = await db.StripeEvents.AsNoTracking()
            .Where(e => e.TenantId == tenant.Id && (e.Type == "invoice.paid" || e.Type == "invoice.payment_failed"))
            .OrderBy(e => e.CreatedAt).ThenBy(e => e.ReceivedAt).Select(e => e.Payload).ToListAsync(cancellationToken);
        var latest = new Dictionary<string, InvoiceSummary>(StringComparer.Ordinal);
        foreach (var json in payloads)
            if (BillingEvents.Parse(json).Data.Object is Stripe.Invoice invoice
                && !(latest.TryGetValue(invoice.Id, out var seen) && seen.Status == "paid")) // paid is final, whatever the order of events
                latest[invoice.Id] = StripeGateway.Summarize(invoice);
        return latest.Values.OrderByDescending(i => i.Date).ThenByDescending(i => i.Id, StringComparer.Ordinal).ToList();
    }

    private async Task<string> EnsureCustomerAsync(Tenant tenant, CancellationToken ct) =>
        tenant.StripeCustomerId ?? await CustomerLink.StoreAsync(dbFactory, tenant.Id, NewId("cus_test_"), ct);

    private async Task<Tenant> TenantAsync(string tenantId, CancellationToken ct)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        return await db.Tenants.AsNoTracking().FirstAsync(t => t.Id == tenantId, ct);
    }

    private async Task<Plan> PlanAsync(string code, CancellationToken ct)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        return await db.Plans.AsNoTracking().FirstOrDefaultAsync(p => p.Code == code, ct)
            ?? throw new BillingException($"unknown plan '{code}'");
    }

    private static JsonObject Metadata(string tenantId, string plan) => new() { ["tenant_id"] = tenantId, ["kind"] = "plan", ["plan"] = plan };

    private string Event(string type, JsonObject data, string? id = null) => new JsonObject
    {
        ["id"] = id ?? NewId("evt_test_"),
        ["object"] = "event",
        ["api_version"] = StripeConfiguration.ApiVersion,
        ["created"] = time.GetUtcNow().ToUnixTimeSeconds(),
        ["livemode"] = false,
        ["pending_webhooks"] = 0,
        ["type"] = type,
        ["data"] = new JsonObject { ["object"] = data },
    }.ToJsonString();

    private JsonObject Subscription(string id, string customer, Plan plan, BillingPeriod period, JsonObject metadata, bool cancelAtPeriodEnd, string status) => new()
    {
        ["id"] = id, ["object"] = "subscription", ["customer"] = customer, ["status"] = status,
        ["cancel_at_period_end"] = cancelAtPeriodEnd, ["livemode"] = false, ["metadata"] = metadata.DeepClone(),
        ["created"] = time.GetUtcNow().ToUnixTimeSeconds(),
        ["items"] = new JsonObject
        {
            ["object"] = "list",
            ["data"] = new JsonArray(new JsonObject
            {
                ["id"] = "si_" + id, ["object"] = "subscription_item", ["quantity"] = 1, ["subscription"] = id,
                ["current_period_start"] = period.StartInstant.ToUnixTimeSeconds(),
                ["current_period_end"] = period.EndInstant.ToUnixTimeSeconds(),
                ["price"] = new JsonObject
                {
                    ["id"] = prices.ForPlan(plan.Code), ["object"] = "price", ["currency"] = "usd",
                    ["unit_amount"] = Cents(plan.MonthlyPriceUsd ?? 0m), ["recurring"] = new JsonObject { ["interval"] = "month", ["interval_count"] = 1 },
                },
            }),
        },
    };

    private JsonObject Invoice(string id, string customer, string subscriptionId, JsonObject metadata, Plan plan, string reason, long cents,
        BillingPeriod period, string status) => new()
    {
        ["id"] = id, ["object"] = "invoice", ["customer"] = customer, ["status"] = status, ["billing_reason"] = reason,
        ["number"] = id.ToUpperInvariant().Replace("IN_TEST_", "TEST-", StringComparison.Ordinal), ["currency"] = "usd",
        ["amount_due"] = cents, ["amount_paid"] = status == "paid" ? cents : 0, ["total"] = cents,
        ["created"] = time.GetUtcNow().ToUnixTimeSeconds(), ["livemode"] = false, ["hosted_invoice_url"] = null,
        ["parent"] = new JsonObject
        {
            ["type"] = "subscription_details",
            ["subscription_details"] = new JsonObject { ["subscription"] = subscriptionId, ["metadata"] = metadata.DeepClone() },
        },
        ["lines"] = new JsonObject
        {
            ["object"] = "list",
            ["data"] = new JsonArray(new JsonObject
            {
                ["id"] = "il_" + id, ["object"] = "line_item", ["amount"] = cents, ["currency"] = "usd",
                ["description"] = $"{plan.Name} plan", ["quantity"] = 1,
                ["period"] = new JsonObject { ["start"] = period.StartInstant.ToUnixTimeSeconds(), ["end"] = period.EndInstant.ToUnixTimeSeconds() },
                ["pricing"] = new JsonObject
                {
                    ["type"] = "price_details",
                    ["price_details"] = new JsonObject { ["price"] = prices.ForPlan(plan.Code), ["product"] = "prod_test_" + plan.Code },
                },
            }),
        },
    };

    /// <summary>What the test checkout asks for today: the plan's price for the rest of the tenant's period.</summary>
    public decimal DueToday(Plan plan, Tenant tenant) => ProratedCents(plan, tenant.PeriodAt(time.GetUtcNow())) / 100m;

    /// <summary>What Stripe would charge for the rest of the period (to the billing-cycle anchor), to the cent.</summary>
    private long ProratedCents(Plan plan, BillingPeriod period)
    {
        var left = Math.Clamp((decimal)(period.EndInstant - time.GetUtcNow()).Ticks / (period.EndInstant - period.StartInstant).Ticks, 0m, 1m);
        return Cents((plan.MonthlyPriceUsd ?? 0m) * left);
    }

    private static long Cents(decimal usd) => (long)Math.Round(usd * 100m, MidpointRounding.AwayFromZero);

    private static string NewId(string prefix) => prefix + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));

    private static string Suffix(string tenantId) => Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(tenantId)))[..16];
}
