using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Rpt.Portal.Metering;

/// <summary>
/// A tenant's usage on one UTC day, by category, model (or meter) and feature: kept by the ingestion writer
/// in the same transaction as the events, so that every report, chart and summary reads days and groups,
/// never events. Derived data: the deep verifier recomputes it from the audit records.
/// </summary>
public sealed class UsageDaily
{
    private UsageDaily() { }

    /// <summary>The feature column's value for calls sent without one (the key cannot hold NULL).</summary>
    public const string NoFeature = "";

    public string TenantId { get; private set; } = "";
    /// <summary>The UTC day of occurred_at; a billing period starts and ends on a UTC day boundary, so a day lies in one period.</summary>
    public DateOnly Day { get; private set; }
    public string Category { get; private set; } = "";
    public string Provider { get; private set; } = "";
    /// <summary>The model, or the meter of a non-token meter.</summary>
    public string Name { get; private set; } = "";
    public string Feature { get; private set; } = NoFeature;
    public bool IsMeter { get; private set; }
    public long Calls { get; private set; }
    public long InputTokens { get; private set; }
    public long OutputTokens { get; private set; }
    public long CachedInputTokens { get; private set; }
    public long MicroCredits { get; private set; }
    public long QuantityMicro { get; private set; }
}

public sealed class UsageDailyConfiguration : IEntityTypeConfiguration<UsageDaily>
{
    public void Configure(EntityTypeBuilder<UsageDaily> b)
    {
        b.ToTable("usage_daily");
        b.HasKey(d => new { d.TenantId, d.Day, d.Category, d.Provider, d.Name, d.Feature });
        b.Property(d => d.TenantId).HasMaxLength(64);
        b.Property(d => d.Category).HasMaxLength(16);
        b.Property(d => d.Provider).HasMaxLength(64);
        b.Property(d => d.Name).HasMaxLength(128);
        b.Property(d => d.Feature).HasMaxLength(128);
    }
}

/// <summary>
/// A job's usage, all its calls: kept by the writer like <see cref="UsageDaily"/> (a job's calls arrive close
/// together, so one row is updated a few times per commit at most). Tokens and credits are of billed calls.
/// </summary>
public sealed class UsageJob
{
    private UsageJob() { }

    public string TenantId { get; private set; } = "";
    public string JobId { get; private set; } = "";
    /// <summary>Every call of the job: billed, internal and failed.</summary>
    public long Calls { get; private set; }
    public long BillableCalls { get; private set; }
    public long InputTokens { get; private set; }
    public long OutputTokens { get; private set; }
    public long CachedInputTokens { get; private set; }
    public long MicroCredits { get; private set; }
    public long InternalMicroCredits { get; private set; }
    public DateTimeOffset FirstAt { get; private set; }
    public DateTimeOffset LastAt { get; private set; }
}

public sealed class UsageJobConfiguration : IEntityTypeConfiguration<UsageJob>
{
    public void Configure(EntityTypeBuilder<UsageJob> b)
    {
        b.ToTable("usage_jobs");
        b.HasKey(j => new { j.TenantId, j.JobId });
        b.Property(j => j.TenantId).HasMaxLength(64);
        b.Property(j => j.JobId).HasMaxLength(128);
        // Jobs by when they started, newest first, a page at a time: an index range, whatever the number of jobs.
        b.HasIndex(j => new { j.TenantId, j.FirstAt }).HasDatabaseName("ix_usage_jobs_tenant_first");
        // No index on micro_credits: every commit changes the credits of the jobs it touches, and moving their
        // entries in such an index cost ingestion more than sorting one period's jobs costs the Jobs page.
    }
}

/// <summary>
/// A tenant's billed usage per API key, project and end user in a billing period, with the figures of the last UTC day
/// that had any (so "today" is exact while today is that day): one row per subject and period, kept by the ingestion
/// writer in the same transaction as the events, so that a budget's use is one row read whatever the number of events,
/// keys, projects or end users, and an event adds to one row per subject (not one per window). Derived data: the deep
/// verifier recomputes it from the audit records.
/// </summary>
public sealed class UsageScope
{
    private UsageScope() { }

    public const string ApiKey = "api_key", Project = "project", User = "user";
    public const string Day = "day", Period = "period";

    public string TenantId { get; private set; } = "";
    /// <summary><see cref="ApiKey"/>, <see cref="Project"/> or <see cref="User"/>.</summary>
    public string Scope { get; private set; } = "";
    public DateOnly PeriodStart { get; private set; }
    /// <summary>The key's id, the project or the end user's id.</summary>
    public string Value { get; private set; } = "";
    /// <summary>Billed calls and µcr in the period.</summary>
    public long Calls { get; private set; }
    public long MicroCredits { get; private set; }
    /// <summary>The last UTC day of the period with billed usage (an event of an earlier day, arriving late, counts for the period only).</summary>
    public DateOnly LastDay { get; private set; }
    public long DayCalls { get; private set; }
    public long DayMicroCredits { get; private set; }
}

public sealed class UsageScopeConfiguration : IEntityTypeConfiguration<UsageScope>
{
    public void Configure(EntityTypeBuilder<UsageScope> b)
    {
        b.ToTable("usage_scopes");
        b.HasKey(s => new { s.TenantId, s.Scope, s.PeriodStart, s.Value });
        b.Property(s => s.TenantId).HasMaxLength(64);
        b.Property(s => s.Scope).HasMaxLength(16);
        b.Property(s => s.Value).HasMaxLength(128);
    }
}

/// <summary>What a commit adds to one <c>usage_scopes</c> row: the period's sums and those of the latest day among its events.</summary>
public sealed class ScopeSum
{
    public long Calls, MicroCredits, DayCalls, DayMicroCredits;
    public string Day = "";

    /// <summary>Adds a call; only the latest day's figures are kept (the rule the upsert applies to the stored row).</summary>
    public void Add(string day, long micro)
    {
        Calls++;
        MicroCredits += micro;
        var order = string.CompareOrdinal(day, Day);
        if (order > 0) (Day, DayCalls, DayMicroCredits) = (day, 1, micro);
        else if (order == 0)
        {
            DayCalls++;
            DayMicroCredits += micro;
        }
    }
}

/// <summary>The sums a commit adds to <c>usage_scopes</c>, by (tenant, scope, period start, value).</summary>
public static class UsageScopeSums
{
    /// <summary>Adds one billed call to its key's, project's and end user's rows.</summary>
    public static void Add(Dictionary<(string, string, string, string), ScopeSum> sums, in RatedUsage r)
    {
        if (r.ApiKeyId is { } key) Add(sums, in r, UsageScope.ApiKey, key);
        if (r.Project is { } project) Add(sums, in r, UsageScope.Project, project);
        if (r.UserId is { } user) Add(sums, in r, UsageScope.User, user);
    }

    private static void Add(Dictionary<(string, string, string, string), ScopeSum> sums, in RatedUsage r, string scope, string value)
    {
        var key = (r.TenantId, scope, r.PeriodStart, value);
        if (!sums.TryGetValue(key, out var sum)) sums[key] = sum = new ScopeSum();
        sum.Add(r.Day, r.MicroCredits);
    }
}
