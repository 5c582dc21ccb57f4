using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Tenants;
using Rpt.Portal.Data;

namespace Rpt.Portal.Billing;

/// <summary>
/// An owner buys a top-up pack: a checkout in payment mode (Stripe's, or test mode's labelled page). The
/// credits are granted once per Checkout Session, when Stripe says it is paid (<see cref="BillingEvents"/>).
/// Any self-serve plan may buy packs; a contract plan (unlimited) has no use for them.
/// </summary>
public sealed class StartTopUp(IDbContextFactory<ApplicationDbContext> dbFactory, IBillingGateway gateway, ILogger<StartTopUp> logger)
{
    public async Task<BillingStep> ExecuteAsync(string tenantId, string role, string packCode, Uri portalBase, CancellationToken cancellationToken = default)
    {
        if (role != PortalRoles.Owner) return new(false, "Only an owner of the account can buy credits.");
        var pack = TopUpPacks.Find(packCode);
        if (pack is null) return new(false, $"There is no pack '{packCode}'; the packs are: {string.Join(", ", TopUpPacks.All.Select(p => p.Code))}.");
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var tenant = await db.Tenants.AsNoTracking().FirstOrDefaultAsync(t => t.Id == tenantId, cancellationToken);
        if (tenant is null) return new(false, $"unknown tenant '{tenantId}'");
        var plan = await db.Plans.AsNoTracking().FirstOrDefaultAsync(p => p.Code == tenant.PlanCode, cancellationToken);
        if (plan is null || !plan.SelfServe || plan.Unlimited) return new(false, "A contract plan has no use for top-up packs.");
        try
        {
            return new(true, "Opening the checkout.", await gateway.StartTopUpCheckoutAsync(tenant, pack, portalBase, cancellationToken));
        }
        catch (BillingException ex)
        {
            return new(false, ex.Message);
        }
        catch (Exception ex) when (ex is Stripe.StripeException or HttpRequestException)
        {
            logger.LogWarning(ex, "Stripe refused a top-up checkout for {Tenant}", tenantId);
            return new(false, "Stripe could not be reached; nothing was charged. Please try again in a minute.");
        }
    }
}
