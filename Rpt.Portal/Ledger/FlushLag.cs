using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Rpt.Portal.Ledger;

/// <summary>
/// A tenant whose flush failed: its usage after <see cref="FromSeq"/> is not yet in its ledger, while every
/// other tenant's flushes went on. The flusher retries it alone and removes the row once it caught up.
/// Its balance still counts every acknowledged event (running totals); only the consumption entries lag.
/// </summary>
public sealed class FlushLag
{
    private FlushLag() { }

    public FlushLag(string tenantId, long fromSeq, string error, DateTimeOffset since)
    {
        TenantId = tenantId;
        FromSeq = fromSeq;
        Error = error.Length > 500 ? error[..500] : error;
        Since = since;
        LastTriedAt = since;
    }

    public string TenantId { get; private set; } = "";
    /// <summary>The tenant's usage with seq above this is not yet in its ledger.</summary>
    public long FromSeq { get; private set; }
    public string Error { get; private set; } = "";
    public DateTimeOffset Since { get; private set; }
    public DateTimeOffset LastTriedAt { get; private set; }
    public int Attempts { get; private set; } = 1;

    public void Failed(string error, DateTimeOffset at)
    {
        Error = error.Length > 500 ? error[..500] : error;
        LastTriedAt = at;
        Attempts++;
    }
}

public sealed class FlushLagConfiguration : IEntityTypeConfiguration<FlushLag>
{
    public void Configure(EntityTypeBuilder<FlushLag> b)
    {
        b.ToTable("flush_lags");
        b.HasKey(l => l.TenantId);
        b.Property(l => l.TenantId).HasMaxLength(64);
        b.Property(l => l.Error).HasMaxLength(500);
    }
}
