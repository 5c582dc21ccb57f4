using System.Text;
using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Data;
using Rpt.Portal.Tenants;
using Rpt.Portal.Ledger;

namespace Rpt.Portal.Billing;

public sealed record CreateTenantResult(Tenant? Tenant, string? Error);

/// <summary>
/// Opens an account on a plan and grants the signup allocation (key <c>signup:{tenant}</c>: a retried
/// signup never grants twice).
/// </summary>
public sealed class CreateTenant(IDbContextFactory<ApplicationDbContext> dbFactory, GrantCredits grant, TimeProvider time)
{
    public async Task<CreateTenantResult> ExecuteAsync(string name, string planCode, string? id = null,
        DateTimeOffset? subscriptionStart = null, CancellationToken cancellationToken = default)
    {
        name = name.Trim();
        if (name.Length is 0 or > 200) return new(null, "the tenant name must be 1 to 200 characters long");
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var plan = await db.Plans.AsNoTracking().FirstOrDefaultAsync(p => p.Code == planCode, cancellationToken);
        if (plan is null || plan.Retired)
        {
            var codes = await db.Plans.Where(p => p.RetiredAt == null).OrderBy(p => p.SortOrder).Select(p => p.Code).ToListAsync(cancellationToken);
            return new(null, $"{(plan is null ? "unknown plan" : "retired plan")} '{planCode}'; the plans are: {string.Join(", ", codes)}");
        }

        if (id is not null)
        {
            if (!IsValidId(id)) return new(null, $"tenant id '{id}' must be 1 to 64 characters of a-z, 0-9 and '-'");
            if (await db.Tenants.AnyAsync(t => t.Id == id, cancellationToken)) return new(null, $"tenant id '{id}' is taken");
        }
        else
        {
            var slug = Slug(name);
            id = slug;
            for (var n = 2; await db.Tenants.AnyAsync(t => t.Id == id, cancellationToken); n++) id = $"{slug}-{n}";
        }

        var tenant = new Tenant(id, name, plan.Code, subscriptionStart ?? time.GetUtcNow());
        db.Tenants.Add(tenant);
        await db.SaveChangesAsync(cancellationToken);

        if (plan.MonthlyCredits is > 0)
        {
            var result = await grant.ExecuteAsync(id, EntrySource.Signup, plan.MonthlyCredits.Value, $"signup:{id}",
                $"{plan.Name} plan, first period", tenant.SubscriptionStart, cancellationToken);
            if (result.Status == GrantStatus.Rejected) return new(tenant, result.Error);
        }
        return new(tenant, null);
    }

    public static bool IsValidId(string id) => id.Length is > 0 and <= 64 && id.All(c => c is >= 'a' and <= 'z' or >= '0' and <= '9' or '-');

    private static string Slug(string name)
    {
        var sb = new StringBuilder();
        foreach (var c in name.ToLowerInvariant())
        {
            if (c is >= 'a' and <= 'z' or >= '0' and <= '9') sb.Append(c);
            else if (sb.Length > 0 && sb[^1] != '-') sb.Append('-');
            if (sb.Length >= 40) break;
        }
        var slug = sb.ToString().Trim('-');
        return slug.Length == 0 ? "tenant" : slug;
    }
}
