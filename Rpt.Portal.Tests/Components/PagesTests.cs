using Bunit;
using Rpt.Portal.Components;
using Rpt.Portal.Components.Pages;
using Rpt.Portal.Components.Shared;
using Rpt.Portal.Ledger;
using Rpt.Portal.Plans;

namespace Rpt.Portal.Tests.Components;

public class PagesTests : PortalComponentTest
{
    [Fact]
    public async Task Dashboard_ShowsTheBalanceOfTheSignedInTenant()
    {
        await Harness.CreateTenantAsync("acme", "starter");
        await Harness.IngestAsync("acme", Events.Call("a", model: "gpt-4o", input: 1_000_000, output: 0)); // 300 credits
        SignIn("acme", PortalRoles.Owner);
        var page = Render<Dashboard>();
        page.WaitForAssertion(() => Assert.Equal("5,000", page.Find("[data-testid=allocated]").TextContent));
        Assert.Equal("300", page.Find("[data-testid=consumed]").TextContent);
        Assert.Equal("4,700", page.Find("[data-testid=remaining]").TextContent);
        Assert.Contains("quota checks deny new jobs", page.Find("[data-testid=runout-policy]").TextContent);
        Assert.Contains("20 % platform overhead", page.Find("[data-testid=conversion]").TextContent);
        Assert.Contains("gpt-4o", page.Markup);
    }

    [Fact]
    public async Task Dashboard_OveragePlan_ExplainsOverageBilling()
    {
        await Harness.CreateTenantAsync("acme", "professional");
        SignIn("acme", PortalRoles.Member);
        var page = Render<Dashboard>();
        page.WaitForAssertion(() => Assert.Contains("billed as overage at $0.012 per credit", page.Find("[data-testid=runout-policy]").TextContent));
        Assert.Contains("No credits used yet this period.", page.Find("[data-testid=forecast]").TextContent);
        Assert.Contains("No billed usage in this period yet.", page.Markup);
    }

    [Fact]
    public async Task Dashboard_RefreshesWhenUsageArrives()
    {
        await Harness.CreateTenantAsync("acme", "free");
        SignIn("acme", PortalRoles.Owner);
        var page = Render<Dashboard>();
        page.WaitForAssertion(() => Assert.Equal("0", page.Find("[data-testid=consumed]").TextContent));
        await Harness.IngestAsync("acme", Events.Call("live", model: "gpt-4o", input: 1_000_000, output: 0));
        page.WaitForAssertion(() => Assert.Equal("300", page.Find("[data-testid=consumed]").TextContent), TimeSpan.FromSeconds(5));
    }

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

    [Fact]
    public async Task Allocations_ListsEveryGrantWithItsSource()
    {
        await Harness.CreateTenantAsync("acme", "starter");
        await Harness.Get<GrantCredits>().ExecuteAsync("acme", EntrySource.TopUp, 250, "stripe:evt_1", "Top-up");
        SignIn("acme", PortalRoles.Member);
        var page = Render<Allocations>();
        page.WaitForAssertion(() => Assert.Contains("Top-up", page.Markup));
        Assert.Contains("Sign-up", page.Markup);
        Assert.Contains("+5000", page.Markup);
        Assert.Contains("+250", page.Markup);
    }

    [Fact]
    public async Task JobDetail_UnknownJob_SaysSo_AndAKnownJobExplainsEachCall()
    {
        await Harness.CreateTenantAsync("acme");
        await Harness.IngestAsync("acme", Events.Call("c1", job: "job_9"), Events.Call("c2", job: "job_9", status: "failed"));
        SignIn("acme", PortalRoles.Member);
        var missing = Render<JobDetail>(p => p.Add(j => j.JobId, "nope"));
        missing.WaitForAssertion(() => Assert.Contains("No usage was recorded for job “nope”", missing.Markup));
        var job = Render<JobDetail>(p => p.Add(j => j.JobId, "job_9"));
        job.WaitForAssertion(() => Assert.Contains("0.11088 credits", job.Find("[data-testid=job-summary]").TextContent));
        Assert.Contains("failed (free)", job.Markup);
        Assert.Contains("in $0.15 · out $0.6 · cached $0.075", job.Markup);
    }

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

    [Fact]
    public async Task Jobs_ListsTokenUsagePerJob_AndSaysWhenThereIsNone()
    {
        await Harness.CreateTenantAsync("acme");
        SignIn("acme", PortalRoles.Member);
        var empty = Render<Jobs>();
        empty.WaitForAssertion(() => Assert.Contains("No billed usage in this period yet.", empty.Markup));
        await Harness.IngestAsync("acme", Events.Call("j1", job: "job_big", input: 10_000), Events.Call("j2", job: "job_small", input: 10));
        var jobs = Render<Jobs>();
        jobs.WaitForAssertion(() => Assert.Contains("job_big", jobs.Markup));
        Assert.True(jobs.Markup.IndexOf("job_big", StringComparison.Ordinal) < jobs.Markup.IndexOf("job_small", StringComparison.Ordinal), "largest first");
        Assert.Contains("10,740", jobs.Markup); // 10,000 + 740 tokens
    }

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
