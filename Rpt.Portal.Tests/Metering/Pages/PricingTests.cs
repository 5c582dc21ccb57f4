using Bunit;
using Rpt.Portal.Api.Pages;
using Rpt.Portal.Components;
using Rpt.Portal.Components.Shared;
using Rpt.Portal.Ledger;
using Rpt.Portal.Ledger.Pages;
using Rpt.Portal.Metering.Pages;
using Rpt.Portal.Plans;
using Rpt.Portal.Tenants.Pages;

namespace Rpt.Portal.Tests.Metering.Pages;

[Trait("Kind", "Component")]
public class PricingTests : PortalComponentTest
{
    [Fact]
    public void Pricing_PublishesTheRuleAndEveryPriceInEffect()
    {
        SignIn("acme", PortalRoles.Member);
        var page = Render<Pricing>();
        Assert.Contains("20 %", page.Markup);
        Assert.Contains("$0.01 per credit", page.Markup);
        Assert.Contains("gpt-4o-mini", page.Markup);
        Assert.Contains("image generation", page.Markup);
        Assert.Equal(Rpt.Portal.Metering.PriceBookSeed.Prices().Count, page.FindAll("tbody tr").Count);
    }
}
