using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Rpt.Portal.Ledger;

namespace Rpt.Portal.Alerts;

/// <summary>
/// What a rule watches. <see cref="Anomaly"/>: today's consumption (UTC) above <c>threshold</c> × the mean of the 7 days
/// before, and at least <see cref="EvaluateAlerts.AnomalyMinimumCredits"/>; a hint, on plans with <c>anomaly_hints</c>,
/// at most once a day.
/// </summary>
public enum AlertKind { PercentConsumed, CreditsRemaining, CreditsConsumed, RunwayDays, Anomaly }

[Flags]
public enum AlertChannels { None = 0, Email = 1, Webhook = 2 }

/// <summary>A tenant's threshold: when the balance crosses it, the chosen channels hear once a billing period.</summary>
public sealed class AlertRule
{
    private AlertRule() { }

    public AlertRule(string tenantId, AlertKind kind, decimal threshold, AlertChannels channels, DateTimeOffset at, IReadOnlyList<string>? recipients = null)
    {
        Recipients = recipients is { Count: > 0 } ? string.Join(',', recipients) : null;
        TenantId = tenantId;
        Kind = kind;
        Threshold = threshold;
        Channels = channels;
        Enabled = true;
        CreatedAt = at;
    }

    public long Id { get; private set; }
    public string TenantId { get; private set; } = "";
    public AlertKind Kind { get; private set; }
    /// <summary>Percent (0–1000), credits, or days, by <see cref="Kind"/>.</summary>
    public decimal Threshold { get; private set; }
    public AlertChannels Channels { get; private set; }
    public bool Enabled { get; private set; }
    public DateTimeOffset CreatedAt { get; private set; }
    /// <summary>The members the mail goes to (comma-separated emails); null: the owners.</summary>
    public string? Recipients { get; private set; }

    public IReadOnlyList<string> RecipientList => Recipients?.Split(',') ?? [];

    public void Disable() => Enabled = false;

    /// <summary>A new threshold or channels: a firing of this period stays (the rule is not re-armed by an edit).</summary>
    public void Change(decimal threshold, AlertChannels channels, IReadOnlyList<string>? recipients)
    {
        Threshold = threshold;
        Channels = channels;
        Recipients = recipients is { Count: > 0 } ? string.Join(',', recipients) : null;
    }
}

/// <summary>
/// That a rule fired in a period: written before anything is sent, under a unique key
/// (<c>{tenant}:{rule}:{period}</c>), so a restart or a second instance never fires it twice.
/// </summary>
public sealed class AlertFiring
{
    private AlertFiring() { }

    public AlertFiring(string key, string tenantId, long ruleId, DateOnly periodStart, string message, DateTimeOffset at)
    {
        Key = key;
        TenantId = tenantId;
        RuleId = ruleId;
        PeriodStart = periodStart;
        Message = message;
        FiredAt = at;
    }

    public string Key { get; private set; } = "";
    public string TenantId { get; private set; } = "";
    public long RuleId { get; private set; }
    public DateOnly PeriodStart { get; private set; }
    public string Message { get; private set; } = "";
    public DateTimeOffset FiredAt { get; private set; }
}

/// <summary>One attempt to deliver a firing over one channel to one recipient.</summary>
public sealed class AlertDelivery
{
    private AlertDelivery() { }

    public AlertDelivery(string firingKey, string tenantId, AlertChannels channel, string recipient, bool succeeded, string? error, DateTimeOffset at)
    {
        FiringKey = firingKey;
        TenantId = tenantId;
        Channel = channel;
        Recipient = recipient;
        Succeeded = succeeded;
        Error = error is { Length: > 500 } ? error[..500] : error;
        At = at;
    }

    public long Id { get; private set; }
    public string FiringKey { get; private set; } = "";
    public string TenantId { get; private set; } = "";
    public AlertChannels Channel { get; private set; }
    public string Recipient { get; private set; } = "";
    public bool Succeeded { get; private set; }
    public string? Error { get; private set; }
    public DateTimeOffset At { get; private set; }
}

public sealed class AlertConfiguration : IEntityTypeConfiguration<AlertRule>, IEntityTypeConfiguration<AlertFiring>, IEntityTypeConfiguration<AlertDelivery>
{
    public void Configure(EntityTypeBuilder<AlertRule> b)
    {
        b.ToTable("alert_rules");
        b.HasKey(r => r.Id);
        b.Property(r => r.TenantId).HasMaxLength(64);
        b.Property(r => r.Kind).HasConversion(EnumText.Converter<AlertKind>()).HasMaxLength(32);
        b.Property(r => r.Channels).HasConversion<int>();
        b.Property(r => r.Recipients).HasMaxLength(2000);
        b.Ignore(r => r.RecipientList);
        b.HasIndex(r => r.TenantId);
    }

    public void Configure(EntityTypeBuilder<AlertFiring> b)
    {
        b.ToTable("alert_firings");
        b.HasKey(f => f.Key);
        b.Property(f => f.Key).HasMaxLength(200);
        b.Property(f => f.TenantId).HasMaxLength(64);
        b.Property(f => f.Message).HasMaxLength(1000);
        b.HasIndex(f => new { f.TenantId, f.FiredAt });
    }

    public void Configure(EntityTypeBuilder<AlertDelivery> b)
    {
        b.ToTable("alert_deliveries");
        b.HasKey(d => d.Id);
        b.Property(d => d.FiringKey).HasMaxLength(200);
        b.Property(d => d.TenantId).HasMaxLength(64);
        b.Property(d => d.Channel).HasConversion(EnumText.Converter<AlertChannels>()).HasMaxLength(16);
        b.Property(d => d.Recipient).HasMaxLength(320);
        b.Property(d => d.Error).HasMaxLength(500);
        b.HasIndex(d => new { d.TenantId, d.At });
    }
}

/// <summary>Until when a user has seen the alerts (the bell counts the firings after it).</summary>
public sealed class AlertSeen
{
    private AlertSeen() { }

    public AlertSeen(string userId, DateTimeOffset at)
    {
        UserId = userId;
        SeenAt = at;
    }

    public string UserId { get; private set; } = "";
    public DateTimeOffset SeenAt { get; private set; }

    public void Seen(DateTimeOffset at) => SeenAt = at;
}

public sealed class AlertSeenConfiguration : IEntityTypeConfiguration<AlertSeen>
{
    public void Configure(EntityTypeBuilder<AlertSeen> b)
    {
        b.ToTable("alert_seen");
        b.HasKey(s => s.UserId);
        b.Property(s => s.UserId).HasMaxLength(450);
    }
}
