using Bunit;
using Rpt.Portal.Api.Pages;
using Rpt.Portal.Components;
using Rpt.Portal.Components.Shared;
using Rpt.Portal.Ledger;
using Rpt.Portal.Ledger.Pages;
using Rpt.Portal.Metering.Pages;
using Rpt.Portal.Plans;
using Rpt.Portal.Tenants.Pages;

namespace Rpt.Portal.Tests.Api.Pages;

[Trait("Kind", "Component")]
public class ApiKeysTests : PortalComponentTest
{
    [Fact]
    public async Task ApiKeys_OwnerCanCreateAndRevoke_MemberOnlySees()
    {
        await Harness.CreateTenantAsync("acme");
        SignIn("acme", PortalRoles.Member);
        var member = Render<ApiKeys>();
        member.WaitForAssertion(() => Assert.Contains("Only the account owner can create or revoke keys.", member.Markup));
        Assert.DoesNotContain("Create key", member.Markup);
        Assert.Contains("No keys yet.", member.Markup);
    }
    [Fact]
    public async Task ApiKeys_Owner_SeesTheCreateForm()
    {
        await Harness.CreateTenantAsync("acme");
        await Harness.Get<Rpt.Portal.Api.ApiKeyService>().CreateAsync("acme", "worker", Rpt.Portal.Api.ApiScopes.Read);
        SignIn("acme", PortalRoles.Owner);
        var owner = Render<ApiKeys>();
        owner.WaitForAssertion(() => Assert.Contains("Create key", owner.Markup));
        Assert.Contains("worker", owner.Markup);
        Assert.Contains("Revoke", owner.Markup);
        Assert.Contains("never", owner.Markup); // last used
    }
}
