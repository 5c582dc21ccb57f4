using Bunit;
using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Billing.Marketplace;
using Rpt.Portal.Data;
using Rpt.Portal.Operations.Pages;
using Rpt.Portal.Tenants;
using Rpt.Portal.Tests.Operations;

namespace Rpt.Portal.Tests.Billing.Marketplace;

/// <summary>A tenant that pays through AWS Marketplace: its owner is told where it pays, its operator sees its report log.</summary>
[Trait("Kind", "Component")]
public sealed class MarketplacePagesTests : OperatorComponentTest
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private async Task MarketplaceTenantAsync(bool stopped = false)
    {
        await Harness.CreateTenantAsync("acme", "enterprise");
        var now = Harness.Time.GetUtcNow();
        await using var db = await Harness.Get<IDbContextFactory<ApplicationDbContext>>().CreateDbContextAsync();
        var account = new MarketplaceAccount("acme", "cust-acme", "123456789012", "rpt-product", 0, now.AddHours(-3));
        if (stopped) account.StopReporting("AWS answered CustomerNotSubscribed for record #3 (12 credits)", now);
        db.MarketplaceAccounts.Add(account);
        var first = new MarketplaceReport("acme", 1, "123456789012", "rpt-product", "credits", now.AddHours(-2), 1_234, 1_234, now.AddHours(-2));
        first.Answered(MarketplaceReportStatus.Accepted, "mr-1", now.AddHours(-2));
        var second = new MarketplaceReport("acme", 2, "123456789012", "rpt-product", "credits", now.AddHours(-1), 56, 1_290, now.AddHours(-1));
        second.Retry("ThrottlingException: Rate exceeded. (HTTP 400)", now.AddHours(-1));
        second.Answered(MarketplaceReportStatus.Duplicate, "mr-2", now.AddMinutes(-59));
        db.MarketplaceReports.AddRange(first, second);
        await db.SaveChangesAsync();
    }

    [Fact]
    public async Task TheOwnersPlansAndBillingPages_SayTheAccountPaysThroughAwsMarketplace_AndOfferNoCheckout()
    {
        await MarketplaceTenantAsync();
        SignIn("acme", PortalRoles.Owner);
        var plans = Render<Rpt.Portal.Billing.Pages.Plans>();
        plans.WaitForAssertion(() => Assert.Contains("pays through AWS Marketplace (AWS account 123456789012)", plans.Find("[data-testid=marketplace-billing]").TextContent), Wait);
        Assert.Equal("https://console.aws.amazon.com/marketplace/home#/subscriptions", plans.Find("[data-testid=marketplace-subscription]").GetAttribute("href"));
        Assert.Empty(plans.FindAll("[data-testid^=plan-]")); // no plan to choose, nothing to check out
        Assert.Empty(plans.FindAll("[data-testid^=preview-]"));

        var billing = Render<Rpt.Portal.Billing.Pages.BillingPage>();
        billing.WaitForAssertion(() => Assert.Contains("billed on your AWS invoice", billing.Find("[data-testid=marketplace-billing]").TextContent), Wait);
        Assert.Empty(billing.FindAll("[data-testid=payments-unavailable]"));
    }

    [Fact]
    public async Task TheOperatorsTenantPage_ShowsTheBillingSource_TheReportLog_AndWhyReportingStopped()
    {
        await MarketplaceTenantAsync(stopped: true);
        await SignInOperatorAsync("ops@rpt.test", twoFactor: true);
        var page = Render<TenantPage>(p => p.Add(x => x.TenantId, "acme"));
        page.WaitForAssertion(() => Assert.Contains("aws_marketplace", page.Find("[data-testid=tenant-marketplace]").TextContent), Wait);
        Assert.Contains("AWS account 123456789012", page.Find("[data-testid=tenant-marketplace]").TextContent);
        Assert.Contains("reported: 1,290 credits", page.Find("[data-testid=tenant-marketplace]").TextContent);
        Assert.Contains("CustomerNotSubscribed", page.Find("[data-testid=tenant-marketplace-stopped]").TextContent);
        var rows = page.FindAll("[data-testid=tenant-marketplace-log] tbody tr").Select(r => r.TextContent).ToList();
        Assert.Equal(2, rows.Count);
        Assert.Contains("56", rows[0]);
        Assert.Contains("duplicate (mr-2)", rows[0]);
        Assert.Contains("accepted (mr-1)", rows[1]);
    }

    [Fact]
    public async Task ASignedInOwner_LinksTheirOrganisation_AndWhatItUsedBeforeIsNeverReported()
    {
        await Harness.CreateTenantAsync("acme", "starter");
        Assert.Equal(3, (await Harness.IngestAsync("acme", Events.Call("b1"), Events.Call("b2"), Events.Call("b3"))).Accepted);
        await using (var db = await Harness.Get<IDbContextFactory<ApplicationDbContext>>().CreateDbContextAsync())
        {
            db.MarketplaceRegistrations.Add(new MarketplaceRegistration("0123456789abcdef0123456789abcdef", new string('a', 64), "cust-link", "210987654321", "rpt-product", Harness.Time.GetUtcNow()));
            await db.SaveChangesAsync();
        }
        SignIn("acme", PortalRoles.Owner);
        var page = Render<Rpt.Portal.Components.Account.Pages.MarketplaceLink>(p => p.Add(x => x.Id, "0123456789abcdef0123456789abcdef"));
        page.WaitForAssertion(() => Assert.Contains("AWS account 210987654321", page.Markup), Wait);
        // The submit handler reads and writes the database; its task is awaited to the end, then the link is looked for.
        await page.InvokeAsync(() => page.Find("form[data-testid=marketplace-link]").SubmitAsync(EventArgs.Empty));
        MarketplaceAccount? linked = null;
        for (var i = 0; i < 100 && linked is null; i++)
        {
            linked = await Harness.Get<MarketplaceRegistrations>().AccountAsync("acme");
            if (linked is null) await Task.Delay(100);
        }
        Assert.NotNull(linked);
        Assert.Equal("210987654321", linked.CustomerAwsAccountId);
        // Its plan paid for what it used before: the baseline is that, so the first record starts from zero.
        var consumed = Harness.Get<ReportMarketplaceUsage>().ConsumedMicroCredits("acme");
        Assert.True(consumed > 0);
        Assert.Equal((long)consumed, linked.BaselineMicroCredits);

        var again = Render<Rpt.Portal.Components.Account.Pages.MarketplaceLink>(p => p.Add(x => x.Id, "0123456789abcdef0123456789abcdef"));
        again.WaitForAssertion(() => Assert.Contains("This registration is not open", again.Markup), Wait);
    }
}
