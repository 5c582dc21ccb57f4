using System.Net;
using System.Text;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Billing;
using Rpt.Portal.Components;
using Rpt.Portal.Data;
using Rpt.Portal.Ledger;
using Rpt.Portal.Tenants;
using Rpt.Portal.Plans;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Tests.Billing;

/// <summary>
/// Stripe end to end over real HTTP: Stripe.net talks to <see cref="StripeDouble"/> on loopback, and
/// signed events arrive at /stripe/webhook as Stripe sends them. Each test says which ledger entries an
/// event must produce (source, key, amount) and that a replay, a duplicate or a late event produces none.
/// </summary>
[Trait("Kind", "Http")]
public sealed class StripeWebhookTests : IAsyncLifetime
{
    private StripeDouble _stripe = default!;
    private ApiFactory _app = default!;
    private HttpClient _client = default!;
    private static readonly Uri PortalBase = new("https://portal.example/");

    public async Task InitializeAsync()
    {
        _stripe = await StripeDouble.StartAsync();
        _app = new ApiFactory(_stripe.Settings());
        // The server's timers run on the fake clock, so a test never jumps a month: acme's period ends a minute after
        // the server starts (periods end at UTC midnight of the anchor day), and a test steps into the next one.
        var midnight = new DateTimeOffset(_app.Time.GetUtcNow().UtcDateTime.Date.AddDays(1), TimeSpan.Zero);
        _app.Time.SetUtcNow(midnight.AddMinutes(-1));
        _client = _app.CreateClient();
        Assert.Null((await _app.Get<CreateTenant>().ExecuteAsync("Acme Analytics", "free", "acme", midnight.AddMonths(-1))).Error);
    }

    public async Task DisposeAsync()
    {
        await _app.DisposeAsync();
        await _stripe.DisposeAsync();
    }

    private DateTimeOffset Now => _app.Time.GetUtcNow();
    private BillingPeriod Period => Tenant().PeriodAt(Now);

    private Tenant Tenant()
    {
        using var db = _app.Get<IDbContextFactory<ApplicationDbContext>>().CreateDbContext();
        return db.Tenants.AsNoTracking().First(t => t.Id == "acme");
    }

    private List<(EntrySource Source, string Key, long Credits)> Grants()
    {
        using var db = _app.Get<IDbContextFactory<ApplicationDbContext>>().CreateDbContext();
        return db.LedgerEntries.AsNoTracking().Where(e => e.TenantId == "acme" && e.Kind == EntryKind.Allocation).OrderBy(e => e.Seq)
            .AsEnumerable().Select(e => (e.Source, e.IdempotencyKey, Credit.FloorCredits(e.AmountMicroCredits))).ToList();
    }

    private int StoredEvents()
    {
        using var db = _app.Get<IDbContextFactory<ApplicationDbContext>>().CreateDbContext();
        return db.StripeEvents.Count();
    }

    private Task<HttpResponseMessage> DeliverAsync(string json, DateTimeOffset? signedAt = null, string secret = StripeDouble.WebhookSecret,
        string? signature = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/stripe/webhook") { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        request.Headers.TryAddWithoutValidation("Stripe-Signature", signature ?? StripeWire.Sign(json, secret, signedAt ?? Now));
        return _client.SendAsync(request);
    }

    private async Task DeliverOkAsync(string json)
    {
        var response = await DeliverAsync(json);
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
    }

    private string CheckoutCompleted(string evt, string session, string sub, string plan = "professional") =>
        StripeWire.Event(evt, "checkout.session.completed", StripeWire.CheckoutSession(session, "acme", "cus_acme", sub, plan), Now);

    private string SubscriptionEvent(string evt, string type, string sub, string plan, DateTimeOffset? created = null, string status = "active") =>
        StripeWire.Event(evt, type, StripeWire.Subscription(sub, "acme", "cus_acme", "price_" + plan, plan, Period.StartInstant, Period.EndInstant, status), created ?? Now);

    private string InvoicePaid(string evt, string invoice, string sub, string plan, string reason, BillingPeriod period, string type = "invoice.paid") =>
        StripeWire.Event(evt, type, StripeWire.Invoice(invoice, "acme", "cus_acme", sub, "price_" + plan, plan, reason, 9900,
            period.StartInstant, period.EndInstant, type == "invoice.paid" ? "paid" : "open"), Now);

    /// <summary>Puts acme on Professional through a completed checkout, and the subscription into the double.</summary>
    private async Task SubscribeAsync(string plan = "professional")
    {
        await DeliverOkAsync(CheckoutCompleted("evt_checkout", "cs_test_1", "sub_1", plan));
        _stripe.Subscriptions["sub_1"] = StripeWire.Subscription("sub_1", "acme", "cus_acme", "price_" + plan, plan, Period.StartInstant, Period.EndInstant);
    }

    [Fact]
    public async Task Upgrade_FreeToProfessional_OpensACheckoutAndTheCompletedSessionGrantsTheDifferenceOnce()
    {
        var step = await _app.Get<StartPlanChange>().ExecuteAsync("acme", PortalRoles.Owner, "professional", PortalBase);

        Assert.True(step.Succeeded, step.Message);
        var customer = Assert.Single(_stripe.RequestsTo("POST", "/v1/customers"));
        Assert.Equal("acme", customer.Form["metadata[tenant_id]"]);
        Assert.Equal("customer:acme", customer.IdempotencyKey);
        var checkout = Assert.Single(_stripe.RequestsTo("POST", "/v1/checkout/sessions"));
        Assert.Equal("subscription", checkout.Form["mode"]);
        Assert.Equal("acme", checkout.Form["client_reference_id"]);
        Assert.Equal("price_professional", checkout.Form["line_items[0][price]"]);
        Assert.Equal(("acme", "plan", "professional"), (checkout.Form["metadata[tenant_id]"], checkout.Form["metadata[kind]"], checkout.Form["metadata[plan]"]));
        Assert.Equal(("acme", "plan"), (checkout.Form["subscription_data[metadata][tenant_id]"], checkout.Form["subscription_data[metadata][kind]"]));
        Assert.Equal(Period.EndInstant.ToUnixTimeSeconds().ToString(), checkout.Form["subscription_data[billing_cycle_anchor]"]);
        Assert.Equal("https://portal.example/billing/success?session_id={CHECKOUT_SESSION_ID}", checkout.Form["success_url"]);
        Assert.StartsWith("https://checkout.stripe.com/c/pay/cs_test_", step.RedirectUrl);
        Assert.Equal("free", Tenant().PlanCode); // nothing changes before Stripe says the session is paid

        var customerId = Tenant().StripeCustomerId!;
        Assert.StartsWith("cus_", customerId);
        var session = StripeWire.CheckoutSession("cs_test_1", "acme", customerId, "sub_1", "professional");
        await DeliverOkAsync(StripeWire.Event("evt_1", "checkout.session.completed", session, Now));
        await DeliverOkAsync(SubscriptionEvent("evt_2", "customer.subscription.created", "sub_1", "professional"));
        await DeliverOkAsync(InvoicePaid("evt_3", "in_1", "sub_1", "professional", "subscription_create", Period));

        Assert.Equal(("professional", "sub_1"), (Tenant().PlanCode, Tenant().StripeSubscriptionId));
        Assert.Equal([(EntrySource.Signup, "signup:acme", 1_000L), (EntrySource.PlanChange, "stripe:checkout:cs_test_1", 24_000L)], Grants());
        Assert.Equal(25_000, _app.Get<GetBalance>().Execute("acme")!.Allocated);
    }

    [Fact]
    public async Task SameEvent_Replayed5Times_AndDeliveredConcurrentlyFrom8Threads_GrantsOnce()
    {
        var json = CheckoutCompleted("evt_dup", "cs_test_dup", "sub_dup");
        for (var i = 0; i < 5; i++) await DeliverOkAsync(json);
        var concurrent = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => DeliverAsync(json))));

        Assert.All(concurrent, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal(1, StoredEvents());
        Assert.Single(Grants(), g => g.Key == "stripe:checkout:cs_test_dup");
        Assert.Equal(25_000, _app.Get<GetBalance>().Execute("acme")!.Allocated);
    }

    [Fact]
    public async Task DifferentEventsOfOneCheckout_DeliveredConcurrently_GrantOnceBetweenThem()
    {
        var events = new[]
        {
            CheckoutCompleted("evt_a", "cs_test_a", "sub_a"),
            SubscriptionEvent("evt_b", "customer.subscription.created", "sub_a", "professional"),
            InvoicePaid("evt_c", "in_a", "sub_a", "professional", "subscription_create", Period),
        };
        var responses = await Task.WhenAll(events.Concat(events).Select(json => Task.Run(() => DeliverAsync(json))));

        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal(24_000, Grants().Where(g => g.Source == EntrySource.PlanChange).Sum(g => g.Credits));
        Assert.Single(Grants(), g => g.Source == EntrySource.PlanChange);
    }

    [Fact]
    public async Task OutOfOrder_InvoicePaidBeforeSubscriptionCreated_GrantsUnderTheInvoice_AndTheLaterEventsGrantNothing()
    {
        await DeliverOkAsync(InvoicePaid("evt_1", "in_first", "sub_1", "professional", "subscription_create", Period));
        Assert.Equal(("professional", "sub_1"), (Tenant().PlanCode, Tenant().StripeSubscriptionId));
        await DeliverOkAsync(SubscriptionEvent("evt_2", "customer.subscription.created", "sub_1", "professional"));
        await DeliverOkAsync(CheckoutCompleted("evt_3", "cs_test_1", "sub_1"));

        Assert.Equal([(EntrySource.Signup, "signup:acme", 1_000L), (EntrySource.PlanChange, "stripe:invoice:in_first", 24_000L)], Grants());
    }

    [Fact]
    public async Task UpgradeOfAnExistingSubscription_UpdatesTheStripePriceWithProration_AndGrantsTheDifferenceAtOnce()
    {
        await SubscribeAsync("professional");
        var step = await _app.Get<StartPlanChange>().ExecuteAsync("acme", PortalRoles.Owner, "business", PortalBase);

        Assert.True(step.Succeeded, step.Message);
        Assert.Equal("The account is on Business now.", step.Message);
        var update = Assert.Single(_stripe.RequestsTo("POST", "/v1/subscriptions/sub_1"));
        Assert.Equal(("si_sub_1", "price_business", "always_invoice"), (update.Form["items[0][id]"], update.Form["items[0][price]"], update.Form["proration_behavior"]));
        var key = $"stripe:subscription:sub_1:{Period.Start:yyyy-MM-dd}:business";
        Assert.Equal((EntrySource.PlanChange, key, 75_000L), Grants()[^1]);

        // Stripe's own webhook for the same change then arrives: nothing more.
        await DeliverOkAsync(SubscriptionEvent("evt_upd", "customer.subscription.updated", "sub_1", "business", Now.AddSeconds(1)));
        Assert.Equal(100_000, _app.Get<GetBalance>().Execute("acme")!.Allocated);
        Assert.Equal(3, Grants().Count);
    }

    [Fact]
    public async Task Downgrade_KeepsThePlanForThePeriod_NoProration_ThenTheRenewalInvoiceMovesItAndGrantsTheNewPlan()
    {
        await SubscribeAsync("business");
        var step = await _app.Get<StartPlanChange>().ExecuteAsync("acme", PortalRoles.Owner, "starter", PortalBase);

        Assert.True(step.Succeeded, step.Message);
        var update = Assert.Single(_stripe.RequestsTo("POST", "/v1/subscriptions/sub_1"));
        Assert.Equal(("price_starter", "none"), (update.Form["items[0][price]"], update.Form["proration_behavior"]));
        var next = Period.EndExclusive;
        Assert.Equal(("business", "starter", next), (Tenant().PlanCode, Tenant().PendingPlanCode, Tenant().PendingPlanFrom!.Value));
        Assert.Equal(100_000, _app.Get<GetBalance>().Execute("acme")!.Allocated); // nothing taken back

        var newPeriod = Period with { Start = next, EndExclusive = next.AddMonths(1) };
        _app.Time.SetUtcNow(newPeriod.StartInstant.AddMinutes(5));
        await _app.Get<RenewPeriods>().ExecuteAsync(); // a subscribed tenant is renewed by its invoice, not by the scheduler
        Assert.DoesNotContain(Grants(), g => g.Source == EntrySource.Renewal && g.Key.StartsWith("renewal:"));
        await DeliverOkAsync(InvoicePaid("evt_cycle", "in_cycle", "sub_1", "starter", "subscription_cycle", newPeriod));

        Assert.Equal(("starter", null), (Tenant().PlanCode, Tenant().PendingPlanCode));
        Assert.Equal((EntrySource.Renewal, "stripe:invoice:in_cycle", 5_000L), Grants()[^1]);
        Assert.Equal(5_000, _app.Get<GetBalance>().Execute("acme")!.Allocated);
    }

    [Fact]
    public async Task Renewal_InvoicePaidForTheNewPeriod_GrantsThePlanOnceUnderTheInvoice()
    {
        await SubscribeAsync("professional");
        var next = Period with { Start = Period.EndExclusive, EndExclusive = Period.EndExclusive.AddMonths(1) };
        _app.Time.SetUtcNow(next.StartInstant.AddSeconds(30));
        var json = InvoicePaid("evt_cycle", "in_cycle", "sub_1", "professional", "subscription_cycle", next);
        for (var i = 0; i < 5; i++) await DeliverOkAsync(json);
        await DeliverOkAsync(InvoicePaid("evt_other_delivery", "in_cycle", "sub_1", "professional", "subscription_cycle", next));

        Assert.Equal((EntrySource.Renewal, "stripe:invoice:in_cycle", 25_000L), Grants()[^1]);
        Assert.Single(Grants(), g => g.Source == EntrySource.Renewal);
        Assert.Equal(25_000, _app.Get<GetBalance>().Execute("acme")!.Allocated);
    }

    [Fact]
    public async Task Cancellation_KeepsThePaidPeriod_ThenFreeWithItsCredits()
    {
        await SubscribeAsync("professional");
        var step = await _app.Get<StartPlanChange>().ExecuteAsync("acme", PortalRoles.Owner, "free", PortalBase);

        Assert.True(step.Succeeded, step.Message);
        Assert.Single(_stripe.RequestsTo("DELETE", "/v1/subscriptions/sub_1"));
        var next = Period.EndExclusive;
        Assert.Equal(("professional", null, "free", next), (Tenant().PlanCode, Tenant().StripeSubscriptionId, Tenant().PendingPlanCode, Tenant().PendingPlanFrom!.Value));
        // Stripe's webhook for the cancellation changes nothing more.
        await DeliverOkAsync(SubscriptionEvent("evt_del", "customer.subscription.deleted", "sub_1", "professional", Now.AddSeconds(1), "canceled"));
        Assert.Equal("professional", Tenant().PlanCode);

        _app.Time.SetUtcNow(new DateTimeOffset(next.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero).AddMinutes(1));
        await _app.Get<RenewPeriods>().ExecuteAsync();
        Assert.Equal(("free", null), (Tenant().PlanCode, Tenant().PendingPlanCode));
        Assert.Equal((EntrySource.Renewal, $"renewal:acme:{next:yyyy-MM-dd}", 1_000L), Grants()[^1]);
    }

    [Fact]
    public async Task SubscriptionDeletedAtPeriodEnd_MovesToFreeAtOnce_WithFreeCreditsForTheUnpaidPeriod()
    {
        await SubscribeAsync("professional");
        var paid = Period;
        _app.Time.SetUtcNow(paid.EndInstant.AddSeconds(20));
        await DeliverOkAsync(StripeWire.Event("evt_end", "customer.subscription.deleted",
            StripeWire.Subscription("sub_1", "acme", "cus_acme", "price_professional", "professional", paid.StartInstant, paid.EndInstant, "canceled"), Now));

        Assert.Equal(("free", null), (Tenant().PlanCode, Tenant().StripeSubscriptionId));
        Assert.Equal((EntrySource.Renewal, $"renewal:acme:{paid.EndExclusive:yyyy-MM-dd}", 1_000L), Grants()[^1]);
    }

    [Fact]
    public async Task PaymentFailure_IsRecordedForOwners_UntilAnInvoiceIsPaid_AndGrantsNothing()
    {
        await SubscribeAsync("professional");
        var before = Grants().Count;
        await DeliverOkAsync(InvoicePaid("evt_fail", "in_fail", "sub_1", "professional", "subscription_cycle", Period, "invoice.payment_failed"));

        Assert.Equal(("in_fail", "https://invoice.stripe.com/i/in_fail"), (Tenant().PaymentFailedInvoiceId, Tenant().PaymentFailedInvoiceUrl));
        Assert.Equal(before, Grants().Count);

        await DeliverOkAsync(InvoicePaid("evt_paid", "in_fail", "sub_1", "professional", "subscription_cycle", Period));
        Assert.Null(Tenant().PaymentFailedInvoiceId);
    }

    [Fact]
    public async Task StaleSubscriptionUpdate_ArrivingAfterANewerOne_ChangesNothing()
    {
        await SubscribeAsync("professional");
        await DeliverOkAsync(SubscriptionEvent("evt_new", "customer.subscription.updated", "sub_1", "business", Now.AddMinutes(2)));
        await DeliverOkAsync(SubscriptionEvent("evt_old", "customer.subscription.updated", "sub_1", "starter", Now.AddMinutes(1)));

        Assert.Equal(("business", null), (Tenant().PlanCode, Tenant().PendingPlanCode));
    }

    [Theory]
    [InlineData("bad")]
    [InlineData("missing")]
    [InlineData("stale")]
    [InlineData("other secret")]
    public async Task BadMissingOrStaleSignature_Answers400_AndChangesNothing(string kind)
    {
        var json = CheckoutCompleted("evt_forged", "cs_test_forged", "sub_forged");
        var response = kind switch
        {
            "bad" => await DeliverAsync(json, signature: $"t={Now.ToUnixTimeSeconds()},v1={new string('0', 64)}"),
            "missing" => await _client.PostAsync("/stripe/webhook", new StringContent(json, Encoding.UTF8, "application/json")),
            "stale" => await DeliverAsync(json, signedAt: Now.AddSeconds(-301)),
            _ => await DeliverAsync(json, secret: "whsec_someone_else"),
        };

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(0, StoredEvents());
        Assert.Equal(("free", null), (Tenant().PlanCode, Tenant().StripeSubscriptionId));
        Assert.Single(Grants());
    }

    [Fact]
    public async Task SignatureJustInsideTheTolerance_IsAccepted()
    {
        var response = await DeliverAsync(CheckoutCompleted("evt_299", "cs_test_299", "sub_299"), signedAt: Now.AddSeconds(-299));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("professional", Tenant().PlanCode);
    }

    [Fact]
    public async Task UnknownEventType_IsStoredAndAnswered200()
    {
        var json = StripeWire.Event("evt_unknown", "customer.tax_id.created", new JsonObject { ["id"] = "txi_1", ["object"] = "tax_id" }, Now);
        var response = await DeliverAsync(json);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, StoredEvents());
    }

    [Fact]
    public async Task HostileBodies_TooLargeOrNotAnEvent_AreRefusedWithoutA5xx()
    {
        var huge = "{\"pad\":\"" + new string('x', BillingEvents.MaxPayloadBytes) + "\"}";
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, (await DeliverAsync(huge)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await DeliverAsync("[1,2,3]")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await DeliverAsync("{\"object\":\"event\"}")).StatusCode);
        Assert.Equal(0, StoredEvents());
    }

    [Fact]
    public async Task MembersAndAdmins_CannotChangeThePlan_AndStripeIsNotCalled()
    {
        foreach (var role in new[] { PortalRoles.Member, PortalRoles.Admin })
        {
            var step = await _app.Get<StartPlanChange>().ExecuteAsync("acme", role, "professional", PortalBase);
            Assert.False(step.Succeeded);
            Assert.Equal("Only an owner of the account can change the plan.", step.Message);
        }
        Assert.Empty(_stripe.Requests);
    }

    [Fact]
    public async Task InvoicesAndCustomerPortal_ComeFromStripe()
    {
        await SubscribeAsync("professional");
        var customerId = "cus_acme";
        using (var db = _app.Get<IDbContextFactory<ApplicationDbContext>>().CreateDbContext())
        {
            db.Tenants.First(t => t.Id == "acme").LinkStripeCustomer(customerId);
            db.SaveChanges();
        }
        _stripe.InvoicesByCustomer[customerId] =
            [StripeWire.Invoice("in_1", "acme", customerId, "sub_1", "price_professional", "professional", "subscription_create", 6_930, Period.StartInstant, Period.EndInstant)];

        var gateway = _app.Get<IBillingGateway>();
        var invoice = Assert.Single(await gateway.InvoicesAsync(Tenant(), default));
        Assert.Equal(("INV-in_1", 69.30m, "paid", "https://invoice.stripe.com/i/in_1"), (invoice.Number, invoice.Amount, invoice.Status, invoice.HostedUrl));
        Assert.Equal(customerId, Assert.Single(_stripe.RequestsTo("GET", "/v1/invoices")).Form["customer"]);

        var portal = await gateway.CustomerPortalUrlAsync(Tenant(), PortalBase, default);
        Assert.StartsWith("https://billing.stripe.com/p/session/", portal);
        Assert.Equal("https://portal.example/billing", Assert.Single(_stripe.RequestsTo("POST", "/v1/billing_portal/sessions")).Form["return_url"]);
    }

    [Fact]
    public async Task WithAStripeKey_TestModeActionsRefuse_SoOnlyStripeSaysWhatWasPaid()
    {
        await SubscribeAsync("professional");
        await DeliverOkAsync(InvoicePaid("evt_fail", "in_fail", "sub_1", "professional", "subscription_cycle", Period, "invoice.payment_failed"));
        var testMode = _app.Get<TestModeGateway>();

        await Assert.ThrowsAsync<BillingException>(() => testMode.PayFailedInvoiceAsync(Tenant(), default));
        await Assert.ThrowsAsync<BillingException>(() => testMode.StartCheckoutAsync(Tenant(), "business", PortalBase, default));
        await Assert.ThrowsAsync<BillingException>(() => testMode.RenewAsync(default));
        Assert.Equal("in_fail", Tenant().PaymentFailedInvoiceId);
        Assert.Equal("professional", Tenant().PlanCode);
    }

    [Fact]
    public async Task TopUpPack_CheckoutInPaymentMode_GrantsThePackOncePerSession_WithItsExpiry()
    {
        var step = await _app.Get<StartTopUp>().ExecuteAsync("acme", PortalRoles.Owner, "topup_5k", PortalBase);

        Assert.True(step.Succeeded, step.Message);
        var checkout = Assert.Single(_stripe.RequestsTo("POST", "/v1/checkout/sessions"));
        Assert.Equal(("payment", "price_topup_5k", "off_session"), (checkout.Form["mode"], checkout.Form["line_items[0][price]"], checkout.Form["payment_intent_data[setup_future_usage]"]));
        Assert.Equal(("acme", "top_up", "topup_5k"), (checkout.Form["metadata[tenant_id]"], checkout.Form["metadata[kind]"], checkout.Form["metadata[pack]"]));

        var session = new JsonObject
        {
            ["id"] = "cs_test_pack", ["object"] = "checkout.session", ["mode"] = "payment", ["status"] = "complete", ["payment_status"] = "paid",
            ["client_reference_id"] = "acme", ["customer"] = Tenant().StripeCustomerId, ["payment_intent"] = "pi_1",
            ["metadata"] = new JsonObject { ["tenant_id"] = "acme", ["kind"] = "top_up", ["pack"] = "topup_5k" },
        };
        var json = StripeWire.Event("evt_pack", "checkout.session.completed", session, Now);
        await DeliverOkAsync(json);
        await DeliverOkAsync(json);
        await DeliverOkAsync(StripeWire.Event("evt_pack_again", "checkout.session.completed", session.DeepClone().AsObject(), Now));

        Assert.Equal((EntrySource.TopUp, "stripe:checkout:cs_test_pack", 5_000L), Grants()[^1]);
        Assert.Equal(2, Grants().Count);
        var grant = _app.Get<CreditGrants>().Current("acme").Grants.Single(g => g.Source == EntrySource.TopUp);
        Assert.True(grant.ExpiresAt >= Now.AddMonths(12), $"a pack is valid 12 months; it expires {grant.ExpiresAt}");
        Assert.Equal(6_000, _app.Get<GetBalance>().Execute("acme")!.Allocated);
        Assert.Equal(("free", null), (Tenant().PlanCode, Tenant().StripeSubscriptionId)); // a pack changes no plan
    }

    private async Task<string> CrossThresholdAsync()
    {
        using (var db = _app.Get<IDbContextFactory<ApplicationDbContext>>().CreateDbContext())
        {
            db.Tenants.First(t => t.Id == "acme").LinkStripeCustomer("cus_acme");
            db.SaveChanges();
        }
        _stripe.SavedCards["cus_acme"] = "pm_card_visa";
        Assert.True((await _app.Get<AutoTopUps>().ConfigureAsync("acme", PortalRoles.Owner, true, 500, "topup_5k", 3)).Succeeded);
        var key = _app.ClientWithKey(await _app.Get<Rpt.Portal.Api.ApiKeyService>().CreateAsync("acme", "test", Rpt.Portal.Api.ApiScopes.Read | Rpt.Portal.Api.ApiScopes.Ingest));
        var events = Enumerable.Range(0, 20).Select(i => new { id = $"burn{i}", occurred_at = Now, model = "gpt-4o", input_tokens = 100_000, output_tokens = 0 });
        (await key.PostAsJsonAsync("/v1/usage/events", new { events })).EnsureSuccessStatusCode(); // 600 of Free's 1,000 credits
        await _app.FlushAsync();
        return (await _app.Get<AutoTopUps>().EvaluateAsync("acme")) ?? (await _app.Get<AutoTopUps>().ViewAsync("acme")).Attempts.Single().Key;
    }

    [Fact]
    public async Task AutoTopUp_PaysOffSessionOnTheSavedCard_AndGrantsOnlyWhenThePaymentSucceeded_Once()
    {
        var key = await CrossThresholdAsync();
        Assert.Equal($"auto_top_up:acme:{Period.Start:yyyy-MM-dd}:1", key);
        var charge = Assert.Single(_stripe.RequestsTo("POST", "/v1/payment_intents"));
        Assert.Equal(("6000", "usd", "cus_acme", "pm_card_visa", "true", "true"),
            (charge.Form["amount"], charge.Form["currency"], charge.Form["customer"], charge.Form["payment_method"], charge.Form["off_session"], charge.Form["confirm"]));
        Assert.Equal((key, key), (charge.IdempotencyKey, charge.Form["metadata[key]"]));
        Assert.DoesNotContain(Grants(), g => g.Key == key); // nothing before Stripe says the payment succeeded

        var intent = new JsonObject
        {
            ["id"] = "pi_auto", ["object"] = "payment_intent", ["amount"] = 6000, ["currency"] = "usd", ["customer"] = "cus_acme", ["status"] = "succeeded",
            ["metadata"] = new JsonObject { ["tenant_id"] = "acme", ["kind"] = "auto_top_up", ["pack"] = "topup_5k", ["key"] = key },
        };
        await DeliverOkAsync(StripeWire.Event("evt_pi", "payment_intent.succeeded", intent, Now));
        await DeliverOkAsync(StripeWire.Event("evt_pi_again", "payment_intent.succeeded", intent.DeepClone().AsObject(), Now));
        Assert.Equal((EntrySource.TopUp, key, 5_000L), Grants()[^1]);
        Assert.Single(Grants(), g => g.Key == key);
        Assert.Equal(AutoTopUpStatus.Succeeded, (await _app.Get<AutoTopUps>().ViewAsync("acme")).Attempts.Single().Status);

        // Still above the threshold: nothing more is bought however often the rule is evaluated.
        for (var i = 0; i < 5; i++) Assert.Null(await _app.Get<AutoTopUps>().EvaluateAsync("acme"));
        Assert.Single(_stripe.RequestsTo("POST", "/v1/payment_intents"));
    }

    [Fact]
    public async Task AutoTopUp_Declined_BuysNothing_IsShownToTheOwner_AndIsNotRetriedInALoop()
    {
        _stripe.DeclineCards = true;
        var key = await CrossThresholdAsync();

        var view = await _app.Get<AutoTopUps>().ViewAsync("acme");
        Assert.Equal(key, view.LastFailure?.Key);
        Assert.Equal("Your card has insufficient funds.", view.LastFailure!.Error);
        Assert.DoesNotContain(Grants(), g => g.Source == EntrySource.TopUp);
        for (var i = 0; i < 5; i++) Assert.Null(await _app.Get<AutoTopUps>().EvaluateAsync("acme"));
        Assert.Single(_stripe.RequestsTo("POST", "/v1/payment_intents"));
    }

    [Fact]
    public async Task Overage_IsReportedToStripesMeterAsWholeCreditDeltas_RetriedOnFailure_CountedOnce_NeverNegative()
    {
        await SubscribeAsync("professional"); // 25,000 credits, overage at $0.012
        var client = _app.ClientWithKey(await _app.Get<Rpt.Portal.Api.ApiKeyService>().CreateAsync("acme", "test", Rpt.Portal.Api.ApiScopes.Ingest));
        async Task SpendAsync(string prefix, int calls) // 30 credits a call
        {
            var events = Enumerable.Range(0, calls).Select(i => new { id = $"{prefix}{i}", occurred_at = Now, model = "gpt-4o", input_tokens = 100_000, output_tokens = 0 });
            (await client.PostAsJsonAsync("/v1/usage/events", new { events })).EnsureSuccessStatusCode();
            await _app.FlushAsync();
        }
        await SpendAsync("a", 840); // 25,200 credits: 200 past the allocation
        var period = Period.Start; // acme's period ends a minute after the start of the test: the report then belongs to the period that ended
        var report = _app.Get<ReportOverage>();
        _stripe.FailMeterEvents(100);
        Assert.Equal((1, 0), await report.ExecuteAsync());
        var pending = Assert.Single(await report.LogAsync("acme"));
        Assert.Equal((MeterReportStatus.Pending, 200L, 1), (pending.Status, pending.Quantity, pending.Attempts));
        Assert.Equal(0, (await report.ExecuteAsync()).Sent); // backing off: not due yet

        _stripe.FailMeterEvents(0);
        _app.Time.Advance(TimeSpan.FromMinutes(1)); // the server's own reporter may run on this tick too: the outcome is the same
        await report.ExecuteAsync();
        var sent = Assert.Single(await report.LogAsync("acme"));
        Assert.Equal((MeterReportStatus.Sent, 200L), (sent.Status, sent.Quantity));
        Assert.True(sent.Attempts >= 2, "the failed report was retried");
        Assert.Equal((0, 0), await report.ExecuteAsync()); // nothing new, nothing twice
        var requests = _stripe.RequestsTo("POST", "/v1/billing/meter_events");
        Assert.True(requests.Count >= 2, "the failed report was retried");
        Assert.All(requests, r => Assert.Equal($"overage:acme:{period:yyyy-MM-dd}:200", r.Form["identifier"]));
        Assert.All(requests, r => Assert.Equal(("rpt_overage_credits", "cus_acme", "200"), (r.Form["event_name"], r.Form["payload[stripe_customer_id]"], r.Form["payload[value]"])));

        await SpendAsync("b", 10); // 300 credits in the new period, which no invoice has renewed yet: overage of 300 under its own identifier
        await report.ExecuteAsync();
        Assert.Equal([("cus_acme", 200L), ("cus_acme", 300L)], _stripe.MeterEvents.Values.OrderBy(v => v.Value));
        Assert.Equal(500, _stripe.MeterEvents.Values.Sum(v => v.Value));

        // A top-up now covers the overage: the reported 500 stays reported and nothing negative is sent.
        await _app.Get<GrantCredits>().ExecuteAsync("acme", EntrySource.TopUp, 5_000, "top_up:late");
        Assert.Equal((0, 0), await report.ExecuteAsync());
        Assert.Equal(2, (await report.LogAsync("acme")).Count);
        Assert.All(await report.LogAsync("acme"), r => Assert.Equal(MeterReportStatus.Sent, r.Status));
    }
}
