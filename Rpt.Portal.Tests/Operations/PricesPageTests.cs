using Bunit;
using Rpt.Portal.Metering;
using Rpt.Portal.Operations;
using Rpt.Portal.Operations.Pages;

namespace Rpt.Portal.Tests.Operations;

/// <summary>The price book page: every version listed; a new one saved only after its preview, with the tenants it touches.</summary>
[Trait("Kind", "Component")]
public sealed class PricesPageTests : OperatorComponentTest
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task AVersion_IsPreviewedOnTheTenantsUsage_ThenSaved_AndListedAsScheduled()
    {
        await Harness.CreateTenantAsync("acme");
        await Harness.IngestAsync("acme", Events.Call("c1", "gpt-4o-mini", 1_000_000, 100_000, at: Harness.Time.GetUtcNow()));
        await Harness.FlushAsync();
        await SignInOperatorAsync("ops@rpt.test", twoFactor: true);
        var page = Render<PricesPage>();
        page.WaitForAssertion(() => Assert.Contains("gpt-4o-mini", page.Find("[data-testid=price-book]").TextContent), Wait);
        Assert.True(page.Find("[data-testid=price-save]").HasAttribute("disabled")); // no preview yet

        await page.Find("input[data-testid=price-name]").ChangeAsync("gpt-4o-mini");
        await page.Find("input[data-testid=price-input]").ChangeAsync("0.30");
        await page.Find("input[data-testid=price-output]").ChangeAsync("1.20");
        page.Find("[data-testid=price-preview]").Click();
        page.WaitForAssertion(() => Assert.Contains("acme", page.Find("[data-testid=price-preview-tenants]").TextContent), Wait);
        Assert.Contains("1 tenant(s) used it", page.Find("[data-testid=price-preview-summary]").TextContent);
        Assert.Contains("raises someone's charges", page.Find("[data-testid=price-preview-summary]").TextContent);

        page.Find("[data-testid=price-save]").Click();
        page.WaitForAssertion(() => Assert.Contains("Saved: openai gpt-4o-mini", page.Find("[data-testid=price-saved]").TextContent), Wait);
        var row = page.FindAll("[data-testid=price-book] tbody tr").Single(r => r.TextContent.Contains("gpt-4o-mini"));
        Assert.Contains("$0.30 in / $1.20 out per 1M tokens from", row.TextContent); // scheduled
        Assert.Contains("$0.15 in", row.TextContent); // still in effect
        var record = Assert.Single(await Harness.Get<AuditLog>().ListAsync());
        Assert.Equal(("price.add", "ops@rpt.test"), (record.Action, record.Actor));
        Assert.StartsWith("browser@", record.Origin);
    }

    [Fact]
    public async Task ThePage_IsClosedWithoutTwoFactor()
    {
        await SignInOperatorAsync("ops@rpt.test", twoFactor: false);
        var page = Render<PricesPage>();
        page.WaitForAssertion(() => page.Find("[data-testid=two-factor-required]"), Wait);
        Assert.Empty(page.FindAll("[data-testid=price-form]"));
    }
}
