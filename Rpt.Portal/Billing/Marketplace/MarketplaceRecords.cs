using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Rpt.Portal.Ledger;

namespace Rpt.Portal.Billing.Marketplace;

/// <summary>Where a tenant stands with its marketplace subscription (docs/RULES.md, "AWS Marketplace").</summary>
public enum MarketplaceStatus { Subscribed, SubscribeFailed, UnsubscribePending, Unsubscribed }

/// <summary>
/// A tenant that pays through AWS Marketplace: its billing source is <c>aws_marketplace</c>. Every whole credit it
/// consumes after <see cref="LinkedAt"/> is reported to AWS (<see cref="BaselineMicroCredits"/>: what it had
/// consumed before, which Stripe or its plan paid for).
/// </summary>
public sealed class MarketplaceAccount
{
    public const string BillingSource = "aws_marketplace";

    private MarketplaceAccount() { }

    public MarketplaceAccount(string tenantId, string customerIdentifier, string customerAwsAccountId, string productCode,
        long baselineMicroCredits, DateTimeOffset at)
    {
        TenantId = tenantId;
        CustomerIdentifier = customerIdentifier;
        CustomerAwsAccountId = customerAwsAccountId;
        ProductCode = productCode;
        BaselineMicroCredits = baselineMicroCredits;
        LinkedAt = at;
        StatusAt = DateTimeOffset.MinValue;
    }

    public string TenantId { get; private set; } = "";
    public string CustomerIdentifier { get; private set; } = "";
    public string CustomerAwsAccountId { get; private set; } = "";
    public string ProductCode { get; private set; } = "";
    public long BaselineMicroCredits { get; private set; }
    public DateTimeOffset LinkedAt { get; private set; }
    public MarketplaceStatus Status { get; private set; }
    /// <summary>When the notification that set <see cref="Status"/> was sent: an older one never undoes a newer one.</summary>
    public DateTimeOffset StatusAt { get; private set; }
    /// <summary>Set when AWS answered CustomerNotSubscribed: nothing more is reported until an operator looks.</summary>
    public string? ReportingStopped { get; private set; }
    public DateTimeOffset? ReportingStoppedAt { get; private set; }

    /// <summary>Whether the tenant's keys may ingest: not after the subscription ended or failed.</summary>
    public bool Entitled => Status is MarketplaceStatus.Subscribed or MarketplaceStatus.UnsubscribePending;

    /// <summary>Applies a notification sent at <paramref name="sentAt"/>; false when a newer one was applied already.</summary>
    public bool Apply(MarketplaceStatus status, DateTimeOffset sentAt)
    {
        if (sentAt < StatusAt) return false;
        // An ended subscription stays ended: a late subscribe-success of the same instant does not revive it.
        if (sentAt == StatusAt && Status == MarketplaceStatus.Unsubscribed) return false;
        Status = status;
        StatusAt = sentAt;
        return true;
    }

    public void StopReporting(string reason, DateTimeOffset at)
    {
        ReportingStopped = reason.Length > 500 ? reason[..500] : reason;
        ReportingStoppedAt = at;
    }
}

/// <summary>A registration token AWS posted, once resolved: a second post of the same token is a replay.</summary>
public sealed class MarketplaceRegistration
{
    private MarketplaceRegistration() { }

    public MarketplaceRegistration(string id, string tokenHash, string customerIdentifier, string customerAwsAccountId, string productCode, DateTimeOffset at)
    {
        Id = id;
        TokenHash = tokenHash;
        CustomerIdentifier = customerIdentifier;
        CustomerAwsAccountId = customerAwsAccountId;
        ProductCode = productCode;
        CreatedAt = at;
    }

    /// <summary>The random id in the link the buyer finishes at.</summary>
    public string Id { get; private set; } = "";
    /// <summary>SHA-256 of the token (the token itself is not kept).</summary>
    public string TokenHash { get; private set; } = "";
    public string CustomerIdentifier { get; private set; } = "";
    public string CustomerAwsAccountId { get; private set; } = "";
    public string ProductCode { get; private set; } = "";
    public DateTimeOffset CreatedAt { get; private set; }
    public string? TenantId { get; private set; }
    public DateTimeOffset? CompletedAt { get; private set; }

    public void Complete(string tenantId, DateTimeOffset at)
    {
        TenantId = tenantId;
        CompletedAt = at;
    }
}

public enum MarketplaceReportStatus { Pending, Accepted, Duplicate, Expired, NotSubscribed }

/// <summary>
/// One metering record of a tenant, written before it is sent and re-sent unchanged (timestamp, quantity) until AWS
/// answers it, so a retry is the identical record AWS de-duplicates. <see cref="Cumulative"/>: the credits reported
/// for the tenant once this one counts. A record that could not be sent within AWS's six hours is
/// <see cref="MarketplaceReportStatus.Expired"/>: it counts for nothing, and its credits go into the next record.
/// </summary>
public sealed class MarketplaceReport
{
    private MarketplaceReport() { }

    public MarketplaceReport(string tenantId, long sequence, string customerAwsAccountId, string productCode, string dimension,
        DateTimeOffset timestamp, long quantity, long cumulative, DateTimeOffset at)
    {
        TenantId = tenantId;
        Sequence = sequence;
        CustomerAwsAccountId = customerAwsAccountId;
        ProductCode = productCode;
        Dimension = dimension;
        Timestamp = timestamp;
        Quantity = quantity;
        Cumulative = cumulative;
        CreatedAt = at;
        NextAttemptAt = at;
    }

    public string TenantId { get; private set; } = "";
    public long Sequence { get; private set; }
    public string CustomerAwsAccountId { get; private set; } = "";
    public string ProductCode { get; private set; } = "";
    public string Dimension { get; private set; } = "";
    /// <summary>The record's time as sent (whole seconds); the same on every re-send.</summary>
    public DateTimeOffset Timestamp { get; private set; }
    public long Quantity { get; private set; }
    public long Cumulative { get; private set; }
    public MarketplaceReportStatus Status { get; private set; }
    public int Attempts { get; private set; }
    public DateTimeOffset NextAttemptAt { get; private set; }
    public DateTimeOffset? AnsweredAt { get; private set; }
    public string? MeteringRecordId { get; private set; }
    /// <summary>The last answer that was not a verdict (throttled, unprocessed, an error), for the operator.</summary>
    public string? LastError { get; private set; }
    public DateTimeOffset CreatedAt { get; private set; }

    public bool Counts => Status is not (MarketplaceReportStatus.Expired or MarketplaceReportStatus.NotSubscribed);

    public void Answered(MarketplaceReportStatus status, string? meteringRecordId, DateTimeOffset at)
    {
        Attempts++;
        Status = status;
        MeteringRecordId = meteringRecordId;
        AnsweredAt = at;
        LastError = null;
    }

    /// <summary>Waits 1, 2, 4 … up to 32 seconds, then a minute, before the next try.</summary>
    public void Retry(string error, DateTimeOffset at)
    {
        Attempts++;
        LastError = error.Length > 500 ? error[..500] : error;
        NextAttemptAt = at + TimeSpan.FromSeconds(Math.Min(60, Math.Pow(2, Math.Min(Attempts - 1, 6))));
    }

    public void Expire(string reason, DateTimeOffset at)
    {
        Status = MarketplaceReportStatus.Expired;
        LastError = reason;
        AnsweredAt = at;
    }
}

/// <summary>An entitlement notification read from the queue, by its SNS message id: each is applied once.</summary>
public sealed class MarketplaceNotification
{
    private MarketplaceNotification() { }

    public MarketplaceNotification(string messageId, string action, string customerIdentifier, DateTimeOffset sentAt, string outcome, DateTimeOffset at)
    {
        MessageId = messageId;
        Action = action;
        CustomerIdentifier = customerIdentifier;
        SentAt = sentAt;
        Outcome = outcome.Length > 500 ? outcome[..500] : outcome;
        ReceivedAt = at;
    }

    public string MessageId { get; private set; } = "";
    public string Action { get; private set; } = "";
    public string CustomerIdentifier { get; private set; } = "";
    public DateTimeOffset SentAt { get; private set; }
    public string Outcome { get; private set; } = "";
    public DateTimeOffset ReceivedAt { get; private set; }
}

public sealed class MarketplaceConfigurations : IEntityTypeConfiguration<MarketplaceAccount>, IEntityTypeConfiguration<MarketplaceRegistration>,
    IEntityTypeConfiguration<MarketplaceReport>, IEntityTypeConfiguration<MarketplaceNotification>
{
    public void Configure(EntityTypeBuilder<MarketplaceAccount> b)
    {
        b.ToTable("marketplace_accounts");
        b.HasKey(a => a.TenantId);
        b.Property(a => a.TenantId).HasMaxLength(64);
        b.Property(a => a.CustomerIdentifier).HasMaxLength(256);
        b.Property(a => a.CustomerAwsAccountId).HasMaxLength(32);
        b.Property(a => a.ProductCode).HasMaxLength(255);
        b.Property(a => a.Status).HasConversion(EnumText.Converter<MarketplaceStatus>()).HasMaxLength(32);
        b.Property(a => a.ReportingStopped).HasMaxLength(500);
        b.HasIndex(a => a.CustomerIdentifier).IsUnique();
        b.Ignore(a => a.Entitled);
    }

    public void Configure(EntityTypeBuilder<MarketplaceRegistration> b)
    {
        b.ToTable("marketplace_registrations");
        b.HasKey(r => r.Id);
        b.Property(r => r.Id).HasMaxLength(64);
        b.Property(r => r.TokenHash).HasMaxLength(64);
        b.Property(r => r.CustomerIdentifier).HasMaxLength(256);
        b.Property(r => r.CustomerAwsAccountId).HasMaxLength(32);
        b.Property(r => r.ProductCode).HasMaxLength(255);
        b.Property(r => r.TenantId).HasMaxLength(64);
        b.HasIndex(r => r.TokenHash).IsUnique();
    }

    public void Configure(EntityTypeBuilder<MarketplaceReport> b)
    {
        b.ToTable("marketplace_reports");
        b.HasKey(r => new { r.TenantId, r.Sequence });
        b.Property(r => r.TenantId).HasMaxLength(64);
        b.Property(r => r.CustomerAwsAccountId).HasMaxLength(32);
        b.Property(r => r.ProductCode).HasMaxLength(255);
        b.Property(r => r.Dimension).HasMaxLength(255);
        b.Property(r => r.Status).HasConversion(EnumText.Converter<MarketplaceReportStatus>()).HasMaxLength(16);
        b.Property(r => r.MeteringRecordId).HasMaxLength(128);
        b.Property(r => r.LastError).HasMaxLength(500);
        b.HasIndex(r => new { r.Status, r.NextAttemptAt });
        b.Ignore(r => r.Counts);
    }

    public void Configure(EntityTypeBuilder<MarketplaceNotification> b)
    {
        b.ToTable("marketplace_notifications");
        b.HasKey(n => n.MessageId);
        b.Property(n => n.MessageId).HasMaxLength(128);
        b.Property(n => n.Action).HasMaxLength(64);
        b.Property(n => n.CustomerIdentifier).HasMaxLength(256);
        b.Property(n => n.Outcome).HasMaxLength(500);
        b.HasIndex(n => new { n.CustomerIdentifier, n.SentAt });
    }
}
