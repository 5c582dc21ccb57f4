using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Billing;
using Rpt.Portal.Data;
using Rpt.Portal.Ledger;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Operations;

/// <summary>One difference between the ledger and Stripe, or between the ledger and the audit log, with both sides named.</summary>
/// <param name="Kind"><c>paid_without_grant</c>, <c>grant_without_payment</c>, <c>entry_without_record</c>, <c>record_without_entry</c>, <c>paid_without_tenant</c>.</param>
public sealed record Difference(string Kind, string? TenantId, string What, long? Seq, string? StripeId, string? StripeUrl, long? AuditSeq);

public sealed record ReconciliationReport(DateTimeOffset Since, int PaidObjects, int StripeGrants, int OperatorEntries, int AuditRecords,
    IReadOnlyList<Difference> Differences);

/// <summary>
/// Reconciles the ledger with what Stripe was paid and with the operators' audit log, over the entries written since a day:
/// <list type="bullet">
/// <item>every paid Checkout Session, invoice (first or renewal) and auto top-up payment has its grant;</item>
/// <item>every grant keyed by a Stripe object (<c>stripe:checkout:…</c>, <c>stripe:invoice:…</c>, <c>stripe:subscription:…</c>,
/// <c>auto_top_up:…</c>) has its paid object;</item>
/// <item>every operator grant (an adjustment or top-up not keyed by Stripe) and every void has its audit record, and every
/// <c>credits.grant</c> or <c>credits.void</c> record names an entry of that kind.</item>
/// </list>
/// A plan's first period is granted under whichever of its checkout, subscription and first invoice arrived first, so any of
/// their keys counts for each; a renewal's credits may come from the renewal scheduler, so a plan allocation of the invoice's
/// period counts for it. Stripe objects are read from a week before the day, so that a grant's object created just before is found.
/// </summary>
public sealed class Reconciliation(IDbContextFactory<ApplicationDbContext> dbFactory, IBillingGateway gateway)
{
    public static readonly TimeSpan StripeLookBack = TimeSpan.FromDays(7);

    public async Task<ReconciliationReport> RunAsync(DateTimeOffset since, CancellationToken cancellationToken = default)
    {
        var paid = await gateway.PaidObjectsAsync(since - StripeLookBack, cancellationToken);
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var tenants = await db.Tenants.AsNoTracking().ToListAsync(cancellationToken);
        var byCustomer = tenants.Where(t => t.StripeCustomerId is not null).GroupBy(t => t.StripeCustomerId!).ToDictionary(g => g.Key, g => g.First().Id);
        var byId = tenants.ToDictionary(t => t.Id);
        var allocations = await db.LedgerEntries.AsNoTracking().Where(e => e.Kind == EntryKind.Allocation || e.Kind == EntryKind.Void)
            .Select(e => new { e.TenantId, e.Seq, e.Kind, e.Source, e.IdempotencyKey, e.PeriodStart, e.CreatedAt, e.AmountMicroCredits }).ToListAsync(cancellationToken);
        var keys = allocations.Select(a => (a.TenantId, a.IdempotencyKey)).ToHashSet();
        // Built once: which subscriptions a tenant's grants name, and which periods have a plan allocation.
        var subscriptionsGranted = allocations.Where(a => a.IdempotencyKey.StartsWith("stripe:subscription:", StringComparison.Ordinal))
            .Select(a => (a.TenantId, a.IdempotencyKey["stripe:subscription:".Length..].Split(':')[0])).ToHashSet();
        var planPeriods = allocations.Where(a => a.Kind == EntryKind.Allocation && CreditGrants.IsPlanSource(a.Source))
            .Select(a => (a.TenantId, a.PeriodStart)).ToHashSet();
        var differences = new List<Difference>();

        // Stripe → ledger: each paid object has its grant.
        var sessionsBySubscription = paid.Where(p => p.Kind == "checkout_session" && p.SubscriptionId is not null)
            .GroupBy(p => p.SubscriptionId!).ToDictionary(g => g.Key, g => g.Select(p => p.Id).ToList());
        foreach (var p in paid.Where(p => p.Created >= since))
        {
            var tenant = p.TenantId is { } t && byId.ContainsKey(t) ? t : p.CustomerId is { } c ? byCustomer.GetValueOrDefault(c) : null;
            if (tenant is null)
            {
                differences.Add(new("paid_without_tenant", p.TenantId, $"{Name(p)} names no tenant of ours (customer {p.CustomerId ?? "none"})", null, p.Id, p.DashboardUrl, null));
                continue;
            }
            bool Has(string key) => keys.Contains((tenant, key));
            bool HasSubscription(string? sub) => sub is not null && subscriptionsGranted.Contains((tenant, sub));
            var granted = (p.Kind, p.Purpose) switch
            {
                ("checkout_session", "top_up") => Has($"stripe:checkout:{p.Id}"),
                ("checkout_session", "plan") => Has($"stripe:checkout:{p.Id}") || p.InvoiceId is { } inv && Has($"stripe:invoice:{inv}") || HasSubscription(p.SubscriptionId),
                ("invoice", "subscription_create") => Has($"stripe:invoice:{p.Id}") || HasSubscription(p.SubscriptionId)
                    || p.SubscriptionId is { } sub && sessionsBySubscription.GetValueOrDefault(sub, []).Any(cs => Has($"stripe:checkout:{cs}")),
                ("invoice", "subscription_cycle") => Has($"stripe:invoice:{p.Id}") || p.PeriodStart is { } start && planPeriods.Contains((tenant, byId[tenant].PeriodAt(start).Start)),
                ("payment_intent", "auto_top_up") => p.Key is { } key && Has(key),
                _ => true, // a paid object that grants nothing (a proration, a one-off invoice)
            };
            if (!granted) differences.Add(new("paid_without_grant", tenant, $"{Name(p)} was paid but no grant of {tenant} carries it", null, p.Id, p.DashboardUrl, null));
        }

        // Ledger → Stripe: each Stripe-keyed grant has its paid object.
        var paidIds = paid.Select(p => p.Id).ToHashSet(StringComparer.Ordinal);
        var paidKeys = paid.Where(p => p.Key is not null).Select(p => p.Key!).ToHashSet(StringComparer.Ordinal);
        var paidSubscriptions = paid.Where(p => p.SubscriptionId is not null).Select(p => p.SubscriptionId!).ToHashSet(StringComparer.Ordinal);
        var stripeGrants = allocations.Where(a => a.Kind == EntryKind.Allocation && a.CreatedAt >= since && IsStripeKey(a.IdempotencyKey)).ToList();
        foreach (var a in stripeGrants)
        {
            var k = a.IdempotencyKey;
            var found = k.StartsWith("stripe:checkout:", StringComparison.Ordinal) ? paidIds.Contains(k["stripe:checkout:".Length..])
                : k.StartsWith("stripe:invoice:", StringComparison.Ordinal) ? paidIds.Contains(k["stripe:invoice:".Length..])
                : k.StartsWith("stripe:subscription:", StringComparison.Ordinal) ? paidSubscriptions.Contains(k["stripe:subscription:".Length..].Split(':')[0])
                : paidKeys.Contains(k);
            if (!found)
                differences.Add(new("grant_without_payment", a.TenantId, $"grant #{a.Seq} of {a.TenantId} ({Credit.Format(a.AmountMicroCredits)} credits, key {k}) has no paid Stripe object",
                    a.Seq, StripeId(k), null, null));
        }

        // Ledger ↔ audit log: each operator grant and void has its record, each record its entry.
        var records = await db.OperatorAudit.AsNoTracking()
            .Where(r => (r.Action == Corrections.GrantAction || r.Action == Corrections.VoidAction) && r.At >= since)
            .Select(r => new { r.Seq, r.Action, r.TenantId, r.Subject }).ToListAsync(cancellationToken);
        var recorded = await db.OperatorAudit.AsNoTracking().Where(r => r.Action == Corrections.GrantAction || r.Action == Corrections.VoidAction)
            .Select(r => new { r.TenantId, r.Subject }).ToListAsync(cancellationToken);
        var recordedSet = recorded.Select(r => (r.TenantId, r.Subject)).ToHashSet();
        var operatorEntries = allocations.Where(a => a.CreatedAt >= since && (a.Kind == EntryKind.Void
            || a.Source is EntrySource.Adjustment or EntrySource.TopUp && !IsStripeKey(a.IdempotencyKey))).ToList();
        foreach (var a in operatorEntries.Where(a => !recordedSet.Contains((a.TenantId, Corrections.Subject(a.Seq)))))
            differences.Add(new("entry_without_record", a.TenantId,
                $"{(a.Kind == EntryKind.Void ? "void" : EnumText.ToText(a.Source))} #{a.Seq} of {a.TenantId} ({Credit.Format(a.AmountMicroCredits)} credits, key {a.IdempotencyKey}) has no audit record: who made it is unknown",
                a.Seq, null, null, null));
        var entries = allocations.ToDictionary(a => (a.TenantId, Corrections.Subject(a.Seq)), a => a.Kind);
        foreach (var r in records)
        {
            var expected = r.Action == Corrections.VoidAction ? EntryKind.Void : EntryKind.Allocation;
            if (r.TenantId is null || r.Subject is null || !entries.TryGetValue((r.TenantId, r.Subject), out var kind) || kind != expected)
                differences.Add(new("record_without_entry", r.TenantId, $"audit record #{r.Seq} ({r.Action}) names {r.Subject} of {r.TenantId}, which is no {EnumText.ToText(expected)} entry",
                    null, null, null, r.Seq));
        }
        return new ReconciliationReport(since, paid.Count(p => p.Created >= since), stripeGrants.Count, operatorEntries.Count, records.Count, differences);
    }

    private static bool IsStripeKey(string key) => key.StartsWith("stripe:", StringComparison.Ordinal) || key.StartsWith("auto_top_up:", StringComparison.Ordinal);

    private static string? StripeId(string key) =>
        key.StartsWith("stripe:", StringComparison.Ordinal) ? key.Split(':').ElementAtOrDefault(2) : null;

    private static string Name(PaidObject p) => p.Kind switch
    {
        "checkout_session" => $"Checkout Session {p.Id} ({p.Purpose})",
        "invoice" => $"invoice {p.Id} ({p.Purpose})",
        _ => $"payment {p.Id} ({p.Purpose})",
    };
}
