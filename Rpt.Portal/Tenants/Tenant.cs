using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Rpt.Portal.Ledger;

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

    public DateOnly Anchor => DateOnly.FromDateTime(SubscriptionStart.UtcDateTime);

    public BillingPeriod PeriodAt(DateTimeOffset instant) => BillingPeriod.Containing(Anchor, instant);

    public void ChangePlan(string planCode) => PlanCode = planCode;

    public void LinkStripeCustomer(string customerId) => StripeCustomerId = customerId;
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
        b.Ignore(t => t.Anchor);
    }
}
