using Bunit;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Rpt.Portal.Api;
using Rpt.Portal.Data;
using Rpt.Portal.Ledger;
using Rpt.Portal.Operations;
using Rpt.Portal.Operations.Pages;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Tests.Operations;

/// <summary>The console's tenants: found by what an operator has at hand, and corrected with a record of who did it.</summary>
[Trait("Kind", "Component")]
public sealed class TenantsPageTests : OperatorComponentTest
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private async Task TenantsAsync()
    {
        await Harness.CreateTenantAsync("acme", "starter");
        await Harness.CreateTenantAsync("globex", "professional");
        await using var db = await Harness.Get<IDbContextFactory<ApplicationDbContext>>().CreateDbContextAsync();
        (await db.Tenants.SingleAsync(t => t.Id == "globex")).LinkStripeCustomer("cus_Globex42");
        await db.SaveChangesAsync();
        using var scope = Harness.Services.CreateScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>();
        foreach (var (email, tenant, role) in new[] { ("wile@acme.example", "acme", PortalRoles.Owner), ("hank@globex.example", "globex", PortalRoles.Member) })
        {
            var user = new ApplicationUser { UserName = email, Email = email, EmailConfirmed = true, TenantId = tenant };
            Assert.True((await users.CreateAsync(user, "Secret-Pass-1!")).Succeeded);
            await users.AddToRoleAsync(user, role);
        }
    }

    private static IReadOnlyList<string> Found(IRenderedComponent<TenantsPage> page) =>
        page.FindAll("[data-testid=tenants] tbody tr td:first-child .mud-typography-caption").Select(c => c.TextContent).ToList();

    [Fact]
    public async Task Search_ByNameIdOwnerEmailOrStripeCustomer_FindsTheTenant()
    {
        await TenantsAsync();
        await SignInOperatorAsync("ops@rpt.test", twoFactor: true);
        var page = Render<TenantsPage>();
        page.WaitForAssertion(() => Assert.Equal(["acme", "globex"], Found(page)), Wait);
        Assert.Contains("5,000", page.Find("[data-testid=tenants] tbody tr").TextContent); // the starter plan's remaining credits

        foreach (var (query, expected) in new[] { ("WILE@acme", "acme"), ("cus_Globex42", "globex"), ("glob", "globex"), ("ACME", "acme") })
        {
            await page.Find("input[data-testid=tenant-search]").ChangeAsync(query);
            await page.Find("form").SubmitAsync(new EventArgs());
            page.WaitForAssertion(() => Assert.Equal([expected], Found(page)), Wait);
        }
        // A member's email is not an owner's.
        await page.Find("input[data-testid=tenant-search]").ChangeAsync("hank@globex");
        await page.Find("form").SubmitAsync(new EventArgs());
        page.WaitForAssertion(() => Assert.Empty(Found(page)), Wait);
    }

    [Fact]
    public async Task TheTenantPage_GrantsWithAReason_VoidsAGrant_RevokesAKey_AndEachLeavesAnAuditRecordFromTheBrowser()
    {
        await TenantsAsync();
        var created = await Harness.Get<ApiKeyService>().TryCreateAsync("acme", "CI", ApiScopes.Read);
        var key = created.Key!;
        await SignInOperatorAsync("ops@rpt.test", twoFactor: true);
        var page = Render<TenantPage>(p => p.Add(x => x.TenantId, "acme"));
        page.WaitForAssertion(() => Assert.Equal("5,000", page.Find("[data-testid=tenant-remaining]").TextContent.Trim()), Wait);

        // No reason: refused, nothing granted.
        await page.Find("input[data-testid=grant-credits]").ChangeAsync("1200");
        page.Find("[data-testid=grant-submit]").Click();
        page.WaitForAssertion(() => Assert.Contains("a reason is required", page.Find("[data-testid=grant-form]").TextContent), Wait);
        Assert.Equal(1, Harness.Scalar("SELECT COUNT(*) FROM ledger_entries WHERE tenant_id = 'acme'"));

        await page.Find("input[data-testid=grant-reason]").ChangeAsync("Outage of 3 Dec, ticket 4711");
        page.Find("[data-testid=grant-submit]").Click();
        page.WaitForAssertion(() => Assert.Contains("Granted 1,200 credits: ledger entry #2", page.Find("[data-testid=correction-result]").TextContent), Wait);
        page.WaitForAssertion(() => Assert.Equal("6,200", page.Find("[data-testid=tenant-remaining]").TextContent.Trim()), Wait);

        page.Find("[data-testid=void-2]").Click();
        page.WaitForAssertion(() => page.Find("input[data-testid=void-reason]"), Wait);
        await page.Find("input[data-testid=void-reason]").ChangeAsync("Granted twice");
        page.Find("[data-testid=void-confirm]").Click();
        page.WaitForAssertion(() => Assert.Contains("Voided 1,200 credits of grant #2: ledger entry #3", page.Find("[data-testid=correction-result]").TextContent), Wait);
        page.WaitForAssertion(() => Assert.Equal("5,000", page.Find("[data-testid=tenant-remaining]").TextContent.Trim()), Wait);
        Assert.Contains("voided 1,200: Granted twice", page.Find("[data-testid=tenant-grants]").TextContent);

        page.Find($"[data-testid=revoke-{key.Prefix}]").Click();
        page.WaitForAssertion(() => page.Find($"[data-testid=revoke-confirm-{key.Prefix}]"), Wait);
        page.Find($"[data-testid=revoke-confirm-{key.Prefix}]").Click();
        page.WaitForAssertion(() => Assert.Contains("revoked", page.Find("[data-testid=tenant-keys]").TextContent), Wait);
        Assert.Null(await Harness.Get<ApiKeyService>().AuthenticateAsync(created.Secret!));

        var records = (await Harness.Get<AuditLog>().ListAsync("acme")).OrderBy(r => r.Seq).ToList();
        Assert.Equal(["credits.grant", "credits.void", "key.revoke"], records.Select(r => r.Action));
        Assert.All(records, r => Assert.Equal("ops@rpt.test", r.Actor));
        Assert.All(records, r => Assert.StartsWith("browser@", r.Origin));
        Assert.Equal(["ledger seq 2", "ledger seq 3", key.Id.ToString()], records.Select(r => r.Subject));
        Assert.Contains("\"reason\":\"Outage of 3 Dec, ticket 4711\"", records[0].NewValue);
        Assert.Contains("\"reason\":\"Granted twice\"", records[1].NewValue);
        Assert.True((await Harness.Get<AuditLog>().VerifyAsync()).Intact);
    }

    [Fact]
    public async Task TheTenantPage_IsClosedWithoutTwoFactor()
    {
        await TenantsAsync();
        await SignInOperatorAsync("ops@rpt.test", twoFactor: false);
        var closed = Render<TenantPage>(p => p.Add(x => x.TenantId, "acme"));
        closed.WaitForAssertion(() => closed.Find("[data-testid=two-factor-required]"));
        Assert.Empty(closed.FindAll("[data-testid=grant-form]"));
    }

    [Fact]
    public async Task AnUnknownTenant_IsSaidSo()
    {
        await SignInOperatorAsync("ops@rpt.test", twoFactor: true);
        var page = Render<TenantPage>(p => p.Add(x => x.TenantId, "nobody"));
        page.WaitForAssertion(() => Assert.Contains("No tenant has the id “nobody”", page.Find("[data-testid=tenant-unknown]").TextContent));
    }
}

/// <summary>An operator who opens the portal's home (a tenant's dashboard) is taken to the console.</summary>
[Trait("Kind", "Component")]
public sealed class OperatorHomeTests : OperatorComponentTest
{
    [Fact]
    public async Task AnOperatorAtTheDashboard_IsTakenToTheConsolesTenants()
    {
        await SignInOperatorAsync("ops@rpt.test", twoFactor: true);
        var navigation = Services.GetRequiredService<Microsoft.AspNetCore.Components.NavigationManager>();
        Render<Rpt.Portal.Ledger.Pages.Dashboard>();
        Assert.EndsWith("/operations/tenants", navigation.Uri);
    }
}
