using System.Data.Common;

namespace Rpt.Portal.Metering;

/// <summary>The outcome of one row handed to <see cref="IUsageWriter"/>.</summary>
public enum WriteOutcome : byte { Accepted, Duplicate, OverPeriodLimit }


/// <summary>
/// One audit record as <see cref="IUsageStore.VisitRange"/> hands it over: its text columns as UTF-8 bytes, which
/// are valid only during the call. <see cref="Canonical"/> is the UTF-8 of the record's canonical form
/// (<see cref="AuditCanonicalForm"/>), what the ledger's digests are taken over.
/// </summary>
public readonly ref struct AuditRecordView(ReadOnlySpan<byte> tenantId, ReadOnlySpan<byte> periodStart, bool billable, long microCredits,
    ReadOnlySpan<byte> jobId, bool hasJob, ReadOnlySpan<byte> canonical)
{
    public ReadOnlySpan<byte> TenantId { get; } = tenantId;
    public ReadOnlySpan<byte> PeriodStart { get; } = periodStart;
    public bool Billable { get; } = billable;
    public long MicroCredits { get; } = microCredits;
    public ReadOnlySpan<byte> JobId { get; } = jobId;
    public bool HasJob { get; } = hasJob;
    public ReadOnlySpan<byte> Canonical { get; } = canonical;
}

/// <summary>Called with each record of <see cref="IUsageStore.VisitRange"/>.</summary>
public delegate void AuditRecordVisitor(in AuditRecordView record);

/// <summary>One row of <c>usage_daily</c>; <see cref="Feature"/> is null for calls sent without one.</summary>
public readonly record struct DailyRow(DateOnly Day, string Category, string Provider, string Name, string? Feature, bool IsMeter, long Calls,
    long InputTokens, long OutputTokens, long CachedInputTokens, long MicroCredits, long QuantityMicro)
{
    public long TotalTokens => InputTokens + OutputTokens + CachedInputTokens;
}

/// <summary>One row of <c>usage_jobs</c>, with its rowid for keyset pagination.</summary>
public readonly record struct JobRow(long RowId, string JobId, long Calls, long BillableCalls, long InputTokens, long OutputTokens, long CachedInputTokens,
    long MicroCredits, long InternalMicroCredits, long FirstAtMs, long LastAtMs);


/// <summary>
/// What metering and the ledger need of the audit records (<c>usage_events</c>) and their rollups (<c>usage_totals</c>,
/// <c>usage_daily</c>, <c>usage_jobs</c>): the ingestion writer and the reads. Each engine implements it in its own
/// folder (Data/Sqlite, Data/Postgres). A period or a day is "yyyy-MM-dd". Methods that take a transaction read
/// inside the caller's snapshot (<see cref="Data.PortalDatabase.BeginRead"/>).
/// </summary>
public interface IUsageStore
{
    /// <summary>A writer for one thread: the ingestion pipeline's, or the command line's.</summary>
    IUsageWriter OpenWriter();

    /// <summary>The highest seq stored: every audit record has seq ≤ this, and none is committed below it later.</summary>
    long MaxSeq(DbConnection connection, DbTransaction? tx = null);

    /// <summary>
    /// The audit records with seq in (<paramref name="fromSeq"/>, <paramref name="throughSeq"/>], in seq order, optionally of
    /// one tenant and one period, each handed to <paramref name="visit"/> in place with its canonical form. Inside the
    /// caller's <paramref name="tx"/> every chunk reads in it; without one, each chunk is its own short read.
    /// </summary>
    void VisitRange(DbConnection connection, DbTransaction? tx, long fromSeq, long throughSeq, string? tenantId, string? periodStart,
        AuditRecordVisitor visit);

    /// <summary>Billable µcr per period of a tenant, from the audit records (all, or those with seq ≤ <paramref name="throughSeq"/>), in 128 bits.</summary>
    Dictionary<string, Int128> BillablePerPeriod(DbConnection connection, DbTransaction tx, string tenantId, long throughSeq = long.MaxValue);

    /// <summary>Billable µcr per period of a tenant, from the running totals.</summary>
    Dictionary<string, Int128> BillableTotalsPerPeriod(DbConnection connection, DbTransaction tx, string tenantId);

    /// <summary>Event ids a tenant has more than once (there should be none), with how often, at most <paramref name="limit"/>.</summary>
    List<(string EventId, long Times)> RepeatedEventIds(DbConnection connection, DbTransaction tx, string tenantId, int limit);

    /// <summary>Calls and charged µcr per job among the audit records one consumption entry covers.</summary>
    List<(string? JobId, long Calls, long MicroCredits)> JobsInRange(DbConnection connection, string tenantId, string periodStart,
        long fromSeq, long throughSeq, int limit);

    /// <summary>Rows of <c>usage_daily</c> for days in [<paramref name="from"/>, <paramref name="toExclusive"/>), of one category or all.</summary>
    List<DailyRow> Daily(DbConnection connection, DbTransaction? tx, string tenantId, DateOnly from, DateOnly toExclusive, string? category);

    /// <summary>Jobs that started in [<paramref name="fromMs"/>, <paramref name="toMs"/>), in <paramref name="order"/>, after the
    /// keyset position <paramref name="after"/> (or skipping <paramref name="offset"/>), at most <paramref name="limit"/>.</summary>
    List<JobRow> Jobs(DbConnection connection, string tenantId, long fromMs, long toMs, (long FirstAtMs, long RowId)? after, int offset, int limit,
        JobOrder order = JobOrder.Newest);

    /// <summary>The row id of a job's rollup (the job_ref of its calls), or null for a job never seen.</summary>
    long? JobRefOf(DbConnection connection, string tenantId, string jobId);

    /// <summary>Audit records whose job_ref does not point at their own job's row (there should be none), at most <paramref name="limit"/> seqs.</summary>
    List<long> MisreferencedJobs(DbConnection connection, DbTransaction tx, string tenantId, int limit);

    /// <summary>Calls of one job (every category), from its rollup.</summary>
    long JobCalls(DbConnection connection, string tenantId, string jobId);

    /// <summary>The daily rollups as stored and as recomputed from the tenant's audit records, each row as text by its key.</summary>
    (Dictionary<string, string> Stored, Dictionary<string, string> Recomputed) DailyReconciliation(DbConnection connection, DbTransaction tx, string tenantId);

    /// <summary>The job rollups as stored and as recomputed from the tenant's audit records, each row as text by its key.</summary>
    (Dictionary<string, string> Stored, Dictionary<string, string> Recomputed) JobReconciliation(DbConnection connection, DbTransaction tx, string tenantId);

    /// <summary>The rollups by API key, project and end user (<c>usage_scopes</c>) as stored and as recomputed from the tenant's billed audit records.</summary>
    (Dictionary<string, string> Stored, Dictionary<string, string> Recomputed) ScopeReconciliation(DbConnection connection, DbTransaction tx, string tenantId);

    /// <summary>
    /// The SQL (with EF Core's {0} placeholders) that lists a tenant's matching audit records by seq, newest first or oldest
    /// first, through the plan the engine reads fastest given <paramref name="matching"/> of <paramref name="stored"/> records.
    /// </summary>
    (string Sql, object[] Parameters) CallsQuery(string tenantId, long matching, long stored, int page, bool newestFirst,
        DateTimeOffset? from, DateTimeOffset? to, string? model, string? feature, string? jobId, long? beforeSeq, long? afterSeq, int? limit = null);

    /// <summary>A tenant's calls (every period and category), from the running totals.</summary>
    long TenantCalls(DbConnection connection, string tenantId);
}

/// <summary>The ingestion writer: one per thread, disposed when the thread stops.</summary>
public interface IUsageWriter : IDisposable
{
    /// <summary>Writes every row of every batch in one transaction, exactly once per (tenant, event id) for all time; one outcome per row.</summary>
    WriteOutcome[][] Write(IReadOnlyList<ArraySegment<RatedUsage>> batches, long receivedAtMs, long maxPeriodMicroCredits, long maxPeriodTokens,
        out HashSet<string> tenants);

    /// <summary>Between two commits: the engine's housekeeping that only the writer can do (SQLite: starting the WAL over).</summary>
    void BetweenCommits(long nowMs);
}
