using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Rpt.Portal.Tenants;
using Rpt.Portal.Data;
using Rpt.Portal.Plans;

namespace Rpt.Portal.Billing;

/// <summary>Where an owner's plan change went: a checkout page to open, or what was done.</summary>
public sealed record BillingStep(bool Succeeded, string Message, string? RedirectUrl = null);

/// <summary>
/// An owner asks for another plan. A first paid plan opens a checkout (Stripe's, or test mode's labelled
/// page); an existing subscription is moved to the new price (Stripe prorates an upgrade); Free ends the
/// subscription, keeping the paid period. Enterprise is a contract: the answer says whom to write to.
/// Only an owner may do any of it.
/// </summary>
public sealed class StartPlanChange(IDbContextFactory<ApplicationDbContext> dbFactory, IBillingGateway gateway, ChangePlan changePlan,
    IOptions<StripeOptions> options, ILogger<StartPlanChange> logger)
{
    public async Task<BillingStep> ExecuteAsync(string tenantId, string role, string planCode, Uri portalBase, CancellationToken cancellationToken = default)
    {
        if (role != PortalRoles.Owner) return new(false, "Only an owner of the account can change the plan.");
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var tenant = await db.Tenants.AsNoTracking().FirstOrDefaultAsync(t => t.Id == tenantId, cancellationToken);
        if (tenant is null) return new(false, $"unknown tenant '{tenantId}'");
        var plans = await db.Plans.AsNoTracking().ToDictionaryAsync(p => p.Code, cancellationToken);
        if (!plans.TryGetValue(planCode, out var target)) return new(false, $"There is no plan '{planCode}'.");
        if (target.Retired && target.Code != tenant.PlanCode) return new(false, $"{target.Name} is no longer offered.");
        if (!target.SelfServe) return new(false, $"{target.Name} is a contract: write to {options.Value.SalesEmail} and we will set it up.");
        if (!plans.TryGetValue(tenant.PlanCode, out var current)) return new(false, $"The current plan '{tenant.PlanCode}' is not in the catalog.");
        if (!current.SelfServe) return new(false, $"{current.Name} is a contract: write to {options.Value.SalesEmail} to change it.");
        if (target.Code == current.Code && tenant.PendingPlanCode is null) return new(false, $"The account is on {target.Name} already.");

        try
        {
            if (target.MonthlyPriceUsd == 0m)
            {
                if (tenant.StripeSubscriptionId is not null)
                {
                    logger.LogInformation("Plan change of {Tenant} to {Plan}: {Outcome}", tenantId, planCode,
                        await gateway.CancelSubscriptionAsync(tenant, cancellationToken));
                }
                else
                {
                    var free = await changePlan.ExecuteAsync(tenantId, target.Code, cancellationToken: cancellationToken);
                    if (free.Error is not null) return new(false, free.Error);
                }
                return await OutcomeAsync(tenantId, target, cancellationToken);
            }
            if (tenant.StripeSubscriptionId is null)
                return new(true, "Opening the checkout.", await gateway.StartCheckoutAsync(tenant, target.Code, portalBase, cancellationToken));
            var upgrade = ChangePlan.Compare(target, current) > 0;
            logger.LogInformation("Plan change of {Tenant} to {Plan}: {Outcome}", tenantId, planCode,
                await gateway.ChangeSubscriptionAsync(tenant, target.Code, upgrade, cancellationToken));
            return await OutcomeAsync(tenantId, target, cancellationToken);
        }
        catch (BillingException ex)
        {
            return new(false, ex.Message);
        }
        catch (Stripe.StripeException ex)
        {
            logger.LogWarning(ex, "Stripe refused a plan change of {Tenant} to {Plan}", tenantId, planCode);
            return new(false, $"Stripe could not make the change: {ex.StripeError?.Message ?? ex.Message}");
        }
        catch (HttpRequestException ex)
        {
            logger.LogWarning(ex, "Stripe could not be reached for a plan change of {Tenant}", tenantId);
            return new(false, "Stripe could not be reached; nothing was changed. Please try again in a minute.");
        }
    }

    /// <summary>What the account looks like after the change, in the owner's words.</summary>
    private async Task<BillingStep> OutcomeAsync(string tenantId, Plan target, CancellationToken ct)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var tenant = await db.Tenants.AsNoTracking().FirstAsync(t => t.Id == tenantId, ct);
        if (tenant.PendingPlanCode == target.Code)
            return new(true, $"The account moves to {target.Name} on {tenant.PendingPlanFrom:d MMM yyyy}; until then it keeps this plan and its credits.");
        if (tenant.PlanCode == target.Code)
            return new(true, tenant.PendingPlanCode is null ? $"The account is on {target.Name} now." : $"The account is on {target.Name}.");
        return new(true, "Stripe is confirming the change; this page shows it as soon as Stripe does.");
    }
}
