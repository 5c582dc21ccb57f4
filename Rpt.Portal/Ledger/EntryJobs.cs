using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Rpt.Portal.Ledger;

/// <summary>
/// The jobs a consumption entry charged most (at most <see cref="LedgerHistory.MaxJobsPerRecord"/> + 1), written by
/// the flusher in the same transaction as the entry, from the audit records it read anyway: the consumption
/// history shows them without re-reading the entry's events. Derived data, outside the hash chain.
/// </summary>
public sealed class EntryJob
{
    private EntryJob() { }

    public EntryJob(string tenantId, long entrySeq, int rank, string? jobId, long calls, long microCredits)
    {
        TenantId = tenantId;
        EntrySeq = entrySeq;
        Rank = rank;
        JobId = jobId;
        Calls = calls;
        MicroCredits = microCredits;
    }

    public string TenantId { get; private set; } = "";
    public long EntrySeq { get; private set; }
    /// <summary>0 for the job charged most.</summary>
    public int Rank { get; private set; }
    /// <summary>Null for the calls sent without a job.</summary>
    public string? JobId { get; private set; }
    public long Calls { get; private set; }
    public long MicroCredits { get; private set; }
}

public sealed class EntryJobConfiguration : IEntityTypeConfiguration<EntryJob>
{
    public void Configure(EntityTypeBuilder<EntryJob> b)
    {
        b.ToTable("ledger_entry_jobs");
        b.HasKey(j => new { j.TenantId, j.EntrySeq, j.Rank });
        b.Property(j => j.TenantId).HasMaxLength(64);
        b.Property(j => j.JobId).HasMaxLength(128);
    }
}
