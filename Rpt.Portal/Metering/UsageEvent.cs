using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;

namespace Rpt.Portal.Metering;

public enum UsageStatus { Succeeded, Failed }

/// <summary>
/// The durable audit record of one AI call, as accepted and rated. Written by <see cref="UsageIngestor"/>
/// (prepared ADO.NET commands); EF Core reads it. The database refuses UPDATE and DELETE.
/// </summary>
public sealed class UsageEvent
{
    private UsageEvent() { }

    /// <summary>Global, gap-free-in-commit-order sequence; consumption entries name ranges of it.</summary>
    public long Seq { get; private set; }
    public string TenantId { get; private set; } = "";
    public string EventId { get; private set; } = "";
    public DateTimeOffset OccurredAt { get; private set; }
    public DateTimeOffset ReceivedAt { get; private set; }
    public DateOnly PeriodStart { get; private set; }
    public string Provider { get; private set; } = "";
    public string? Model { get; private set; }
    public string? Meter { get; private set; }
    public decimal? Quantity { get; private set; }
    public long InputTokens { get; private set; }
    public long OutputTokens { get; private set; }
    public long CachedInputTokens { get; private set; }
    public string? Feature { get; private set; }
    public string? JobId { get; private set; }

    /// <summary>The rowid of the job's <c>usage_jobs</c> row: derived, so that the index of a job's calls grows at its end
    /// as jobs arrive, where an index on the client's job id would insert at random places.</summary>
    public long? JobRef { get; private set; }
    public string? UserId { get; private set; }
    public UsageStatus Status { get; private set; }
    public bool Internal { get; private set; }
    /// <summary>Counts against the tenant's balance: succeeded and not internal.</summary>
    public bool Billable { get; private set; }
    public long? PriceId { get; private set; }
    public long RuleId { get; private set; }
    public decimal CostUsd { get; private set; }
    /// <summary>The rated charge; zero for a failed call. Internal calls are rated but not billed.</summary>
    public long MicroCredits { get; private set; }
    /// <summary>The project the call was made for: sent with the event, or stamped by a key bound to a project.</summary>
    public string? Project { get; private set; }
    /// <summary>The id of the API key that sent the event (a tenant's key or the platform's).</summary>
    public string? ApiKeyId { get; private set; }

    public long TotalTokens => InputTokens + OutputTokens + CachedInputTokens;
}

public sealed class UsageEventConfiguration : IEntityTypeConfiguration<UsageEvent>
{
    public static readonly ValueConverter<UsageStatus, string> StatusConverter = new(
        v => v == UsageStatus.Failed ? "failed" : "succeeded",
        v => v == "failed" ? UsageStatus.Failed : UsageStatus.Succeeded);

    public void Configure(EntityTypeBuilder<UsageEvent> b)
    {
        b.ToTable("usage_events");
        b.HasKey(e => e.Seq);
        // No AUTOINCREMENT: it costs an extra write per insert, and seq can never be reused anyway because
        // the database refuses to delete an audit record (max(rowid) + 1 only grows).
        b.Property(e => e.Seq).HasAnnotation("Sqlite:Autoincrement", false);
        b.Property(e => e.TenantId).HasMaxLength(64);
        b.Property(e => e.EventId).HasMaxLength(128);
        b.Property(e => e.Provider).HasMaxLength(64);
        b.Property(e => e.Model).HasMaxLength(128);
        b.Property(e => e.Meter).HasMaxLength(128);
        b.Property(e => e.Feature).HasMaxLength(128);
        b.Property(e => e.JobId).HasMaxLength(128);
        b.Property(e => e.UserId).HasMaxLength(128);
        b.Property(e => e.Project).HasMaxLength(128);
        b.Property(e => e.ApiKeyId).HasMaxLength(36);
        b.Property(e => e.Status).HasConversion(StatusConverter).HasMaxLength(16);
        b.Ignore(e => e.TotalTokens);
        // No unique index on (tenant_id, event_id): exactly-once is kept by the writer's EventIdIndex, which a
        // B-tree of random client ids cannot match at ingestion speed (docs/PERFORMANCE.md); the deep verifier
        // checks that no tenant's id appears twice.
        b.HasIndex(e => new { e.TenantId, e.JobRef }).HasDatabaseName("ix_usage_events_tenant_jobref");
    }
}

/// <summary>
/// Running totals per tenant, period, category and model (or meter), kept in the same transaction as
/// the events they count. They make a balance an O(1) read that always includes unflushed usage; the
/// ledger verifier reconciles them against the audit records.
/// </summary>
public sealed class UsageTotal
{
    private UsageTotal() { }

    public const string Billable = "billable";
    public const string Internal = "internal";
    public const string Failed = "failed";

    public string TenantId { get; private set; } = "";
    public DateOnly PeriodStart { get; private set; }
    public string Category { get; private set; } = "";
    public string Provider { get; private set; } = "";
    /// <summary>The model, or the meter for a non-token meter.</summary>
    public string Name { get; private set; } = "";
    public bool IsMeter { get; private set; }
    public long Events { get; private set; }
    public long InputTokens { get; private set; }
    public long OutputTokens { get; private set; }
    public long CachedInputTokens { get; private set; }
    public long MicroCredits { get; private set; }
    /// <summary>Units of a non-token meter, in millionths (quantities have at most six decimals).</summary>
    public long QuantityMicro { get; private set; }

    public long TotalTokens => InputTokens + OutputTokens + CachedInputTokens;
}

public sealed class UsageTotalConfiguration : IEntityTypeConfiguration<UsageTotal>
{
    public void Configure(EntityTypeBuilder<UsageTotal> b)
    {
        b.ToTable("usage_totals");
        b.HasKey(t => new { t.TenantId, t.PeriodStart, t.Category, t.Provider, t.Name });
        b.Property(t => t.TenantId).HasMaxLength(64);
        b.Property(t => t.Category).HasMaxLength(16);
        b.Property(t => t.Provider).HasMaxLength(64);
        b.Property(t => t.Name).HasMaxLength(128);
        b.Ignore(t => t.TotalTokens);
    }
}
