using Rpt.Portal.Billing;
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
public class UsageTests : PortalComponentTest
{
    [Fact]
    public async Task Usage_ListsCalls_AndOffersCsvOnlyWhereThePlanAllowsIt()
    {
        await Harness.CreateTenantAsync("acme", "free");
        await Harness.IngestAsync("acme", Events.Call("u1", job: "job_u"), Events.Call("u2", job: "job_u", status: "failed"));
        SignIn("acme", PortalRoles.Member);
        var free = Render<Usage>();
        free.WaitForAssertion(() => Assert.Contains("job_u", free.Markup));
        Assert.Contains("failed (free)", free.Markup);
        Assert.Contains("0.11088", free.Markup);
        Assert.Empty(free.FindAll("[data-testid=csv-export]"));

        await Harness.Get<ChangePlan>().ExecuteAsync("acme", "starter");
        var starter = Render<Usage>();
        starter.WaitForAssertion(() => Assert.Single(starter.FindAll("[data-testid=csv-export]")));
    }
}
