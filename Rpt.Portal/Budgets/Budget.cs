using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Budgets;

/// <summary>
/// A cap on the credits one API key, one project or one end user (or each end user) of a tenant may use in a UTC day
/// or a billing period (docs/RULES.md, "Budgets"). A hard budget makes the quota check and reservations refuse past it;
/// a soft one only alerts. Usage that already happened is always recorded and billed: a budget never drops an event.
/// </summary>
public sealed class Budget
{
    private Budget() { }

    public Budget(string tenantId, string scope, string subject, long microCredits, string window, string mode, string alertAt,
        DateTimeOffset createdAt, string createdBy)
    {
        Id = Guid.NewGuid();
        TenantId = tenantId;
        Scope = scope;
        Subject = subject;
        MicroCredits = microCredits;
        Window = window;
        Mode = mode;
        AlertAt = alertAt;
        CreatedAt = createdAt;
        CreatedBy = createdBy;
    }

    /// <summary>A budget as stored, read by a statement of its own (<see cref="BudgetService.ListSql"/>).</summary>
    internal static Budget Stored(Guid id, string tenantId, string scope, string subject, long microCredits, string window, string mode, string alertAt,
        DateTimeOffset createdAt, string createdBy) => new()
    {
        Id = id, TenantId = tenantId, Scope = scope, Subject = subject, MicroCredits = microCredits, Window = window, Mode = mode,
        AlertAt = alertAt, CreatedAt = createdAt, CreatedBy = createdBy,
    };

    public const string Hard = "hard", Soft = "soft";

    /// <summary>The subject of a user budget that applies to each end user on its own.</summary>
    public const string EachUser = "*";

    public Guid Id { get; private set; }
    public string TenantId { get; private set; } = "";
    /// <summary><see cref="UsageScope.ApiKey"/>, <see cref="UsageScope.Project"/> or <see cref="UsageScope.User"/>.</summary>
    public string Scope { get; private set; } = "";
    /// <summary>The key's id, the project, the end user's id, or <see cref="EachUser"/>.</summary>
    public string Subject { get; private set; } = "";
    public long MicroCredits { get; private set; }
    /// <summary><see cref="UsageScope.Day"/> (a UTC day) or <see cref="UsageScope.Period"/> (the billing period).</summary>
    public string Window { get; private set; } = "";
    /// <summary><see cref="Hard"/> or <see cref="Soft"/>.</summary>
    public string Mode { get; private set; } = "";
    /// <summary>The shares of the budget (percent, comma-separated) at which an alert is sent, once per window each.</summary>
    public string AlertAt { get; private set; } = "";
    public DateTimeOffset CreatedAt { get; private set; }
    public string CreatedBy { get; private set; } = "";

    public bool IsHard => Mode == Hard;
    public IReadOnlyList<int> AlertShares => AlertAt.Length == 0 ? [] : AlertAt.Split(',').Select(int.Parse).ToList();
}

public sealed class BudgetConfiguration : IEntityTypeConfiguration<Budget>
{
    public void Configure(EntityTypeBuilder<Budget> b)
    {
        b.ToTable("budgets", t => t.HasCheckConstraint("ck_budget_positive", "micro_credits > 0"));
        b.HasKey(x => x.Id);
        b.Property(x => x.TenantId).HasMaxLength(64);
        b.Property(x => x.Scope).HasMaxLength(16);
        b.Property(x => x.Subject).HasMaxLength(128);
        b.Property(x => x.Window).HasMaxLength(8).HasColumnName("window_kind"); // WINDOW is a keyword of SQL
        b.Property(x => x.Mode).HasMaxLength(8);
        b.Property(x => x.AlertAt).HasMaxLength(32);
        b.Property(x => x.CreatedBy).HasMaxLength(256);
        b.Ignore(x => x.IsHard);
        b.Ignore(x => x.AlertShares);
        // One budget per subject and window; the quota check finds a request's budgets through this index.
        b.HasIndex(x => new { x.TenantId, x.Scope, x.Subject, x.Window }).IsUnique().HasDatabaseName("ix_budgets_subject");
    }
}
