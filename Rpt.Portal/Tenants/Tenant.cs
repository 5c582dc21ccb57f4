using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Rpt.Portal.Tenants;

/// <summary>An account: the unit that owns a plan, a ledger and API keys.</summary>
public sealed class Tenant
{
    private Tenant() { }

    public Tenant(string id, string name, string planCode, DateTimeOffset subscriptionStart)
    {
        Id = id;
        Name = name;
        PlanCode = planCode;
        SubscriptionStart = subscriptionStart;
        CreatedAt = subscriptionStart;
    }

    public string Id { get; private set; } = "";
    public string Name { get; private set; } = "";
    public string PlanCode { get; private set; } = "";
    /// <summary>Billing periods are anchored on this instant's UTC date.</summary>
    public DateTimeOffset SubscriptionStart { get; private set; }
    public DateTimeOffset CreatedAt { get; private set; }
    public string? StripeCustomerId { get; private set; }
    /// <summary>The Stripe subscription that pays for the plan; null on Free, Enterprise contracts and after cancellation.</summary>
    public string? StripeSubscriptionId { get; private set; }
    /// <summary>A downgrade or cancellation waiting for the next period: the plan it moves to, and from which period.</summary>
    public string? PendingPlanCode { get; private set; }
    public DateOnly? PendingPlanFrom { get; private set; }
    /// <summary>The subscription is set to end with the current period (the owner cancelled in Stripe's portal).</summary>
    public bool CancelAtPeriodEnd { get; private set; }
    /// <summary>The unpaid invoice owners are told about on every page, until an invoice is paid.</summary>
    public string? PaymentFailedInvoiceId { get; private set; }
    public string? PaymentFailedInvoiceUrl { get; private set; }
    public DateTimeOffset? PaymentFailedAt { get; private set; }
    /// <summary>When the subscription state applied last was current at Stripe: an older event never undoes a newer one.</summary>
    public DateTimeOffset? SubscriptionStateAt { get; private set; }

    public DateOnly Anchor => DateOnly.FromDateTime(SubscriptionStart.UtcDateTime);

    public BillingPeriod PeriodAt(DateTimeOffset instant) => BillingPeriod.Containing(Anchor, instant);

    /// <summary>Moves to the plan now; a change that was waiting for the next period is dropped.</summary>
    public void ChangePlan(string planCode)
    {
        PlanCode = planCode;
        PendingPlanCode = null;
        PendingPlanFrom = null;
    }

    /// <summary>Keeps the plan for the rest of this period and moves to <paramref name="planCode"/> from the period starting <paramref name="from"/>.</summary>
    public void SchedulePlan(string planCode, DateOnly from)
    {
        PendingPlanCode = planCode;
        PendingPlanFrom = from;
    }

    /// <summary>Applies a scheduled change whose period has begun; true when the plan moved.</summary>
    public bool ApplyPendingPlan(DateOnly periodStart)
    {
        if (PendingPlanCode is null || PendingPlanFrom > periodStart) return false;
        ChangePlan(PendingPlanCode);
        return true;
    }

    public void LinkStripeCustomer(string customerId) => StripeCustomerId = customerId;

    public void LinkSubscription(string? subscriptionId, bool cancelAtPeriodEnd)
    {
        StripeSubscriptionId = subscriptionId;
        CancelAtPeriodEnd = subscriptionId is not null && cancelAtPeriodEnd;
    }

    /// <summary>Records when the subscription state being applied was current; false when a newer one was applied already.</summary>
    public bool AdvanceSubscriptionState(DateTimeOffset at)
    {
        if (SubscriptionStateAt > at) return false;
        SubscriptionStateAt = at;
        return true;
    }

    public void PaymentFailed(string invoiceId, string? hostedUrl, DateTimeOffset at)
    {
        PaymentFailedInvoiceId = invoiceId;
        PaymentFailedInvoiceUrl = hostedUrl;
        PaymentFailedAt = at;
    }

    public void PaymentSucceeded()
    {
        PaymentFailedInvoiceId = null;
        PaymentFailedInvoiceUrl = null;
        PaymentFailedAt = null;
    }
}

public sealed class TenantConfiguration : IEntityTypeConfiguration<Tenant>
{
    public void Configure(EntityTypeBuilder<Tenant> b)
    {
        b.ToTable("tenants");
        b.HasKey(t => t.Id);
        b.Property(t => t.Id).HasMaxLength(64);
        b.Property(t => t.Name).HasMaxLength(200);
        b.Property(t => t.PlanCode).HasMaxLength(64);
        b.Property(t => t.StripeCustomerId).HasMaxLength(128);
        b.Property(t => t.StripeSubscriptionId).HasMaxLength(128);
        b.Property(t => t.PendingPlanCode).HasMaxLength(64);
        b.Property(t => t.PaymentFailedInvoiceId).HasMaxLength(128);
        b.Property(t => t.PaymentFailedInvoiceUrl).HasMaxLength(1000);
        b.HasIndex(t => t.StripeCustomerId).IsUnique();
        b.Ignore(t => t.Anchor);
    }
}
