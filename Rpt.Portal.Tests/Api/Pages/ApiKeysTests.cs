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
    public async Task ApiKeys_Member_SeesTheKeys_ButCanNeitherCreateNorRevoke()
    {
        await Harness.CreateTenantAsync("acme");
        await Harness.Get<Rpt.Portal.Api.ApiKeyService>().CreateAsync("acme", "worker", Rpt.Portal.Api.ApiScopes.Read);
        SignIn("acme", PortalRoles.Member);
        var member = Render<ApiKeys>();
        // The notice is drawn before the keys are read: wait for both.
        member.WaitForAssertion(() =>
        {
            Assert.Contains("Only the account owner can create or revoke keys.", member.Markup);
            Assert.Contains("worker", member.Markup);
        });
        Assert.Empty(member.FindAll("form"));
        Assert.DoesNotContain(member.FindAll("button"), b => b.TextContent.Contains("Revoke", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ApiKeys_OwnerCreatesAKeyThatAuthenticates_ThenRevokesItAfterTheConfirmation_AndItNoLongerDoes()
    {
        await Harness.CreateTenantAsync("acme");
        SignIn("acme", PortalRoles.Owner);
        var dialogs = Render<MudBlazor.MudDialogProvider>();
        var page = Render<ApiKeys>();
        page.WaitForAssertion(() => Assert.Single(page.FindAll("form")));

        await page.Find("form input:not([type=checkbox])").ChangeAsync("worker");
        await page.Find("form").SubmitAsync(new EventArgs());
        page.WaitForAssertion(() => Assert.Single(page.FindAll("[data-testid=new-key]")));
        var secret = page.Find("[data-testid=new-key] code").TextContent.Trim();
        var keys = Harness.Get<Rpt.Portal.Api.ApiKeyService>();
        var caller = await keys.AuthenticateAsync(secret);
        Assert.NotNull(caller);
        Assert.Equal("acme", caller.TenantId);
        Assert.True(caller.Has(Rpt.Portal.Api.ApiScopes.Read | Rpt.Portal.Api.ApiScopes.Ingest));
        Assert.Contains("active", page.Find("tbody").TextContent);

        page.FindAll("button").Single(b => b.GetAttribute("aria-label") == "Revoke worker").Click();
        dialogs.WaitForAssertion(() => Assert.Contains("Revoke the key \"worker\"?", dialogs.Markup));
        dialogs.FindAll("button").Single(b => b.TextContent.Trim() == "Revoke worker").Click();

        page.WaitForAssertion(() => Assert.Contains("revoked", page.Find("tbody").TextContent));
        Assert.Empty(page.FindAll("[data-testid=new-key]")); // never left on screen to copy
        Assert.Null(await keys.AuthenticateAsync(secret));
    }
}
