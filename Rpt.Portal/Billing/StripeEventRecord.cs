using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Rpt.Portal.Billing;

/// <summary>
/// A Stripe event as received, stored by its id before anything is done with it: a replay or a concurrent
/// duplicate finds the row, an event that failed half-way is processed again on Stripe's next delivery, and
/// the operator can read what Stripe said and what became of it.
/// </summary>
public sealed class StripeEventRecord
{
    private StripeEventRecord() { }

    public StripeEventRecord(string id, string type, DateTimeOffset createdAt, DateTimeOffset receivedAt, string payload)
    {
        Id = id;
        Type = type;
        CreatedAt = createdAt;
        ReceivedAt = receivedAt;
        Payload = payload;
    }

    public string Id { get; private set; } = "";
    public string Type { get; private set; } = "";
    /// <summary>When Stripe created the event (its order, not the order of delivery).</summary>
    public DateTimeOffset CreatedAt { get; private set; }
    public DateTimeOffset ReceivedAt { get; private set; }
    public DateTimeOffset? ProcessedAt { get; private set; }
    public string? TenantId { get; private set; }
    /// <summary>What processing did, in words ("granted 24,000 credits under stripe:checkout:cs_…", "ignored: …").</summary>
    public string? Outcome { get; private set; }
    public int Attempts { get; private set; }
    public string? LastError { get; private set; }
    public string Payload { get; private set; } = "";

    public void Processed(string? tenantId, string outcome, DateTimeOffset at)
    {
        TenantId = tenantId;
        Outcome = outcome.Length > 1000 ? outcome[..1000] : outcome;
        ProcessedAt = at;
        Attempts++;
        LastError = null;
    }

    public void Failed(string error)
    {
        Attempts++;
        LastError = error.Length > 1000 ? error[..1000] : error;
    }
}

public sealed class StripeEventRecordConfiguration : IEntityTypeConfiguration<StripeEventRecord>
{
    public void Configure(EntityTypeBuilder<StripeEventRecord> b)
    {
        b.ToTable("stripe_events");
        b.HasKey(e => e.Id);
        b.Property(e => e.Id).HasMaxLength(255);
        b.Property(e => e.Type).HasMaxLength(100);
        b.Property(e => e.TenantId).HasMaxLength(64);
        b.Property(e => e.Outcome).HasMaxLength(1000);
        b.Property(e => e.LastError).HasMaxLength(1000);
        b.HasIndex(e => new { e.TenantId, e.Type });
    }
}
