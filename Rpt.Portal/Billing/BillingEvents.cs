using System.Globalization;
using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Data;
using Rpt.Portal.Ledger;
using Rpt.Portal.Plans;
using Rpt.Portal.Tenants;
using Stripe;
using Stripe.Checkout;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Billing;

public enum StripeEventStatus { Processed, AlreadyProcessed }

public sealed record StripeEventResult(StripeEventStatus Status, string EventId, string? TenantId, string Outcome);

/// <summary>
/// Everything Stripe tells us, applied once. An event is stored by its id first, then processed; a
/// replay or a concurrent duplicate finds it processed and changes nothing. Processing is order-independent:
/// <list type="bullet">
/// <item>a plan follows the subscription's price, and a subscription state older than one already applied
/// (Stripe's <c>created</c>) is ignored;</item>
/// <item>a plan grant tops the period's plan allocation up to the plan's credits, so
/// <c>checkout.session.completed</c>, <c>customer.subscription.created</c> and the first <c>invoice.paid</c>
/// grant once between them, under the key of whichever arrives first;</item>
/// <item>a renewal is the <c>invoice.paid</c> of a cycle, keyed <c>stripe:invoice:{id}</c>.</item>
/// </list>
/// The webhook endpoint calls this after checking the signature; test mode calls it with the events its
/// in-portal checkout makes, so both go through the same code.
/// </summary>
public sealed class BillingEvents(IDbContextFactory<ApplicationDbContext> dbFactory, ChangePlan changePlan, GrantCredits grants,
    StripePrices prices, Alerts.Webhooks webhooks, TimeProvider time, TenantChanges changes, ILogger<BillingEvents> logger)
{
    /// <summary>Stripe's events are a few kilobytes; a larger body is refused before it is parsed.</summary>
    public const int MaxPayloadBytes = 512 * 1024;

    // Billing events are few; one at a time keeps a duplicate pair from racing each other: in a process by this gate,
    // across the instances on one PostgreSQL database by WorkLock.BillingEvents (the ledger's unique keys stay the backstop).
    private readonly SemaphoreSlim _gate = new(1, 1);

    /// <summary>Parses a Stripe event (already verified); throws <see cref="StripeException"/> or <see cref="FormatException"/> on a malformed one.</summary>
    public static Event Parse(string json)
    {
        var stripeEvent = EventUtility.ConstructEventWithoutVerification(json, throwOnApiVersionMismatch: false);
        if (string.IsNullOrEmpty(stripeEvent.Id) || stripeEvent.Id.Length > 255 || string.IsNullOrEmpty(stripeEvent.Type) || stripeEvent.Type.Length > 100)
            throw new FormatException("the event has no id or type");
        return stripeEvent;
    }

    public async Task<StripeEventResult> ReceiveAsync(string json, CancellationToken cancellationToken = default)
    {
        var stripeEvent = Parse(json);
        var created = new DateTimeOffset(DateTime.SpecifyKind(stripeEvent.Created, DateTimeKind.Utc));
        await using (var db = await dbFactory.CreateDbContextAsync(cancellationToken))
        {
            var receivedAt = time.GetUtcNow().ToUnixTimeMilliseconds();
            await db.Database.ExecuteSqlInterpolatedAsync($"""
                INSERT INTO stripe_events (id, type, created_at, received_at, attempts, payload)
                VALUES ({stripeEvent.Id}, {stripeEvent.Type}, {created.ToUnixTimeMilliseconds()}, {receivedAt}, 0, {json})
                ON CONFLICT (id) DO NOTHING
                """, cancellationToken);
        }

        await _gate.WaitAsync(cancellationToken);
        try
        {
            await using var held = await WorkLock.HoldAsync(dbFactory, WorkLock.BillingEvents, cancellationToken);
            await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
            var record = await db.StripeEvents.FirstAsync(e => e.Id == stripeEvent.Id, cancellationToken);
            if (record.ProcessedAt is not null)
                return new(StripeEventStatus.AlreadyProcessed, record.Id, record.TenantId, record.Outcome ?? "");
            try
            {
                var (tenantId, outcome) = await ApplyAsync(stripeEvent, created, cancellationToken);
                record.Processed(tenantId, outcome, time.GetUtcNow());
                await db.SaveChangesAsync(cancellationToken);
                logger.LogInformation("Stripe event {EventId} ({Type}) for {Tenant}: {Outcome}", stripeEvent.Id, stripeEvent.Type, tenantId, outcome);
                return new(StripeEventStatus.Processed, record.Id, tenantId, outcome);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                record.Failed(ex.Message);
                await db.SaveChangesAsync(CancellationToken.None);
                throw;
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// A subscription as Stripe's API just answered it (after an update or a cancellation from the portal):
    /// applied by the same code as its webhook, so the page shows the change before the webhook arrives,
    /// and the webhook then finds it applied.
    /// </summary>
    public async Task<string> ApplySubscriptionAsync(Subscription subscription, CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            await using var held = await WorkLock.HoldAsync(dbFactory, WorkLock.BillingEvents, cancellationToken);
            var at = time.GetUtcNow();
            var (_, outcome) = subscription.Status == "canceled"
                ? await SubscriptionEndedAsync(subscription, at, cancellationToken)
                : await SubscriptionChangedAsync(subscription, at, cancellationToken);
            return outcome;
        }
        finally
        {
            _gate.Release();
        }
    }

    private Task<(string? Tenant, string Outcome)> ApplyAsync(Event e, DateTimeOffset created, CancellationToken ct) => e.Data.Object switch
    {
        Session session when e.Type == EventTypes.CheckoutSessionCompleted => CheckoutCompletedAsync(session, created, ct),
        Subscription sub when e.Type == EventTypes.CustomerSubscriptionDeleted => SubscriptionEndedAsync(sub, created, ct),
        Subscription sub when e.Type is EventTypes.CustomerSubscriptionCreated or EventTypes.CustomerSubscriptionUpdated
            => SubscriptionChangedAsync(sub, created, ct),
        Invoice invoice when e.Type == EventTypes.InvoicePaid => InvoicePaidAsync(invoice, created, ct),
        Invoice invoice when e.Type == EventTypes.InvoicePaymentFailed => InvoiceFailedAsync(invoice, created, ct),
        PaymentIntent intent when e.Type is EventTypes.PaymentIntentSucceeded or EventTypes.PaymentIntentPaymentFailed
            => PaymentIntentAsync(intent, e.Type == EventTypes.PaymentIntentSucceeded, ct),
        _ => Task.FromResult<(string?, string)>((null, $"stored; {e.Type} is not acted on")),
    };

    private async Task<(string?, string)> CheckoutCompletedAsync(Session session, DateTimeOffset created, CancellationToken ct)
    {
        var tenantId = await TenantOfAsync(session.Metadata, session.ClientReferenceId, session.CustomerId, ct);
        if (tenantId is null) return (null, $"ignored: checkout session {session.Id} names no tenant of ours");
        if (session.PaymentStatus is not ("paid" or "no_payment_required"))
            return (tenantId, $"waiting: checkout session {session.Id} is {session.PaymentStatus}");
        var kind = session.Metadata?.GetValueOrDefault("kind");
        var key = $"stripe:checkout:{session.Id}";
        if (kind == "top_up")
        {
            var pack = TopUpPacks.Find(session.Metadata?.GetValueOrDefault("pack"));
            if (pack is null) return (tenantId, $"ignored: checkout session {session.Id} names no known pack");
            var granted = await grants.ExecuteAsync(tenantId, EntrySource.TopUp, pack.Credits, key, $"{pack.Name} top-up, checkout {session.Id}", cancellationToken: ct);
            if (granted.Status == GrantStatus.Granted)
                await webhooks.EmitAsync(tenantId, "top_up.succeeded", new { pack = pack.Code, credits = pack.Credits, grant_id = granted.Entry!.Seq, source = "checkout", stripe_object = session.Id }, ct);
            return (tenantId, Describe(granted, key));
        }
        if (kind != "plan" || session.Metadata?.GetValueOrDefault("plan") is not { } plan)
            return (tenantId, $"ignored: checkout session {session.Id} is neither a plan nor a top-up");
        await UpdateTenantAsync(tenantId, t =>
        {
            if (session.CustomerId is not null && t.StripeCustomerId is null) t.LinkStripeCustomer(session.CustomerId);
            if (session.SubscriptionId is not null && (t.SubscriptionStateAt is null || created >= t.SubscriptionStateAt))
                t.LinkSubscription(session.SubscriptionId, t.StripeSubscriptionId == session.SubscriptionId && t.CancelAtPeriodEnd);
        }, ct);
        return (tenantId, await ApplyPlanAsync(tenantId, plan, created, new(key, $"Plan {plan}, checkout {session.Id}"), ct));
    }

    private async Task<(string?, string)> SubscriptionChangedAsync(Subscription sub, DateTimeOffset created, CancellationToken ct)
    {
        var tenantId = await TenantOfAsync(sub.Metadata, null, sub.CustomerId, ct);
        if (tenantId is null) return (null, $"ignored: subscription {sub.Id} names no tenant of ours");
        if (sub.Status is "canceled" or "incomplete_expired" or "unpaid") return await SubscriptionEndedAsync(sub, created, ct);
        if (sub.Status is not ("active" or "trialing" or "past_due")) return (tenantId, $"waiting: subscription {sub.Id} is {sub.Status}");
        var plan = prices.PlanOf(sub.Items?.Data?.FirstOrDefault()?.Price?.Id) ?? sub.Metadata?.GetValueOrDefault("plan");
        if (plan is null) return (tenantId, $"ignored: subscription {sub.Id} has a price that is no plan of ours");
        var current = await UpdateTenantAsync(tenantId, t =>
        {
            if (!t.AdvanceSubscriptionState(created)) return false;
            t.LinkSubscription(sub.Id, sub.CancelAtPeriodEnd);
            return true;
        }, ct);
        if (!current) return (tenantId, $"ignored: a newer state of subscription {sub.Id} was applied already");
        var period = await PeriodStartAsync(tenantId, ct);
        return (tenantId, await ApplyPlanAsync(tenantId, plan, created,
            new($"stripe:subscription:{sub.Id}:{period}:{plan}", $"Plan {plan}, subscription {sub.Id}"), ct, checkOrder: false));
    }

    /// <summary>
    /// The subscription is gone: the tenant keeps what it paid for and moves to Free at the end of the period the
    /// subscription covered (at once when that period is already over), with Free's credits from then on.
    /// </summary>
    private async Task<(string?, string)> SubscriptionEndedAsync(Subscription sub, DateTimeOffset created, CancellationToken ct)
    {
        var tenantId = await TenantOfAsync(sub.Metadata, null, sub.CustomerId, ct);
        if (tenantId is null) return (null, $"ignored: subscription {sub.Id} names no tenant of ours");
        var now = time.GetUtcNow();
        var paidUntil = sub.Items?.Data?.FirstOrDefault()?.CurrentPeriodEnd is { } end && end > DateTime.UnixEpoch
            ? new DateTimeOffset(DateTime.SpecifyKind(end, DateTimeKind.Utc)) : now;
        DateOnly? from = null;
        var applied = await UpdateTenantAsync(tenantId, t =>
        {
            if (!t.AdvanceSubscriptionState(created)) return false;
            if (t.StripeSubscriptionId is not null && t.StripeSubscriptionId != sub.Id) return false; // an older subscription ended
            t.LinkSubscription(null, false);
            var last = paidUntil.AddMilliseconds(-1) < now ? paidUntil.AddMilliseconds(-1) : now;
            from = t.PeriodAt(last).EndExclusive;
            if (t.PlanCode != PlanCatalog.Free) t.SchedulePlan(PlanCatalog.Free, from.Value);
            return true;
        }, ct);
        if (!applied) return (tenantId, $"ignored: subscription {sub.Id} is not the tenant's current one");
        changes.Publish(TenantChange.PlanChanged, tenantId);
        var period = await PeriodAsync(tenantId, ct);
        if (from <= period.Start)
        {
            // The paid period is over: Free applies now, with this period's Free credits under the renewal key the scheduler would use.
            var key = $"renewal:{tenantId}:{period.Start.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)}";
            var renewed = await changePlan.RenewAsync(tenantId, now, new(key, $"Free plan after subscription {sub.Id} ended"), ct);
            return (tenantId, $"subscription {sub.Id} ended; on Free from {period.Start:yyyy-MM-dd}; " + Describe(renewed, key));
        }
        return (tenantId, $"subscription {sub.Id} ended; the plan stays until {from:yyyy-MM-dd}, then Free");
    }

    private async Task<(string?, string)> InvoicePaidAsync(Invoice invoice, DateTimeOffset created, CancellationToken ct)
    {
        var details = invoice.Parent?.SubscriptionDetails;
        var tenantId = await TenantOfAsync(details?.Metadata, null, invoice.CustomerId, ct);
        if (tenantId is null) return (null, $"ignored: invoice {invoice.Id} names no tenant of ours");
        var hadFailure = false;
        await UpdateTenantAsync(tenantId, t =>
        {
            hadFailure = t.PaymentFailedInvoiceId is not null;
            t.PaymentSucceeded();
            if (details?.SubscriptionId is { } subId && t.StripeSubscriptionId is null && invoice.BillingReason == "subscription_create"
                && (t.SubscriptionStateAt is null || created >= t.SubscriptionStateAt))
                t.LinkSubscription(subId, false);
        }, ct);
        if (hadFailure) changes.Publish(TenantChange.BillingChanged, tenantId);
        var key = $"stripe:invoice:{invoice.Id}";
        var line = invoice.Lines?.Data?.FirstOrDefault();
        switch (invoice.BillingReason)
        {
            case "subscription_create":
            {
                var plan = prices.PlanOf(line?.Pricing?.PriceDetails?.PriceId) ?? details?.Metadata?.GetValueOrDefault("plan");
                if (plan is null) return (tenantId, $"invoice {invoice.Id} paid; its price is no plan of ours");
                return (tenantId, $"invoice {invoice.Id} paid; " + await ApplyPlanAsync(tenantId, plan, created, new(key, $"Plan {plan}, invoice {invoice.Number ?? invoice.Id}"), ct));
            }
            case "subscription_cycle":
            {
                var start = line?.Period?.Start is { } s && s > DateTime.UnixEpoch ? new DateTimeOffset(DateTime.SpecifyKind(s, DateTimeKind.Utc)) : created;
                var renewed = await changePlan.RenewAsync(tenantId, start, new(key, $"Renewal, invoice {invoice.Number ?? invoice.Id}"), ct);
                return (tenantId, $"invoice {invoice.Id} paid (renewal); " + Describe(renewed, key));
            }
            default:
                return (tenantId, $"invoice {invoice.Id} paid ({invoice.BillingReason}); nothing to grant");
        }
    }

    private async Task<(string?, string)> InvoiceFailedAsync(Invoice invoice, DateTimeOffset created, CancellationToken ct)
    {
        var tenantId = await TenantOfAsync(invoice.Parent?.SubscriptionDetails?.Metadata, null, invoice.CustomerId, ct);
        if (tenantId is null) return (null, $"ignored: invoice {invoice.Id} names no tenant of ours");
        var recorded = await UpdateTenantAsync(tenantId, t =>
        {
            if (t.PaymentFailedAt > created) return false;
            t.PaymentFailed(invoice.Id, invoice.HostedInvoiceUrl, created);
            return true;
        }, ct);
        if (recorded) changes.Publish(TenantChange.BillingChanged, tenantId);
        return (tenantId, $"payment of invoice {invoice.Id} failed; owners are told on every page until an invoice is paid");
    }

    /// <summary>An auto top-up's payment: the pack is granted under the purchase's key once it succeeded; a failure is recorded and shown.</summary>
    private async Task<(string?, string)> PaymentIntentAsync(PaymentIntent intent, bool succeeded, CancellationToken ct)
    {
        if (intent.Metadata?.GetValueOrDefault("kind") != "auto_top_up" || intent.Metadata.GetValueOrDefault("key") is not { Length: > 0 and <= 200 } key)
            return (null, $"payment {intent.Id} is not an auto top-up; nothing to do");
        var tenantId = await TenantOfAsync(intent.Metadata, null, intent.CustomerId, ct);
        if (tenantId is null) return (null, $"ignored: payment {intent.Id} names no tenant of ours");
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var attempt = await db.AutoTopUpAttempts.FirstOrDefaultAsync(a => a.Key == key && a.TenantId == tenantId, ct);
        if (attempt is null) return (tenantId, $"ignored: payment {intent.Id} names no auto top-up {key} of ours");
        if (!succeeded)
        {
            attempt.Failed(intent.Id, intent.LastPaymentError?.Message ?? "the payment failed", time.GetUtcNow());
            await db.SaveChangesAsync(ct);
            changes.Publish(TenantChange.BillingChanged, tenantId);
            await webhooks.EmitAsync(tenantId, "top_up.failed", new { pack = attempt.PackCode, auto_top_up = key, error = attempt.Error, stripe_object = intent.Id }, ct);
            return (tenantId, $"auto top-up {key} failed; nothing granted");
        }
        var pack = TopUpPacks.Find(attempt.PackCode)!;
        var granted = await grants.ExecuteAsync(tenantId, EntrySource.TopUp, pack.Credits, key,
            $"Auto top-up {attempt.Number} of the period: {pack.Name}, payment {intent.Id}", cancellationToken: ct);
        attempt.Succeeded(intent.Id, time.GetUtcNow());
        await db.SaveChangesAsync(ct);
        changes.Publish(TenantChange.BillingChanged, tenantId);
        if (granted.Status == GrantStatus.Granted)
            await webhooks.EmitAsync(tenantId, "top_up.succeeded", new { pack = pack.Code, credits = pack.Credits, grant_id = granted.Entry!.Seq, source = "auto_top_up", auto_top_up = key, stripe_object = intent.Id }, ct);
        return (tenantId, Describe(granted, key));
    }

    private async Task<string> ApplyPlanAsync(string tenantId, string plan, DateTimeOffset created, PlanChangeOrigin origin, CancellationToken ct,
        bool checkOrder = true)
    {
        if (checkOrder)
        {
            await using var db = await dbFactory.CreateDbContextAsync(ct);
            var stateAt = await db.Tenants.Where(t => t.Id == tenantId).Select(t => t.SubscriptionStateAt).FirstAsync(ct);
            if (stateAt > created) return $"plan {plan} not applied: a newer subscription state was applied already";
        }
        var result = await changePlan.ExecuteAsync(tenantId, plan, origin, ct);
        if (result.Error is not null) throw new InvalidOperationException($"plan {plan} could not be applied: {result.Error}");
        if (result.Changed)
            await webhooks.EmitAsync(tenantId, "plan.changed", new
            {
                plan,
                change = EnumText.ToText(result.Kind),
                effective_from = result.EffectiveFrom,
                credits_granted = result.GrantedCredits,
                grant_key = result.GrantedCredits > 0 ? origin.GrantKey : null,
            }, ct);
        return result.Kind switch
        {
            PlanChangeKind.Upgrade when result.GrantedCredits > 0 => $"upgraded to {plan}; granted {result.GrantedCredits:N0} credits under {origin.GrantKey}",
            PlanChangeKind.Upgrade => $"upgraded to {plan}; this period already held the plan's credits",
            PlanChangeKind.Downgrade => $"{plan} scheduled from {result.EffectiveFrom:yyyy-MM-dd}",
            PlanChangeKind.KeepCurrent => $"stays on {plan}; the scheduled change was dropped",
            _ => $"already on {plan}; nothing changed",
        };
    }

    private static string Describe(GrantResult? result, string key) => result?.Status switch
    {
        GrantStatus.Granted => $"granted {Credit.FloorCredits(result.Entry!.AmountMicroCredits):N0} credits under {key}",
        GrantStatus.AlreadyGranted => $"already granted under {key}",
        GrantStatus.Rejected => throw new InvalidOperationException($"the grant {key} was rejected: {result.Error}"),
        _ => "the period already held the plan's credits",
    };

    /// <summary>The tenant an object belongs to: our metadata first, then the client reference, then the customer we linked.</summary>
    private async Task<string?> TenantOfAsync(IDictionary<string, string>? metadata, string? clientReference, string? customerId, CancellationToken ct)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        foreach (var candidate in new[] { metadata is not null && metadata.TryGetValue("tenant_id", out var m) ? m : null, clientReference })
            if (candidate is { Length: > 0 and <= 64 } && await db.Tenants.AnyAsync(t => t.Id == candidate, ct)) return candidate;
        if (customerId is { Length: > 0 })
            return await db.Tenants.Where(t => t.StripeCustomerId == customerId).Select(t => t.Id).FirstOrDefaultAsync(ct);
        return null;
    }

    private Task UpdateTenantAsync(string tenantId, Action<Tenant> update, CancellationToken ct) =>
        UpdateTenantAsync(tenantId, t => { update(t); return true; }, ct);

    private async Task<bool> UpdateTenantAsync(string tenantId, Func<Tenant, bool> update, CancellationToken ct)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var tenant = await db.Tenants.FirstAsync(t => t.Id == tenantId, ct);
        if (!update(tenant)) return false;
        await db.SaveChangesAsync(ct);
        return true;
    }

    private async Task<BillingPeriod> PeriodAsync(string tenantId, CancellationToken ct)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var tenant = await db.Tenants.AsNoTracking().FirstAsync(t => t.Id == tenantId, ct);
        return tenant.PeriodAt(time.GetUtcNow());
    }

    private async Task<string> PeriodStartAsync(string tenantId, CancellationToken ct) =>
        (await PeriodAsync(tenantId, ct)).Start.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
}
