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
public class DashboardTests : PortalComponentTest
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
    public async Task Dashboard_SaysWhatHoldsKeepForRunningJobs_AndWhatIsAvailable()
    {
        await Harness.CreateTenantAsync("acme", "starter"); // 5,000 credits
        Assert.Equal(ReservationOutcome.Held, (await Harness.Get<Reservations>().ReserveAsync("acme", "render-42", 1_200, "job-42", 3600)).Outcome);
        SignIn("acme", PortalRoles.Owner);
        var page = Render<Dashboard>();
        page.WaitForAssertion(() => Assert.Equal("1,200 credits are held for running jobs (reservations); 3,800 are available for new jobs.",
            page.Find("[data-testid=reserved]").TextContent.Trim()));
        Assert.Equal("5,000", page.Find("[data-testid=remaining]").TextContent); // a hold is not consumption
    }

    [Fact]
    public async Task Dashboard_SaysWhatExpiresSoon_AndShowsOverageInCreditsAndDollars()
    {
        await Harness.CreateTenantAsync("acme", "professional"); // 25,000 credits, period 1–30 Apr
        await Harness.Get<GrantCredits>().ExecuteAsync("acme", EntrySource.Adjustment, 3_000, "adjustment:goodwill", expiresAt: Harness.Time.GetUtcNow().AddDays(3));
        Harness.Time.Advance(TimeSpan.FromDays(25)); // 26 Apr: both grants expire on 1 May
        await Harness.IngestAsync("acme", Enumerable.Range(0, 100).Select(i => Events.Call($"e{i}", model: "gpt-4o", input: 1_000_000, output: 0, at: Harness.Time.GetUtcNow())).ToArray()); // 30,000 credits
        await Harness.FlushAsync();
        SignIn("acme", PortalRoles.Member);
        var page = Render<Dashboard>();
        page.WaitForAssertion(() => Assert.Contains("Overage so far this period: 2,000 credits ($24.00).", page.Find("[data-testid=overage]").TextContent), TimeSpan.FromSeconds(10));
        Assert.Empty(page.FindAll("[data-testid=expiring-soon]")); // nothing left to expire

        await DisposeComponentsAsync();
        // A pack that expires with the period covers the overage first (it counts in the whole period), and what it has left expires soon.
        await Harness.Get<GrantCredits>().ExecuteAsync("acme", EntrySource.TopUp, 5_000, "top_up:more", expiresAt: Harness.Time.GetUtcNow().AddDays(2));
        Harness.Time.Advance(DashboardSnapshots.MaxAge);
        var after = Render<Dashboard>();
        after.WaitForAssertion(() => Assert.Equal("3,000 credits expire on 1 May unless used before. See every grant", after.Find("[data-testid=expiring-soon]").TextContent.Trim()), TimeSpan.FromSeconds(10));
        Assert.Empty(after.FindAll("[data-testid=overage]"));
        Assert.Equal("3,000", after.Find("[data-testid=remaining]").TextContent);
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
        // Past the snapshot's shortest gap between reads, far from the page's 4 s poll: the clock then stands still, so only
        // the push of the usage committed (TenantChanges) can bring the new figure.
        Harness.Time.Advance(DashboardSnapshots.MinInterval + TimeSpan.FromMilliseconds(100));
        await Harness.IngestAsync("acme", Events.Call("live", model: "gpt-4o", input: 1_000_000, output: 0));
        page.WaitForAssertion(() => Assert.Equal("300", page.Find("[data-testid=consumed]").TextContent), TimeSpan.FromSeconds(5));
    }
}
