using System.Text.RegularExpressions;
using Microsoft.EntityFrameworkCore;
using Microsoft.Playwright;
using Rpt.Portal.Data;
using static Rpt.Portal.Tests.Browser.BrowserPages;

namespace Rpt.Portal.Tests.Browser;

/// <summary>A buyer sent by AWS Marketplace: the token AWS posts, the account set up, and the pages for a token that cannot go on.</summary>
[Collection(BrowserCollection.Name)]
[Trait("Kind", "Browser")]
public class MarketplaceBrowserTests(BrowserFixture fx)
{
    /// <summary>What AWS Marketplace does: posts the buyer's browser, from its own site, with the registration token.</summary>
    private async Task PostTokenAsync(IPage page, string token)
    {
        await page.SetContentAsync($"""
            <html lang="en"><body><form method="post" action="{fx.BaseUrl}/marketplace/aws/register">
            <input type="hidden" name="x-amzn-marketplace-token" value="{token}"><button id="go">Set up your account</button></form></body></html>
            """);
        await page.ClickAsync("#go");
        await page.WaitForLoadStateAsync(LoadState.Load);
    }

    [Fact]
    public async Task ABuyerFromAwsMarketplace_SetsUpTheirAccount_AndAReplayedOrUnknownTokenGetsAPageThatSaysSo()
    {
        var violations = new List<string>();
        foreach (var (theme, width, n) in new[] { ("light", 1366, 1), ("dark", 1366, 2), ("light", PhoneWidth, 3) })
        {
            var suffix = width == PhoneWidth ? "phone" : theme;
            var account = $"24681357902{n}";
            fx.Aws.Tokens[$"mp-token-{n}"] = ($"cust-browser-{n}", account, BrowserFixture.MarketplaceProduct);
            var context = await NewContextAsync(fx, width, width == PhoneWidth ? PhoneHeight : 900, theme);
            try
            {
                var page = await context.NewPageAsync();
                await PostTokenAsync(page, $"mp-token-{n}");
                await page.WaitForURLAsync(new Regex(@"/Account/Register\?marketplace=[0-9a-f]{32}$"));
                await Assertions.Expect(page.GetByTestId("marketplace-registration")).ToContainTextAsync($"AWS account {account}");
                await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Set up your account" })).ToBeVisibleAsync();
                await page.ScreenshotAsync(new() { Path = Shot($"marketplace-register-{suffix}"), FullPage = true });
                violations.AddRange(await AxeAsync(page, "marketplace register " + suffix));
                var registration = page.Url;

                if (n == 1)
                {
                    await page.FillAsync("#Input\\.Organisation", "Cloud Buyer Co");
                    await page.FillAsync("#Input\\.Email", "buyer@cloud.test");
                    await page.FillAsync("#Input\\.Password", "Secret-123!");
                    await page.FillAsync("#Input\\.ConfirmPassword", "Secret-123!");
                    await page.ClickAsync("button[type=submit]");
                    await page.WaitForURLAsync(new Regex("/Account/RegisterConfirmation"));
                    await using var db = await fx.App.Get<IDbContextFactory<ApplicationDbContext>>().CreateDbContextAsync();
                    var linked = await db.MarketplaceAccounts.SingleAsync(a => a.CustomerAwsAccountId == account);
                    var tenant = await db.Tenants.SingleAsync(t => t.Id == linked.TenantId);
                    Assert.Equal(("Cloud Buyer Co", "enterprise"), (tenant.Name, tenant.PlanCode));

                    // The link again, once finished: nothing to finish twice.
                    await page.GotoAsync(registration);
                    await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "This registration is not open" })).ToBeVisibleAsync();
                }

                await PostTokenAsync(page, $"mp-token-{n}");
                await page.WaitForURLAsync(new Regex("/marketplace/aws/registration/replayed$"));
                await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "This registration was used already" })).ToBeVisibleAsync();
                await page.ScreenshotAsync(new() { Path = Shot($"marketplace-replayed-{suffix}"), FullPage = true });
                violations.AddRange(await AxeAsync(page, "marketplace replayed " + suffix));

                await PostTokenAsync(page, "never-issued-" + n);
                await page.WaitForURLAsync(new Regex("/marketplace/aws/registration/invalid$"));
                await Assertions.Expect(page.GetByTestId("marketplace-outcome")).ToBeVisibleAsync();
                await Assertions.Expect(page.Locator("h1")).ToHaveTextAsync("AWS did not recognise this registration");
                await page.ScreenshotAsync(new() { Path = Shot($"marketplace-invalid-{suffix}"), FullPage = true });
                violations.AddRange(await AxeAsync(page, "marketplace invalid " + suffix));
            }
            finally
            {
                await context.CloseAsync();
            }
        }
        Assert.Empty(violations);
        await using var check = await fx.App.Get<IDbContextFactory<ApplicationDbContext>>().CreateDbContextAsync();
        Assert.Equal(1, await check.MarketplaceAccounts.CountAsync(a => a.CustomerIdentifier.StartsWith("cust-browser-")));
    }

    [Fact]
    public async Task AnOwnerWhoHasAnAccount_SignsInAndLinksIt_AndThePlansPageThenSaysItPaysThroughAwsMarketplace()
    {
        await CreateOwnerAsync(fx, "Linked Co", "owner@linked.test", "starter");
        fx.Aws.Tokens["mp-link"] = ("cust-linked", "112233445566", BrowserFixture.MarketplaceProduct);
        var violations = new List<string>();
        foreach (var theme in new[] { "light", "dark" })
        {
            var context = await NewContextAsync(fx, theme: theme);
            try
            {
                var page = await SignInAsync(context, "owner@linked.test", "Secret-123!");
                if (theme == "light")
                {
                    await PostTokenAsync(page, "mp-link");
                    await page.WaitForURLAsync(new Regex(@"/Account/Register\?marketplace="));
                    await page.GetByText("Already have an account? Sign in and link it").ClickAsync();
                    await page.WaitForURLAsync(new Regex("/marketplace/aws/link/"));
                    await Assertions.Expect(page.Locator("h1")).ToHaveTextAsync("Pay through AWS Marketplace");
                    await page.ScreenshotAsync(new() { Path = Shot("marketplace-link-light"), FullPage = true });
                    violations.AddRange(await AxeAsync(page, "marketplace link"));
                    await page.GetByRole(AriaRole.Button, new() { Name = "Link my organisation" }).ClickAsync();
                    await page.WaitForURLAsync(new Regex("/plans$"));
                }
                else
                {
                    await page.GotoAsync("/plans");
                }
                await WaitInteractiveAsync(page);
                await Assertions.Expect(page.GetByTestId("marketplace-billing")).ToContainTextAsync("AWS account 112233445566");
                await Assertions.Expect(page.GetByTestId("header-remaining")).ToHaveTextAsync("Unlimited"); // on the marketplace plan: no allocation to run out of
                await page.ScreenshotAsync(new() { Path = Shot($"marketplace-plans-{theme}"), FullPage = true });
                violations.AddRange(await AxeAsync(page, "plans of a marketplace tenant " + theme));
            }
            finally
            {
                await context.CloseAsync();
            }
        }
        Assert.Empty(violations);
    }
}
