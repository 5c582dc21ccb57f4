using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Data;
using Rpt.Portal.Plans;

namespace Rpt.Portal.Operations;

/// <summary>A plan as the operator writes it.</summary>
public sealed record PlanInput(string Code, string Name, decimal? MonthlyPriceUsd, long? MonthlyCredits, OveragePolicy Overage,
    decimal? OverageUsdPerCredit, string? StripePriceId, IReadOnlyList<Entitlement> Entitlements);

public sealed record PlanEditResult(Plan? Plan, string? Error = null, string? Field = null);

/// <summary>A plan in the console's list: how many tenants are on it and how many will move to it.</summary>
public sealed record PlanUse(Plan Plan, int Tenants, int Pending);

/// <summary>
/// The plan catalog as operators change it: create, edit (from each tenant's next period: an allocation already granted
/// stays as it is), retire (no longer offered for sign-up, plan changes or in the catalog; the tenants on it keep it and
/// renew on it). Every change leaves an audit record with the values before and after.
/// </summary>
public sealed partial class PlanEditor(IDbContextFactory<ApplicationDbContext> dbFactory, AuditLog audit, TimeProvider time)
{
    public const long MaxMonthlyCredits = 100_000_000_000; // the per-period limit of 10^17 µcr
    public const decimal MaxPriceUsd = 1_000_000m;

    [GeneratedRegex("^[a-z0-9][a-z0-9_-]{0,63}$")]
    private static partial Regex CodePattern();

    [GeneratedRegex("^[a-z][a-z0-9_]{0,63}$")]
    private static partial Regex KeyPattern();

    public async Task<IReadOnlyList<PlanUse>> ListAsync(CancellationToken cancellationToken = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var plans = await db.Plans.AsNoTracking().OrderBy(p => p.SortOrder).ThenBy(p => p.Code).ToListAsync(cancellationToken);
        var on = await db.Tenants.GroupBy(t => t.PlanCode).Select(g => new { g.Key, Count = g.Count() }).ToDictionaryAsync(x => x.Key, x => x.Count, cancellationToken);
        var pending = await db.Tenants.Where(t => t.PendingPlanCode != null).GroupBy(t => t.PendingPlanCode!).Select(g => new { g.Key, Count = g.Count() })
            .ToDictionaryAsync(x => x.Key, x => x.Count, cancellationToken);
        return plans.Select(p => new PlanUse(p, on.GetValueOrDefault(p.Code), pending.GetValueOrDefault(p.Code))).ToList();
    }

    public async Task<PlanEditResult> CreateAsync(AuditActor actor, PlanInput input, CancellationToken cancellationToken = default)
    {
        if (Check(input) is { } problem) return problem;
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        if (await db.Plans.AnyAsync(p => p.Code == input.Code, cancellationToken)) return new(null, $"code: a plan '{input.Code}' exists already", "code");
        var order = (await db.Plans.MaxAsync(p => (int?)p.SortOrder, cancellationToken) ?? 0) + 1;
        var plan = new Plan(input.Code, input.Name.Trim(), input.MonthlyPriceUsd, input.MonthlyCredits, input.Overage, Rate(input), order, input.Entitlements);
        plan.Update(plan.Name, plan.MonthlyPriceUsd, plan.MonthlyCredits, plan.Overage, plan.OverageUsdPerCredit, Blank(input.StripePriceId), input.Entitlements);
        db.Plans.Add(plan);
        await db.SaveChangesAsync(cancellationToken);
        await audit.AppendAsync(actor, "plan.create", null, plan.Code, null, Values(plan), cancellationToken);
        return new(plan);
    }

    public async Task<PlanEditResult> UpdateAsync(AuditActor actor, PlanInput input, CancellationToken cancellationToken = default)
    {
        if (Check(input) is { } problem) return problem;
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var plan = await db.Plans.FirstOrDefaultAsync(p => p.Code == input.Code, cancellationToken);
        if (plan is null) return new(null, $"code: there is no plan '{input.Code}'", "code");
        var before = Values(plan);
        plan.Update(input.Name.Trim(), input.MonthlyPriceUsd, input.MonthlyCredits, input.Overage, Rate(input), Blank(input.StripePriceId), input.Entitlements);
        var after = Values(plan);
        if (System.Text.Json.JsonSerializer.Serialize(before) == System.Text.Json.JsonSerializer.Serialize(after)) return new(plan); // nothing changed, nothing recorded
        await db.SaveChangesAsync(cancellationToken);
        await audit.AppendAsync(actor, "plan.update", null, plan.Code, before, after, cancellationToken);
        return new(plan);
    }

    public async Task<PlanEditResult> RetireAsync(AuditActor actor, string code, CancellationToken cancellationToken = default)
    {
        if (code == PlanCatalog.Free) return new(null, $"'{PlanCatalog.Free}' is the plan every sign-up starts on; it cannot be retired", "code");
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var plan = await db.Plans.FirstOrDefaultAsync(p => p.Code == code, cancellationToken);
        if (plan is null) return new(null, $"code: there is no plan '{code}'", "code");
        if (plan.Retired) return new(plan);
        plan.Retire(time.GetUtcNow());
        await db.SaveChangesAsync(cancellationToken);
        var tenants = await db.Tenants.CountAsync(t => t.PlanCode == code, cancellationToken);
        await audit.AppendAsync(actor, "plan.retire", null, code, new { offered = true }, new { offered = false, retired_at = plan.RetiredAt, tenants_keeping_it = tenants }, cancellationToken);
        return new(plan);
    }

    private static PlanEditResult? Check(PlanInput p)
    {
        if (!CodePattern().IsMatch(p.Code ?? "")) return new(null, "code: 1 to 64 of a-z, 0-9, '-' and '_', starting with a letter or digit", "code");
        if (string.IsNullOrWhiteSpace(p.Name) || p.Name.Trim().Length > 100) return new(null, "name: 1 to 100 characters", "name");
        if (p.MonthlyPriceUsd is { } price && (price < 0 || price > MaxPriceUsd || decimal.Round(price, 2) != price))
            return new(null, $"monthly_price_usd: 0 to {MaxPriceUsd:N0}, in cents (empty: a contract price)", "monthly_price_usd");
        if (p.Overage == OveragePolicy.Unlimited ? p.MonthlyCredits is not null : p.MonthlyCredits is not (>= 1 and <= MaxMonthlyCredits))
            return new(null, p.Overage == OveragePolicy.Unlimited ? "monthly_credits: an unlimited plan has none"
                : $"monthly_credits: 1 to {MaxMonthlyCredits.ToString("N0", CultureInfo.InvariantCulture)}", "monthly_credits");
        if (p.Overage == OveragePolicy.Overage && p.OverageUsdPerCredit is { } rate && (rate < 0 || rate > 1000m))
            return new(null, "overage_usd_per_credit: 0 to 1,000", "overage_usd_per_credit");
        if (p.StripePriceId is { Length: > 0 } stripe && (stripe.Length > 128 || !stripe.StartsWith("price_", StringComparison.Ordinal)))
            return new(null, "stripe_price_id: a Stripe price id (price_…), at most 128 characters", "stripe_price_id");
        if (p.Entitlements.Count > 50) return new(null, "entitlements: at most 50", "entitlements");
        foreach (var e in p.Entitlements)
        {
            if (!KeyPattern().IsMatch(e.Key)) return new(null, $"entitlements: key '{e.Key}' must be 1 to 64 of a-z, 0-9 and '_', starting with a letter", "entitlements");
            var ok = e.Kind switch
            {
                EntitlementKind.Boolean => e.Value is "true" or "false",
                EntitlementKind.Quantity => long.TryParse(e.Value, NumberStyles.None, CultureInfo.InvariantCulture, out _),
                _ => e.Value.Length <= 200,
            };
            if (!ok) return new(null, $"entitlements: '{e.Key}' ({e.Kind.ToString().ToLowerInvariant()}) cannot be '{e.Value}'", "entitlements");
        }
        if (p.Entitlements.GroupBy(e => e.Key).FirstOrDefault(g => g.Count() > 1) is { } twice) return new(null, $"entitlements: '{twice.Key}' is listed twice", "entitlements");
        return null;
    }

    private static decimal? Rate(PlanInput p) => p.Overage == OveragePolicy.Overage ? p.OverageUsdPerCredit : null;
    private static string? Blank(string? s) => string.IsNullOrWhiteSpace(s) ? null : s.Trim();

    private static object Values(Plan p) => new
    {
        name = p.Name, monthly_price_usd = p.MonthlyPriceUsd, monthly_credits = p.MonthlyCredits, overage = p.Overage.ToString().ToLowerInvariant(),
        overage_usd_per_credit = p.OverageUsdPerCredit, stripe_price_id = p.StripePriceId,
        entitlements = p.Entitlements.OrderBy(e => e.Key, StringComparer.Ordinal).ToDictionary(e => e.Key, e => e.Value),
    };
}
