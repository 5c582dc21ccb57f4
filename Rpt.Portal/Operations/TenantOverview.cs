using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Alerts;
using Rpt.Portal.Api;
using Rpt.Portal.Data;
using Rpt.Portal.Ledger;
using Rpt.Portal.Metering;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Operations;

/// <summary>One tenant as the console lists it.</summary>
public sealed record TenantRow(string Id, string Name, string PlanCode, BillingPeriod Period, Balance? Balance, string? StripeCustomerId,
    IReadOnlyList<string> Owners, FlushLag? Lag);

/// <summary>Everything the console shows of one tenant.</summary>
public sealed record TenantDetail(TenantRow Row, Tenant Tenant, IReadOnlyList<(DateOnly Day, long MicroCredits)> Trend, GrantLedger Grants,
    IReadOnlyList<AlertRule> Alerts, IReadOnlyList<ApiKey> Keys);

/// <summary>
/// The console's view of tenants: a search by name, id, owner email or Stripe customer, and one tenant's plan, period,
/// balance, 30-day consumption, grants, alert rules, API keys and flush lag. Reads only; what changes a tenant goes
/// through the use cases (and the audit log).
/// </summary>
public sealed class TenantOverview(IDbContextFactory<ApplicationDbContext> dbFactory, GetBalance balances, CreditGrants grants,
    UsageReports reports, EvaluateAlerts alerts, ApiKeyService keys, TimeProvider time)
{
    public const int MaxQuery = 200;
    public const int PageSize = 50;
    public const int TrendDays = 30;

    /// <summary>Up to <see cref="PageSize"/> tenants matching <paramref name="query"/> (all when empty), by name; <c>More</c> when others match too.</summary>
    public async Task<(IReadOnlyList<TenantRow> Rows, bool More)> SearchAsync(string? query, CancellationToken cancellationToken = default)
    {
        query = query?.Trim() ?? "";
        if (query.Length > MaxQuery) throw new ArgumentException($"search: at most {MaxQuery} characters", nameof(query));
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var tenants = db.Tenants.AsNoTracking();
        var ownerRole = await db.Roles.Where(r => r.Name == PortalRoles.Owner).Select(r => r.Id).FirstOrDefaultAsync(cancellationToken) ?? "";
        if (query.Length > 0)
        {
            var lower = query.ToLowerInvariant();
            var upper = query.ToUpperInvariant();
            tenants = tenants.Where(t => t.Id.ToLower().Contains(lower) || t.Name.ToLower().Contains(lower) || t.StripeCustomerId == query
                || db.Users.Any(u => u.TenantId == t.Id && u.NormalizedEmail!.Contains(upper)
                                     && db.UserRoles.Any(ur => ur.UserId == u.Id && ur.RoleId == ownerRole)));
        }
        var page = await tenants.OrderBy(t => t.Name).ThenBy(t => t.Id).Take(PageSize + 1).ToListAsync(cancellationToken);
        var rows = await RowsAsync(db, page.Take(PageSize).ToList(), ownerRole, cancellationToken);
        return (rows, page.Count > PageSize);
    }

    public async Task<TenantDetail?> DetailAsync(string tenantId, CancellationToken cancellationToken = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var tenant = await db.Tenants.AsNoTracking().FirstOrDefaultAsync(t => t.Id == tenantId, cancellationToken);
        if (tenant is null) return null;
        var ownerRole = await db.Roles.Where(r => r.Name == PortalRoles.Owner).Select(r => r.Id).FirstOrDefaultAsync(cancellationToken) ?? "";
        var row = (await RowsAsync(db, [tenant], ownerRole, cancellationToken))[0];
        var today = DateOnly.FromDateTime(time.GetUtcNow().UtcDateTime);
        return new TenantDetail(row, tenant, reports.DailyCredits(tenantId, today.AddDays(1 - TrendDays), today.AddDays(1)), grants.Current(tenantId),
            await alerts.RulesAsync(tenantId, cancellationToken), await keys.ListAsync(tenantId, cancellationToken));
    }

    /// <summary>The rows of a page: its owners and flush lags in one query each; each balance is its own handful of indexed reads.</summary>
    private async Task<List<TenantRow>> RowsAsync(ApplicationDbContext db, List<Tenant> page, string ownerRole, CancellationToken cancellationToken)
    {
        var ids = page.Select(t => t.Id).ToList();
        var owners = (await db.Users.Where(u => u.TenantId != null && ids.Contains(u.TenantId) && db.UserRoles.Any(ur => ur.UserId == u.Id && ur.RoleId == ownerRole))
                .Select(u => new { u.TenantId, u.Email }).ToListAsync(cancellationToken))
            .ToLookup(u => u.TenantId!, u => u.Email!);
        var lags = await db.FlushLags.AsNoTracking().Where(l => ids.Contains(l.TenantId)).ToDictionaryAsync(l => l.TenantId, cancellationToken);
        var now = time.GetUtcNow();
        return page.Select(t =>
        {
            var balance = balances.Execute(t.Id);
            return new TenantRow(t.Id, t.Name, t.PlanCode, balance?.Period ?? t.PeriodAt(now), balance, t.StripeCustomerId,
                owners[t.Id].Order(StringComparer.Ordinal).ToList(), lags.GetValueOrDefault(t.Id));
        }).ToList();
    }
}
