using System.Reflection;
using System.Security.Claims;
using Bunit;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;
using Rpt.Portal.Data;
using Rpt.Portal.Operations;
using Rpt.Portal.Operations.Pages;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Tests.Operations;

/// <summary>The operators' audit log page: records as an auditor reads them, their chain verified, and a console that opens only to operators with two-factor sign-in.</summary>
[Trait("Kind", "Component")]
public sealed class AuditLogPageTests : OperatorComponentTest
{
    [Fact]
    public async Task AnOperatorWithTwoFactor_SeesEveryRecord_WhoWhatBeforeAfter_AndVerifiesTheChain()
    {
        var audit = Harness.Get<AuditLog>();
        await audit.AppendAsync(new AuditActor("ops@rpt.test", "cli@host"), "credits.grant", "acme", "ledger seq 2", null, new { credits = 500, reason = "outage" });
        await audit.AppendAsync(new AuditActor("lead@rpt.test", "cli@host"), "key.revoke", "acme", "k-1", new { status = "active" }, new { status = "revoked" });
        await SignInOperatorAsync("ops@rpt.test", twoFactor: true);

        var page = Render<AuditLogPage>();
        page.WaitForAssertion(() => Assert.Equal(2, page.FindAll("[data-testid=audit-records] tbody tr").Count));
        var rows = page.FindAll("[data-testid=audit-records] tbody tr");
        Assert.Contains("key.revoke", rows[0].TextContent); // newest first
        Assert.Contains("lead@rpt.test", rows[0].TextContent);
        Assert.Contains("{\"status\":\"active\"}", rows[0].TextContent);
        Assert.Contains("{\"status\":\"revoked\"}", rows[0].TextContent);
        Assert.Contains("{\"credits\":500,\"reason\":\"outage\"}", rows[1].TextContent);
        Assert.Equal("operations/audit.csv", page.Find("[data-testid=audit-csv]").GetAttribute("href"));

        page.Find("[data-testid=audit-verify]").Click();
        page.WaitForAssertion(() => Assert.Contains("Intact: 2 records", page.Find("[data-testid=audit-verification]").TextContent));
    }

    [Fact]
    public async Task AnOperatorWithoutTwoFactor_IsToldToTurnItOn_AndSeesNoRecord()
    {
        await Harness.Get<AuditLog>().AppendAsync(new AuditActor("ops@rpt.test", "cli@host"), "price.add", null, "openai gpt-5", null, new { input = 1 });
        await SignInOperatorAsync("ops@rpt.test", twoFactor: false);
        var page = Render<AuditLogPage>();
        page.WaitForAssertion(() => Assert.Contains("opens only to an operator with two-factor sign-in", page.Find("[data-testid=two-factor-required]").TextContent));
        Assert.Empty(page.FindAll("[data-testid=audit-records]"));
        Assert.DoesNotContain("price.add", page.Markup);
    }

    [Fact]
    public async Task ATenantsOwner_IsNotLetInByTheGate()
    {
        var gate = Harness.Get<OperatorGate>();
        var owner = new ClaimsPrincipal(new ClaimsIdentity([new Claim(ClaimTypes.Name, "owner@acme.test"), new Claim(ClaimTypes.Role, PortalRoles.Owner)], "test"));
        Assert.False(await gate.OpensForAsync(owner));
    }

    [Fact]
    public async Task TheLedgerPage_VerifiesEveryChain_AndNamesTheTenantWhoseRowWasAltered()
    {
        await Harness.CreateTenantAsync("acme");
        await Harness.CreateTenantAsync("globex");
        Harness.AllowChanges("ledger_entries");
        Harness.Execute("UPDATE ledger_entries SET amount_micro_credits = amount_micro_credits + 1 WHERE tenant_id = 'globex' AND seq = 1");
        await SignInOperatorAsync("ops@rpt.test", twoFactor: true);

        var page = Render<LedgerPage>();
        page.WaitForAssertion(() => page.Find("[data-testid=verify-all]"));
        page.Find("[data-testid=verify-all]").Click();
        page.WaitForAssertion(() => Assert.Equal("2 of 2 tenants checked: 1 intact, 1 broken.", page.Find("[data-testid=verify-summary]").TextContent.Trim()));
        var broken = page.Find("[data-testid=verify-broken] tbody").TextContent;
        Assert.Contains("globex", broken);
        Assert.Contains("seq 1: stored hash", broken);
        Assert.DoesNotContain("acme", broken);
    }

    [Fact]
    public async Task TheLedgerPage_IsClosedWithoutTwoFactor()
    {
        await SignInOperatorAsync("ops@rpt.test", twoFactor: false);
        var page = Render<LedgerPage>();
        page.WaitForAssertion(() => page.Find("[data-testid=two-factor-required]"));
        Assert.Empty(page.FindAll("[data-testid=verify-all]"));
    }

    /// <summary>Every page of the operators' feature demands the Operator role: a new page without it fails here.</summary>
    [Fact]
    public void EveryOperationsPage_RequiresTheOperatorRole()
    {
        var pages = typeof(AuditLogPage).Assembly.GetTypes()
            .Where(t => t.Namespace?.StartsWith("Rpt.Portal.Operations", StringComparison.Ordinal) == true && t.GetCustomAttributes<RouteAttribute>().Any())
            .ToList();
        Assert.NotEmpty(pages);
        foreach (var page in pages)
        {
            var roles = page.GetCustomAttributes<AuthorizeAttribute>().Select(a => a.Roles).ToList();
            Assert.True(roles.Contains(PortalRoles.Operator), $"{page.Name} ({string.Join(", ", page.GetCustomAttributes<RouteAttribute>().Select(r => r.Template))}) does not require the Operator role");
        }
        // And every route under /operations belongs to that feature.
        var elsewhere = typeof(AuditLogPage).Assembly.GetTypes()
            .Where(t => t.GetCustomAttributes<RouteAttribute>().Any(r => r.Template.StartsWith("/operations", StringComparison.Ordinal))
                        && t.Namespace?.StartsWith("Rpt.Portal.Operations", StringComparison.Ordinal) != true);
        Assert.Empty(elsewhere);
    }
}
