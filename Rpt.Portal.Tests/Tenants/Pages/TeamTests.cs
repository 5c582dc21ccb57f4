using Bunit;
using Rpt.Portal.Api.Pages;
using Rpt.Portal.Components;
using Rpt.Portal.Components.Shared;
using Rpt.Portal.Ledger;
using Rpt.Portal.Ledger.Pages;
using Rpt.Portal.Metering.Pages;
using Rpt.Portal.Plans;
using Rpt.Portal.Tenants.Pages;

namespace Rpt.Portal.Tests.Tenants.Pages;

[Trait("Kind", "Component")]
public class TeamTests : PortalComponentTest
{
    [Fact]
    public async Task Team_MemberSeesTheTeamButCannotInvite_AdminCan()
    {
        await Harness.CreateTenantAsync("acme");
        SignIn("acme", PortalRoles.Member);
        var member = Render<Team>();
        member.WaitForAssertion(() => Assert.Contains("Members see the balance", member.Markup));
        Assert.DoesNotContain("Invite", member.Markup);
    }
    [Fact]
    public async Task Team_Admin_SeesTheInviteForm()
    {
        await Harness.CreateTenantAsync("acme");
        SignIn("acme", PortalRoles.Admin);
        var admin = Render<Team>();
        admin.WaitForAssertion(() => Assert.Contains("Invite", admin.Markup));
    }
}
