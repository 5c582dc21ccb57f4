using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Rpt.Portal.Ledger;

/// <summary>
/// What a tenant's ledger entries of one kind add up to in one billing period, and how many there are: kept by
/// <see cref="LedgerAppender"/> in the transaction that appends each entry, so that a balance reads a few rows
/// however many entries the period holds (a flush every 5 s appends about 17,000 consumption entries a day to a busy
/// tenant's period). Derived, never the record: the entries are, and <see cref="VerifyLedger"/> checks these sums
/// against them.
/// </summary>
public sealed class LedgerPeriodSum
{
    private LedgerPeriodSum() { }

    public string TenantId { get; private set; } = "";
    public DateOnly PeriodStart { get; private set; }
    public EntryKind Kind { get; private set; }
    public long MicroCredits { get; private set; }
    public long Entries { get; private set; }

    /// <summary>Adds one entry to its period's sum, inside the appender's transaction (both engines run this upsert).</summary>
    internal static Task AddAsync(Data.ApplicationDbContext db, LedgerEntry entry, CancellationToken cancellationToken) =>
        db.Database.ExecuteSqlInterpolatedAsync($"""
            INSERT INTO ledger_period_sums (tenant_id, period_start, kind, micro_credits, entries)
            VALUES ({entry.TenantId}, {entry.PeriodStart}, {EnumText.ToText(entry.Kind)}, {entry.AmountMicroCredits}, 1)
            ON CONFLICT (tenant_id, period_start, kind) DO UPDATE
            SET micro_credits = ledger_period_sums.micro_credits + excluded.micro_credits, entries = ledger_period_sums.entries + 1
            """, cancellationToken);
}

public sealed class LedgerPeriodSumConfiguration : IEntityTypeConfiguration<LedgerPeriodSum>
{
    public void Configure(EntityTypeBuilder<LedgerPeriodSum> b)
    {
        b.ToTable("ledger_period_sums");
        b.HasKey(s => new { s.TenantId, s.PeriodStart, s.Kind });
        b.Property(s => s.TenantId).HasMaxLength(64);
        b.Property(s => s.Kind).HasConversion(EnumText.Converter<EntryKind>()).HasMaxLength(16);
    }
}
