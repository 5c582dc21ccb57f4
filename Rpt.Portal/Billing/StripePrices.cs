using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Rpt.Portal.Data;

namespace Rpt.Portal.Billing;

/// <summary>
/// Which Stripe price stands for which plan or pack, both ways. In test mode every plan and pack has the
/// price id <c>price_test_{code}</c>; with a key a plan's is the one an operator set on the plan (console, Plans),
/// else Rpt:Stripe:PlanPrices; a pack's comes from Rpt:Stripe:PackPrices.
/// </summary>
public sealed class StripePrices(IOptions<StripeOptions> options, IDbContextFactory<ApplicationDbContext>? dbFactory = null)
{
    private const string TestPrefix = "price_test_";
    private readonly StripeOptions _options = options.Value;

    public string? ForPlan(string planCode) => _options.TestMode ? TestPrefix + planCode
        : OnPlans().GetValueOrDefault(planCode) ?? _options.PlanPrices.GetValueOrDefault(planCode);

    public string? ForPack(string packCode) => _options.TestMode ? TestPrefix + packCode : _options.PackPrices.GetValueOrDefault(packCode);

    public string? PlanOf(string? priceId)
    {
        if (priceId is null) return null;
        if (_options.TestMode) return priceId.StartsWith(TestPrefix, StringComparison.Ordinal) ? priceId[TestPrefix.Length..] : null;
        foreach (var (plan, price) in OnPlans())
            if (price == priceId) return plan;
        foreach (var (plan, price) in _options.PlanPrices)
            if (price == priceId) return plan;
        return null;
    }

    /// <summary>The Stripe price ids operators set on plans (a few rows, read when a checkout starts or a webhook names a price).</summary>
    private Dictionary<string, string> OnPlans()
    {
        if (dbFactory is null) return [];
        using var db = dbFactory.CreateDbContext();
        return db.Plans.AsNoTracking().Where(p => p.StripePriceId != null).ToDictionary(p => p.Code, p => p.StripePriceId!, StringComparer.Ordinal);
    }
}
