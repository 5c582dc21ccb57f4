using Rpt.Portal.Billing;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using Rpt.Portal.Components;
using Rpt.Portal.Data;

using static Rpt.Portal.Tests.Browser.BrowserPages;
using Rpt.Portal.Plans;

namespace Rpt.Portal.Tests.Browser;

/// <summary>
/// An owner upgrades Free → Professional through test mode's labelled checkout (no Stripe key is set in the
/// browser fixture) and sees the new allocation on the dashboard; a member of the same account sees the
/// plans read-only, with the owner to ask.
/// </summary>
[Collection(BrowserCollection.Name)]
[Trait("Kind", "Browser")]
public class BillingBrowserTests(BrowserFixture fx)
{
    private async Task<string> CreateUserAsync(string email, string password, string role, string? tenantId)
    {
        using var scope = fx.App.Services.CreateScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>();
        if (tenantId is null)
        {
            var created = await fx.App.Get<Rpt.Portal.Billing.CreateTenant>().ExecuteAsync("Upgrade Co", "free");
            Assert.Null(created.Error);
            tenantId = created.Tenant!.Id;
        }
        var user = new ApplicationUser { UserName = email, Email = email, EmailConfirmed = true, TenantId = tenantId };
        Assert.True((await users.CreateAsync(user, password)).Succeeded);
        Assert.True((await users.AddToRoleAsync(user, role)).Succeeded);
        return tenantId;
    }

    [Fact]
    public async Task Owner_UpgradesFreeToProfessional_ThroughTheTestModeCheckout_AndAMemberCannot()
    {
        var tenant = await CreateUserAsync("owner@upgrade.test", "Secret-123!", PortalRoles.Owner, null);
        await CreateUserAsync("member@upgrade.test", "Secret-123!", PortalRoles.Member, tenant);
        var context = await fx.Browser.NewContextAsync(new() { BaseURL = fx.BaseUrl, ViewportSize = new() { Width = 1366, Height = 900 } });
        var errors = new List<string>();
        context.Console += (_, m) => { if (m.Type == "error") errors.Add($"console: {m.Text}"); };
        IPage? page = null;
        try
        {
            page = await SignInAsync(context, "owner@upgrade.test", "Secret-123!");
            await Assertions.Expect(page.GetByTestId("allocated")).ToHaveTextAsync("1,000");

            await page.ClickAsync("a[href='plans']");
            await Assertions.Expect(page).ToHaveURLAsync(new Regex("/plans$"));
            await WaitInteractiveAsync(page);
            await Assertions.Expect(page.GetByTestId("plan-free").GetByTestId("current-plan")).ToBeVisibleAsync();
            await Assertions.Expect(page.GetByTestId("plan-enterprise").GetByTestId("contact-us")).ToBeVisibleAsync();
            await Assertions.Expect(page.GetByTestId("plan-professional")).ToContainTextAsync("Past the allocation: $0.012 per credit");
            await Assertions.Expect(page.GetByTestId("test-mode")).ToBeVisibleAsync();

            await page.GetByTestId("preview-professional").ClickAsync();
            var preview = page.GetByRole(AriaRole.Dialog);
            await Assertions.Expect(preview).ToContainTextAsync("Upgrade from Free to Professional, at once");
            await Assertions.Expect(preview).ToContainTextAsync("24,000 credits are added to this period now");
            await Assertions.Expect(page.GetByTestId("preview-allocated")).ToHaveTextAsync("25,000");
            await page.ScreenshotAsync(new() { Path = Shot("plans-preview-light") });
            await page.Keyboard.PressAsync("Escape");
            await Assertions.Expect(preview).ToHaveCountAsync(0);
            await page.ScreenshotAsync(new() { Path = Shot("plans-light"), FullPage = true });
            await page.GetByLabel("Switch to dark theme").ClickAsync();
            await page.GetByTestId("preview-professional").ClickAsync();
            await Assertions.Expect(page.GetByTestId("preview-allocated")).ToHaveTextAsync("25,000");
            await page.WaitForTimeoutAsync(400);
            await page.ScreenshotAsync(new() { Path = Shot("plans-preview-dark") });
            await page.Keyboard.PressAsync("Escape");
            await page.GetByLabel("Switch to light theme").ClickAsync();
            await page.GetByTestId("preview-professional").ClickAsync();

            await page.GetByTestId("confirm-change").ClickAsync();
            await Assertions.Expect(page).ToHaveURLAsync(new Regex("/billing/test-checkout/cs_test_")); // in-circuit navigation: no load event
            await WaitInteractiveAsync(page);
            await Assertions.Expect(page.GetByTestId("test-checkout-banner")).ToContainTextAsync("TEST MODE CHECKOUT");
            await page.ScreenshotAsync(new() { Path = Shot("test-checkout"), FullPage = true });
            await page.GetByTestId("test-pay").ClickAsync();
            await Assertions.Expect(page).ToHaveURLAsync(new Regex("/billing/success\\?session_id=cs_test_")); // in-circuit navigation: no load event
            await Assertions.Expect(page.GetByTestId("checkout-success")).ToContainTextAsync("The account is on Professional now: 24,000 credits were added");
            await page.ScreenshotAsync(new() { Path = Shot("checkout-success"), FullPage = true });

            await page.ClickAsync("a[href='']");
            await WaitInteractiveAsync(page);
            await Assertions.Expect(page.GetByTestId("allocated")).ToHaveTextAsync("25,000");

            await page.GotoAsync("/billing");
            await WaitInteractiveAsync(page);
            await Assertions.Expect(page.GetByTestId("invoices")).ToContainTextAsync("First payment");
            await page.ScreenshotAsync(new() { Path = Shot("billing"), FullPage = true });

            // A failed renewal payment shows on every page of the owner until an invoice is paid.
            await page.GetByTestId("customer-portal").ClickAsync();
            await Assertions.Expect(page).ToHaveURLAsync(new Regex("/billing/test-portal$")); // in-circuit navigation: no load event
            await WaitInteractiveAsync(page);
            await page.GetByTestId("test-portal-fail").ClickAsync();
            await Assertions.Expect(page.GetByTestId("payment-failed-banner")).ToBeVisibleAsync();
            await page.GotoAsync("/usage");
            await Assertions.Expect(page.GetByTestId("payment-failed-banner")).ToBeVisibleAsync();
            await page.ScreenshotAsync(new() { Path = Shot("payment-failed-banner"), FullPage = false });
            await page.GotoAsync("/billing/test-portal");
            await WaitInteractiveAsync(page);
            await page.GetByTestId("test-portal-pay").ClickAsync();
            await Assertions.Expect(page.GetByTestId("payment-failed-banner")).ToHaveCountAsync(0);

            // The owner buys a pack: it is granted once, used after the plan allocation, and expires in 12 months.
            await page.GotoAsync("/credits");
            await WaitInteractiveAsync(page);
            await page.GetByTestId("buy-topup_5k").ClickAsync();
            await Assertions.Expect(page).ToHaveURLAsync(new Regex("/billing/test-checkout/cs_test_"));
            await WaitInteractiveAsync(page);
            await page.GetByTestId("test-pay").ClickAsync();
            await Assertions.Expect(page.GetByTestId("checkout-success")).ToContainTextAsync("5,000 credits were added to the account");
            await page.GotoAsync("/credits");
            await WaitInteractiveAsync(page);
            await Assertions.Expect(page.GetByTestId("drawdown-step")).ToHaveCountAsync(3); // Free's sign-up, the upgrade's difference, the pack
            await Assertions.Expect(page.GetByTestId("drawdown-step").Nth(0)).ToContainTextAsync("1. Sign-up · 1,000 credits");
            await Assertions.Expect(page.GetByTestId("drawdown-step").Nth(1)).ToContainTextAsync("2. Plan change · 24,000 credits");
            await Assertions.Expect(page.GetByTestId("drawdown-step").Nth(2)).ToContainTextAsync("3. Top-up · 5,000 credits");
            await page.ScreenshotAsync(new() { Path = Shot("credits-after-top-up"), FullPage = true });
            await page.GotoAsync("/");
            await WaitInteractiveAsync(page);
            await Assertions.Expect(page.GetByTestId("allocated")).ToHaveTextAsync("30,000");

            // A member sees the plans, read-only, and whom to ask.
            var member = await SignInAsync(await fx.Browser.NewContextAsync(new() { BaseURL = fx.BaseUrl }), "member@upgrade.test", "Secret-123!");
            await member.GotoAsync("/plans");
            await WaitInteractiveAsync(member);
            await Assertions.Expect(member.GetByTestId("plans-read-only")).ToContainTextAsync("Ask owner@upgrade.test.");
            await Assertions.Expect(member.GetByTestId("plan-professional").GetByTestId("current-plan")).ToBeVisibleAsync();
            await member.GetByTestId("preview-business").ClickAsync();
            await Assertions.Expect(member.GetByRole(AriaRole.Dialog)).ToContainTextAsync("Upgrade from Professional to Business");
            await Assertions.Expect(member.GetByRole(AriaRole.Dialog)).ToContainTextAsync("Only an owner can make this change. Ask owner@upgrade.test.");
            await Assertions.Expect(member.GetByTestId("confirm-change")).ToHaveCountAsync(0);
            await member.ScreenshotAsync(new() { Path = Shot("plans-member"), FullPage = true });
            await member.Context.DisposeAsync();

            Assert.True(errors.Count == 0, string.Join("\n", errors));
        }
        catch
        {
            if (page is not null) await page.ScreenshotAsync(new() { Path = Shot("billing-failure"), FullPage = true });
            throw;
        }
        finally
        {
            await context.DisposeAsync();
        }
    }
}
