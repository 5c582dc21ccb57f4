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

/// <summary>An operator signs in with a password and an authenticator code and reads the audit log; a tenant's owner cannot.</summary>
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
                var row = page.GetByTestId("audit-records").Locator("tbody tr").First;
                await Assertions.Expect(row).ToContainTextAsync("credits.grant");
                await Assertions.Expect(row).ToContainTextAsync("refund of the 3 December outage");
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
                await page.ScreenshotAsync(new() { Path = Shot("operations-ledger-" + suffix), FullPage = true });
                violations.AddRange(await AxeAsync(page, "operations/ledger " + suffix));
            }
            finally
            {
                await context.DisposeAsync();
            }
        }
        Assert.True(violations.Count == 0, string.Join("\n", violations));

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
