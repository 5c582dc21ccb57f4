using Bunit;
using Rpt.Portal.Api.Pages;
using Rpt.Portal.Components;
using Rpt.Portal.Components.Shared;
using Rpt.Portal.Ledger;
using Rpt.Portal.Ledger.Pages;
using Rpt.Portal.Metering.Pages;
using Rpt.Portal.Plans;
using Rpt.Portal.Tenants.Pages;

namespace Rpt.Portal.Tests.Ledger.Pages;

[Trait("Kind", "Component")]
public class AllocationsTests : PortalComponentTest
{
    [Fact]
    public async Task Allocations_ListsEveryGrantWithItsSource()
    {
        await Harness.CreateTenantAsync("acme", "starter");
        await Harness.Get<GrantCredits>().ExecuteAsync("acme", EntrySource.TopUp, 250, "stripe:evt_1", "Top-up");
        SignIn("acme", PortalRoles.Member);
        var page = Render<Allocations>();
        page.WaitForAssertion(() => Assert.Contains("Top-up", page.Markup));
        Assert.Contains("Sign-up", page.Markup);
        Assert.Contains("+5,000", page.Markup);
        Assert.Contains("+250", page.Markup);
    }
}
