using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Rpt.Portal.Plans;

/// <summary>What happens once a period's allocation is used up.</summary>
public enum OveragePolicy { Blocked, Overage, Unlimited }

public enum EntitlementKind { Boolean, Quantity, Custom }

/// <summary>A feature switch, a limit or a custom value that comes with a plan.</summary>
public sealed record Entitlement(string Key, EntitlementKind Kind, string Value)
{
    public bool IsEnabled => Kind switch
    {
        EntitlementKind.Boolean => Value == "true",
        EntitlementKind.Quantity => long.TryParse(Value, out var n) && n > 0,
        _ => Value.Length > 0,
    };
}

/// <summary>A subscription tier of the catalog.</summary>
public sealed class Plan
{
    private Plan() { }

    public Plan(string code, string name, decimal? monthlyPriceUsd, long? monthlyCredits, OveragePolicy overage,
        decimal? overageUsdPerCredit, int sortOrder, IEnumerable<Entitlement> entitlements)
    {
        if (overage == OveragePolicy.Unlimited != (monthlyCredits is null))
            throw new ArgumentException("An unlimited plan has no monthly credits; every other plan has them.");
        Code = code;
        Name = name;
        MonthlyPriceUsd = monthlyPriceUsd;
        MonthlyCredits = monthlyCredits;
        Overage = overage;
        OverageUsdPerCredit = overageUsdPerCredit;
        SortOrder = sortOrder;
        Entitlements = entitlements.ToList();
    }

    public string Code { get; private set; } = "";
    public string Name { get; private set; } = "";
    /// <summary>Null for a contract price (Enterprise).</summary>
    public decimal? MonthlyPriceUsd { get; private set; }
    /// <summary>Whole credits granted each period; null when unlimited.</summary>
    public long? MonthlyCredits { get; private set; }
    public OveragePolicy Overage { get; private set; }
    public decimal? OverageUsdPerCredit { get; private set; }
    public int SortOrder { get; private set; }
    public string? StripePriceId { get; private set; }
    public List<Entitlement> Entitlements { get; private set; } = [];
    /// <summary>When an operator retired it: no longer offered (sign-up, plan change, the catalog), while the tenants on it keep it.</summary>
    public DateTimeOffset? RetiredAt { get; private set; }

    public bool Retired => RetiredAt is not null;

    /// <summary>An operator's edit: it applies from each tenant's next period (an allocation already granted stays as it is).</summary>
    public void Update(string name, decimal? monthlyPriceUsd, long? monthlyCredits, OveragePolicy overage, decimal? overageUsdPerCredit,
        string? stripePriceId, IEnumerable<Entitlement> entitlements)
    {
        if (overage == OveragePolicy.Unlimited != (monthlyCredits is null))
            throw new ArgumentException("An unlimited plan has no monthly credits; every other plan has them.");
        Name = name;
        MonthlyPriceUsd = monthlyPriceUsd;
        MonthlyCredits = monthlyCredits;
        Overage = overage;
        OverageUsdPerCredit = overageUsdPerCredit;
        StripePriceId = stripePriceId;
        Entitlements = entitlements.ToList();
    }

    public void Retire(DateTimeOffset at) => RetiredAt ??= at;

    public bool Unlimited => Overage == OveragePolicy.Unlimited;
    public bool SelfServe => MonthlyPriceUsd is not null;

    public Entitlement? Entitlement(string key) => Entitlements.FirstOrDefault(e => e.Key == key);
    public bool Allows(string key) => Unlimited || (Entitlement(key)?.IsEnabled ?? false);
}

public sealed class PlanConfiguration : IEntityTypeConfiguration<Plan>
{
    public void Configure(EntityTypeBuilder<Plan> b)
    {
        b.ToTable("plans");
        b.HasKey(p => p.Code);
        b.Property(p => p.Code).HasMaxLength(64);
        b.Property(p => p.Name).HasMaxLength(100);
        b.Property(p => p.Overage).HasColumnName("overage_policy").HasConversion<string>().HasMaxLength(16);
        b.Property(p => p.StripePriceId).HasMaxLength(128);
        b.Ignore(p => p.Unlimited);
        b.Ignore(p => p.Retired);
        b.Ignore(p => p.SelfServe);
        b.OwnsMany(p => p.Entitlements, e =>
        {
            e.ToTable("plan_entitlements");
            e.WithOwner().HasForeignKey("plan_code");
            e.Property<int>("id");
            e.HasKey("id");
            e.Property(x => x.Key).HasMaxLength(64);
            e.Property(x => x.Kind).HasConversion<string>().HasMaxLength(16);
            e.Property(x => x.Value).HasMaxLength(200);
            e.Ignore(x => x.IsEnabled);
        });
    }
}
