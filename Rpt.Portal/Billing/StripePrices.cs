using Microsoft.Extensions.Options;

namespace Rpt.Portal.Billing;

/// <summary>
/// Which Stripe price stands for which plan or pack, both ways. In test mode every plan and pack has the
/// price id <c>price_test_{code}</c>; with a key they come from Rpt:Stripe:PlanPrices and Rpt:Stripe:PackPrices.
/// </summary>
public sealed class StripePrices(IOptions<StripeOptions> options)
{
    private const string TestPrefix = "price_test_";
    private readonly StripeOptions _options = options.Value;

    public string? ForPlan(string planCode) => _options.TestMode ? TestPrefix + planCode : _options.PlanPrices.GetValueOrDefault(planCode);

    public string? ForPack(string packCode) => _options.TestMode ? TestPrefix + packCode : _options.PackPrices.GetValueOrDefault(packCode);

    public string? PlanOf(string? priceId)
    {
        if (priceId is null) return null;
        if (_options.TestMode) return priceId.StartsWith(TestPrefix, StringComparison.Ordinal) ? priceId[TestPrefix.Length..] : null;
        foreach (var (plan, price) in _options.PlanPrices)
            if (price == priceId) return plan;
        return null;
    }
}
