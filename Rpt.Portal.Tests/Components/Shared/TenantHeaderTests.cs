using Bunit;
using Rpt.Portal.Api.Pages;
using Rpt.Portal.Components;
using Rpt.Portal.Components.Shared;
using Rpt.Portal.Ledger;
using Rpt.Portal.Ledger.Pages;
using Rpt.Portal.Metering.Pages;
using Rpt.Portal.Plans;
using Rpt.Portal.Tenants.Pages;

namespace Rpt.Portal.Tests.Components.Shared;

[Trait("Kind", "Component")]
public class TenantHeaderTests : PortalComponentTest
{
    [Fact]
    public async Task TenantHeader_ShowsPlanAndCreditsLeft()
    {
        await Harness.CreateTenantAsync("acme", "business");
        SignIn("acme", PortalRoles.Member);
        var header = Render<TenantHeader>();
        header.WaitForAssertion(() => Assert.True(header.FindAll("[data-testid=header-remaining]").Count == 1, header.Markup));
        Assert.Equal("100,000 credits left", header.Find("[data-testid=header-remaining]").TextContent.Trim());
        Assert.Contains("Business", header.Markup);
    }
}
