using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Ledger;

/// <summary>
/// Allocations grant credits, consumption draws them down, an expiry records what a grant still held
/// when it lapsed, and a void what it held when an operator cancelled it (docs/RULES.md, "Credit grants").
/// </summary>
public enum EntryKind { Allocation, Consumption, Expiry, Void }

/// <summary>Where an allocation came from, or <see cref="Usage"/> for a flush of rated usage.</summary>
public enum EntrySource { Signup, Renewal, PlanChange, TopUp, Adjustment, Usage }

/// <summary>
/// One immutable line of a tenant's ledger. Amounts are positive micro-credits; the kind says which way
/// they count. Each entry is chained to the one before it by <see cref="Hash"/>.
/// </summary>
public sealed class LedgerEntry
{
    private LedgerEntry() { }

    internal LedgerEntry(string tenantId, long seq, EntryKind kind, EntrySource source, long amountMicroCredits,
        DateOnly periodStart, string idempotencyKey, string? description, long? coversFromSeq, long? coversToSeq,
        long? eventCount, string? eventsDigest, DateTimeOffset createdAt, string prevHash,
        DateTimeOffset? expiresAt = null, long? grantSeq = null)
    {
        ExpiresAt = expiresAt is { } x ? DateTimeOffset.FromUnixTimeMilliseconds(x.ToUnixTimeMilliseconds()) : null;
        GrantSeq = grantSeq;
        TenantId = tenantId;
        Seq = seq;
        Kind = kind;
        Source = source;
        AmountMicroCredits = amountMicroCredits;
        PeriodStart = periodStart;
        IdempotencyKey = idempotencyKey;
        Description = description;
        CoversFromSeq = coversFromSeq;
        CoversToSeq = coversToSeq;
        EventCount = eventCount;
        EventsDigest = eventsDigest;
        CreatedAt = DateTimeOffset.FromUnixTimeMilliseconds(createdAt.ToUnixTimeMilliseconds());
        PrevHash = prevHash;
        Hash = LedgerHash.Compute(this);
    }

    public long Id { get; private set; }
    /// <summary>An allocation's expiry (a grant without one never expires); null on other kinds.</summary>
    public DateTimeOffset? ExpiresAt { get; private set; }
    /// <summary>On an expiry or a void entry: the <see cref="Seq"/> of the grant it closes.</summary>
    public long? GrantSeq { get; private set; }
    public string TenantId { get; private set; } = "";
    /// <summary>1, 2, 3 … within the tenant; a gap or a repeat breaks the chain.</summary>
    public long Seq { get; private set; }
    public EntryKind Kind { get; private set; }
    public EntrySource Source { get; private set; }
    public long AmountMicroCredits { get; private set; }
    public DateOnly PeriodStart { get; private set; }
    public string IdempotencyKey { get; private set; } = "";
    public string? Description { get; private set; }
    /// <summary>For consumption: the usage events with Seq in (CoversFromSeq, CoversToSeq] of this tenant and period.</summary>
    public long? CoversFromSeq { get; private set; }
    public long? CoversToSeq { get; private set; }
    public long? EventCount { get; private set; }
    /// <summary>SHA-256 over the canonical form of every covered audit record, in Seq order.</summary>
    public string? EventsDigest { get; private set; }
    public DateTimeOffset CreatedAt { get; private set; }
    public string PrevHash { get; private set; } = "";
    public string Hash { get; private set; } = "";

    public decimal Credits => AmountMicroCredits / (decimal)Credit.MicroPerCredit;
}

public sealed class LedgerEntryConfiguration : IEntityTypeConfiguration<LedgerEntry>
{
    public void Configure(EntityTypeBuilder<LedgerEntry> b)
    {
        b.ToTable("ledger_entries", t => t.HasCheckConstraint("ck_ledger_amount_positive", "amount_micro_credits > 0"));
        b.HasKey(e => e.Id);
        b.Property(e => e.TenantId).HasMaxLength(64);
        b.Property(e => e.Kind).HasConversion(EnumText.Converter<EntryKind>()).HasMaxLength(16);
        b.Property(e => e.Source).HasConversion(EnumText.Converter<EntrySource>()).HasMaxLength(16);
        b.Property(e => e.IdempotencyKey).HasMaxLength(200);
        b.Property(e => e.Description).HasMaxLength(500);
        b.Property(e => e.EventsDigest).HasMaxLength(64);
        b.Property(e => e.PrevHash).HasMaxLength(64);
        b.Property(e => e.Hash).HasMaxLength(64);
        b.Ignore(e => e.Credits);
        b.HasIndex(e => new { e.TenantId, e.Seq }).IsUnique().HasDatabaseName("ux_ledger_tenant_seq");
        b.HasIndex(e => new { e.TenantId, e.IdempotencyKey }).IsUnique().HasDatabaseName("ux_ledger_tenant_key");
        // Covers the draw-down's sums of consumption between two grants (CreditGrants): no table row is read.
        b.HasIndex(e => new { e.TenantId, e.Kind, e.Seq, e.PeriodStart, e.AmountMicroCredits }).HasDatabaseName("ix_ledger_tenant_kind_seq");
        b.HasIndex(e => new { e.TenantId, e.PeriodStart, e.Kind }).HasDatabaseName("ix_ledger_tenant_period");
    }
}

/// <summary>
/// The record of one flush: every usage event with Seq ≤ <see cref="ThroughSeq"/> is in the ledger.
/// </summary>
public sealed class FlushRun
{
    private FlushRun() { }

    public long Id { get; private set; }
    public long ThroughSeq { get; private set; }
    public int Entries { get; private set; }
    public DateTimeOffset FlushedAt { get; private set; }
}

public sealed class FlushRunConfiguration : IEntityTypeConfiguration<FlushRun>
{
    public void Configure(EntityTypeBuilder<FlushRun> b)
    {
        b.ToTable("flush_runs");
        b.HasKey(f => f.Id);
    }
}
