using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using Rpt.Portal.Data;
using Rpt.Portal.Operations;
using Rpt.Portal.Tenants;
using static Rpt.Portal.Tests.Browser.BrowserPages;

namespace Rpt.Portal.Tests.Browser;

/// <summary>An operator signs in with a password and an authenticator code and works through every console page (light, dark, phone, axe); a tenant's owner cannot.</summary>
[Collection(BrowserCollection.Name)]
[Trait("Kind", "Browser")]
public class OperationsBrowserTests(BrowserFixture fx)
{
    [Fact]
    public async Task AnOperator_SignsInWithTwoFactor_ReadsAndVerifiesTheAuditLog_AnOwnerIsRefused()
    {
        string key;
        using (var scope = fx.App.Services.CreateScope())
        {
            var users = scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>();
            var user = new ApplicationUser { UserName = "ops@operations.test", Email = "ops@operations.test", EmailConfirmed = true };
            Assert.True((await users.CreateAsync(user, "Secret-123!")).Succeeded);
            await users.AddToRoleAsync(user, PortalRoles.Operator);
            await users.ResetAuthenticatorKeyAsync(user);
            key = (await users.GetAuthenticatorKeyAsync(user))!;
            await users.SetTwoFactorEnabledAsync(user, true);
        }
        await fx.App.Get<AuditLog>().AppendAsync(new AuditActor("ops@operations.test", "cli@ops-host"), "credits.grant", "acme-ops", "ledger seq 2", null,
            new { credits = 500, source = "adjustment", reason = "refund of the 3 December outage" });

        await CreateOwnerAsync(fx, "Not Ops Co", "owner@notops.test", "starter"); // a tenant whose chain the ledger page checks
        var violations = new List<string>();
        foreach (var (theme, width) in new[] { ("light", 1366), ("dark", 1366), ("light", PhoneWidth) })
        {
            var context = await NewContextAsync(fx, width, width == PhoneWidth ? PhoneHeight : 900, theme);
            try
            {
                var page = await context.NewPageAsync();
                await page.GotoAsync("/Account/Login?ReturnUrl=%2Foperations%2Faudit");
                await page.FillAsync("#Input\\.Email", "ops@operations.test");
                await page.FillAsync("#Input\\.Password", "Secret-123!");
                await page.ClickAsync("button[type=submit]");
                await page.WaitForURLAsync(new Regex("LoginWith2fa"));
                await page.FillAsync("#Input\\.TwoFactorCode", Totp(key, DateTimeOffset.UtcNow));
                await page.ClickAsync("button[type=submit]");
                await page.WaitForURLAsync(new Regex("/operations/audit$"));
                await WaitInteractiveAsync(page);
                var row = page.GetByTestId("audit-records").Locator("tbody tr", new() { HasText = "refund of the 3 December outage" });
                await Assertions.Expect(row).ToContainTextAsync("credits.grant");
                await Assertions.Expect(row).ToContainTextAsync("cli@ops-host");
                await page.GetByTestId("audit-verify").ClickAsync();
                await Assertions.Expect(page.GetByTestId("audit-verification")).ToContainTextAsync("Intact");
                var suffix = width == PhoneWidth ? "phone" : theme;
                await page.ScreenshotAsync(new() { Path = Shot("operations-audit-" + suffix), FullPage = true });
                violations.AddRange(await AxeAsync(page, "operations/audit " + suffix));

                await page.GotoAsync("/operations/ledger");
                await WaitInteractiveAsync(page);
                await page.GetByTestId("verify-all").ClickAsync();
                await Assertions.Expect(page.GetByTestId("verify-summary")).ToContainTextAsync("tenants checked", new() { Timeout = 15_000 });
                await Assertions.Expect(page.GetByTestId("verify-summary")).ToContainTextAsync(", 0 broken.");
                await page.GetByTestId("reconcile").ClickAsync();
                await Assertions.Expect(page.GetByTestId("reconcile-summary")).ToContainTextAsync("paid Stripe objects", new() { Timeout = 15_000 });
                await page.ScreenshotAsync(new() { Path = Shot("operations-ledger-" + suffix), FullPage = true });
                violations.AddRange(await AxeAsync(page, "operations/ledger " + suffix));

                // Tenants: found by name, opened, corrected (once, on the first pass) with an audit record from the browser.
                await page.GotoAsync("/operations/tenants?q=Not%20Ops");
                await WaitInteractiveAsync(page);
                await Assertions.Expect(page.GetByTestId("tenants").Locator("tbody tr")).ToHaveCountAsync(1);
                await page.ScreenshotAsync(new() { Path = Shot("operations-tenants-" + suffix), FullPage = true });
                violations.AddRange(await AxeAsync(page, "operations/tenants " + suffix));
                await page.GetByTestId("tenants").Locator("tbody tr a").First.ClickAsync();
                await page.WaitForURLAsync(new Regex("/operations/tenants/"));
                await WaitInteractiveAsync(page);
                await Assertions.Expect(page.GetByTestId("tenant-remaining")).Not.ToBeEmptyAsync();
                if (theme == "light" && width != PhoneWidth)
                {
                    await page.GetByTestId("grant-credits").FillAsync("750");
                    await page.GetByTestId("grant-reason").FillAsync("Goodwill after the 3 December outage");
                    await page.GetByTestId("grant-submit").ClickAsync();
                    await Assertions.Expect(page.GetByTestId("correction-result")).ToContainTextAsync("Granted 750 credits");
                    await page.GetByTestId("tenant-grants").GetByRole(AriaRole.Button, new() { Name = "Void" }).First.ClickAsync();
                    await page.GetByTestId("void-reason").FillAsync("Granted to the wrong account");
                    await page.GetByTestId("void-confirm").ClickAsync();
                    await Assertions.Expect(page.GetByTestId("correction-result")).ToContainTextAsync("Voided 750 credits");
                }
                await page.ScreenshotAsync(new() { Path = Shot("operations-tenant-" + suffix), FullPage = true });
                violations.AddRange(await AxeAsync(page, "operations/tenants/{id} " + suffix));

                await page.GotoAsync("/operations/prices");
                await WaitInteractiveAsync(page);
                await Assertions.Expect(page.GetByTestId("price-book")).ToContainTextAsync("gpt-4o-mini");
                await page.GetByTestId("price-name").FillAsync("gpt-4o-mini");
                await page.GetByTestId("price-input").FillAsync("0.30");
                await page.GetByTestId("price-output").FillAsync("1.20");
                await page.GetByTestId("price-preview").ClickAsync();
                await Assertions.Expect(page.GetByTestId("price-preview-summary")).ToBeVisibleAsync();
                await page.ScreenshotAsync(new() { Path = Shot("operations-prices-" + suffix), FullPage = true });
                violations.AddRange(await AxeAsync(page, "operations/prices " + suffix));

                await page.GotoAsync("/operations/plans");
                await WaitInteractiveAsync(page);
                await Assertions.Expect(page.GetByTestId("plans")).ToContainTextAsync("professional");
                await page.ScreenshotAsync(new() { Path = Shot("operations-plans-" + suffix), FullPage = true });
                violations.AddRange(await AxeAsync(page, "operations/plans " + suffix));
            }
            finally
            {
                await context.DisposeAsync();
            }
        }
        Assert.True(violations.Count == 0, string.Join("\n", violations));
        var corrections = (await fx.App.Get<AuditLog>().ListAsync()).Where(r => r.Action is "credits.grant" or "credits.void" && r.Actor == "ops@operations.test" && r.Origin != "cli@ops-host").ToList();
        Assert.Equal(["credits.void", "credits.grant"], corrections.Select(r => r.Action));
        Assert.All(corrections, r => Assert.Equal("browser@127.0.0.1", r.Origin));

        // A tenant's owner is refused the page and the download.
        var owner = await NewContextAsync(fx);
        try
        {
            var page = await SignInAsync(owner, "owner@notops.test", "Secret-123!");
            await page.GotoAsync("/operations/audit");
            await Assertions.Expect(page.Locator("body")).Not.ToContainTextAsync("credits.grant");
            var csv = await page.APIRequest.GetAsync("/operations/audit.csv", new() { MaxRedirects = 0 });
            Assert.Equal(302, csv.Status); // to the access-denied page
            Assert.Contains("AccessDenied", csv.Headers["location"]);
            Assert.DoesNotContain("credits.grant", await csv.TextAsync());
        }
        finally
        {
            await owner.DisposeAsync();
        }
    }

    /// <summary>RFC 6238: the code an authenticator app shows for this key now (HMAC-SHA1, 30 s, 6 digits).</summary>
    private static string Totp(string base32Key, DateTimeOffset at)
    {
        var bits = new List<byte>();
        int buffer = 0, count = 0;
        foreach (var c in base32Key.ToUpperInvariant().Where(c => c != ' ' && c != '='))
        {
            buffer = (buffer << 5) | "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".IndexOf(c);
            count += 5;
            if (count >= 8) { bits.Add((byte)(buffer >> (count - 8))); count -= 8; }
        }
        var counter = BitConverter.GetBytes(at.ToUnixTimeSeconds() / 30);
        if (BitConverter.IsLittleEndian) Array.Reverse(counter);
        var hash = HMACSHA1.HashData(bits.ToArray(), counter);
        var offset = hash[^1] & 0x0f;
        var code = ((hash[offset] & 0x7f) << 24 | hash[offset + 1] << 16 | hash[offset + 2] << 8 | hash[offset + 3]) % 1_000_000;
        return code.ToString("D6");
    }
}
