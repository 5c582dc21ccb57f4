using System.Text.RegularExpressions;
using Microsoft.Playwright;
using static Rpt.Portal.Tests.Browser.BrowserPages;

namespace Rpt.Portal.Tests.Browser;

/// <summary>The sign-in and account pages as a customer meets them, and an invitation from the mail to the dashboard.</summary>
[Collection(BrowserCollection.Name)]
[Trait("Kind", "Browser")]
public class AccountBrowserTests(BrowserFixture fx)
{
    private static readonly string[] SignedOutPages =
    [
        "Account/Login", "Account/Register", "Account/ForgotPassword", "Account/ForgotPasswordConfirmation",
        "Account/ResendEmailConfirmation", "Account/ResetPassword?code=bm90LWEtY29kZQ", "Account/Lockout",
        "Account/ConfirmEmail?userId=nobody&code=%%%", "Account/Join?userId=nobody&code=bm9wZQ",
    ];

    private static readonly string[] ManagePages =
    [
        "Account/Manage", "Account/Manage/Email", "Account/Manage/ChangePassword", "Account/Manage/TwoFactorAuthentication",
        "Account/Manage/EnableAuthenticator", "Account/Manage/Passkeys", "Account/Manage/PersonalData", "Account/Manage/DeletePersonalData",
    ];

    private static string Slug(string path) => Regex.Replace(path.Split('?')[0].Replace("Account/", "account-").Replace('/', '-'), "[^A-Za-z0-9-]", "").ToLowerInvariant();

    [Fact]
    public async Task AccountPages_ReadAsThePortal_InLightDarkAndPhone_WithCustomerWords()
    {
        await CreateOwnerAsync(fx, "Account Co", "owner@account.test", "starter");
        await CreateOwnerAsync(fx, "Pending Co", "pending@account.test", "starter", confirmed: false);
        var violations = new List<string>();
        var errors = new List<string>();
        // The three looks are checked once, on SQLite: what the engine changes is whether each page reads its data, which the
        // first look shows (the PostgreSQL pass walks the same pages in it; the whole run is kept under 20 minutes).
        (string Theme, int Width)[] looks = [("light", 1366), ("dark", 1366), ("light", PhoneWidth)];
        foreach (var (theme, width) in TestEngine.IsPostgres ? looks[..1] : looks)
        {
            var context = await NewContextAsync(fx, width, width == PhoneWidth ? PhoneHeight : 900, theme);
            var page = await context.NewPageAsync();
            TrackErrors(page, errors);
            var suffix = width == PhoneWidth ? "phone" : theme;
            try
            {
                foreach (var path in SignedOutPages) violations.AddRange(await VisitAsync(page, path, theme, suffix));
                await SignInAsync(context, "owner@account.test", "Secret-123!");
                foreach (var path in ManagePages) violations.AddRange(await VisitAsync(page, path, theme, suffix));
            }
            catch
            {
                await page.ScreenshotAsync(new() { Path = Shot("account-failure"), FullPage = true });
                throw;
            }
            finally
            {
                await context.DisposeAsync();
            }
        }

        // Messages written for customers: a wrong password, and an account still to confirm (told only to whoever knows the password).
        var ctx = await NewContextAsync(fx, theme: "light");
        var login = await ctx.NewPageAsync();
        await login.GotoAsync("/Account/Login");
        await login.FillAsync("#Input\\.Email", "owner@account.test");
        await login.FillAsync("#Input\\.Password", "Wrong-123!");
        await login.ClickAsync("button[type=submit]");
        await Assertions.Expect(login.GetByTestId("status-message")).ToContainTextAsync("That email and password do not match an account");
        await login.ScreenshotAsync(new() { Path = Shot("account-login-wrong-password") });
        await login.FillAsync("#Input\\.Email", "pending@account.test");
        await login.FillAsync("#Input\\.Password", "Wrong-123!");
        await login.ClickAsync("button[type=submit]");
        await Assertions.Expect(login.GetByTestId("status-message")).ToContainTextAsync("That email and password do not match an account");
        await login.FillAsync("#Input\\.Email", "pending@account.test");
        await login.FillAsync("#Input\\.Password", "Secret-123!");
        await login.ClickAsync("button[type=submit]");
        await Assertions.Expect(login.GetByTestId("status-message")).ToContainTextAsync("Confirm your email address first");
        await login.ScreenshotAsync(new() { Path = Shot("account-login-unconfirmed") });

        // The theme switch works on these static pages too, and is remembered.
        var plain = await NewContextAsync(fx);
        var p = await plain.NewPageAsync();
        await p.GotoAsync("/Account/Login");
        var before = await p.Locator(".mud-layout").GetAttributeAsync("data-theme");
        await p.GetByTestId("theme-toggle").ClickAsync();
        // What a person sees: the other theme, back on the same page (a retrying wait, not a navigation event to race).
        var after = before == "dark" ? "light" : "dark";
        await Assertions.Expect(p.Locator(".mud-layout")).ToHaveAttributeAsync("data-theme", after);
        await Assertions.Expect(p).ToHaveURLAsync(new Regex("/Account/Login$"));
        await p.ReloadAsync();
        Assert.Equal(after, await p.Locator(".mud-layout").GetAttributeAsync("data-theme"));
        await plain.DisposeAsync();
        await ctx.DisposeAsync();

        await File.WriteAllLinesAsync(Path.Combine(BrowserFixture.ArtifactsDirectory, "accessibility-violations-account.txt"), violations);
        // A broken link answers 400 on purpose (the page says why); the browser logs that status, and only that is expected.
        errors.RemoveAll(e => e.Contains("userId=nobody", StringComparison.Ordinal) && e.Contains("status of 400", StringComparison.Ordinal));
        Assert.True(errors.Count == 0, string.Join("\n", errors));
        Assert.True(violations.Count == 0, string.Join("\n", violations));
    }

    private static async Task<List<string>> VisitAsync(IPage page, string path, string theme, string suffix)
    {
        var response = await page.GotoAsync("/" + path);
        Assert.True(response is not null && response.Status < 500, $"/{path} answered {response?.Status}");
        await Assertions.Expect(page.Locator(".mud-layout")).ToHaveAttributeAsync("data-theme", theme);
        var name = Slug(path) + "-" + suffix;
        await page.ScreenshotAsync(new() { Path = Shot(name), FullPage = true });
        var text = await page.Locator("body").InnerTextAsync();
        foreach (var template in TemplateText) Assert.DoesNotContain(template, text, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(0, await page.Locator(".form-floating, .btn, .col-md-4").CountAsync()); // no stock-template markup left
        Assert.True(await page.EvaluateAsync<bool>("() => document.documentElement.scrollWidth <= window.innerWidth + 1"), $"{name} scrolls sideways");
        return await AxeAsync(page, name);
    }

    /// <summary>A first visit sends no theme hint (it comes only after Accept-CH): the page itself must follow the system.</summary>
    [Theory]
    [InlineData("dark")]
    [InlineData("light")]
    public async Task FirstVisit_WithoutAChoice_IsDrawnInTheSystemsTheme(string system)
    {
        var context = await fx.Browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = fx.BaseUrl,
            ColorScheme = system == "dark" ? ColorScheme.Dark : ColorScheme.Light,
            ViewportSize = new() { Width = 1366, Height = 900 },
        });
        var page = await context.NewPageAsync();
        var errors = new List<string>();
        TrackErrors(page, errors);
        await page.GotoAsync("/Account/Login");
        // The card behind the form: a dark surface in a dark system, a light one in a light system.
        var luminance = await page.Locator(".mud-paper").First.EvaluateAsync<double>("""
            el => {
                const [r, g, b] = getComputedStyle(el).backgroundColor.match(/\d+(\.\d+)?/g).map(Number);
                return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
            }
            """);
        if (system == "dark") Assert.True(luminance < 0.3, $"the first page of a dark system is drawn light (luminance {luminance:0.00})");
        else Assert.True(luminance > 0.7, $"the first page of a light system is drawn dark (luminance {luminance:0.00})");
        var text = await page.Locator("label[for='Input.Email'], .mud-input-label").First.EvaluateAsync<string>("el => getComputedStyle(el).color");
        Assert.False(string.IsNullOrEmpty(text));
        await page.ScreenshotAsync(new() { Path = Shot($"account-login-first-visit-{system}") });
        await context.DisposeAsync();
        Assert.True(errors.Count == 0, string.Join("\n", errors));
    }

    /// <summary>Opened by IP address, the browser cannot hold a passkey for the origin: none is offered, and nothing errs.</summary>
    [Fact]
    public async Task SignInByIpAddress_OffersNoPasskey_AndLogsNoError()
    {
        var byIp = fx.BaseUrl.Replace("localhost", "127.0.0.1");
        var context = await fx.Browser.NewContextAsync(new BrowserNewContextOptions { BaseURL = byIp });
        var page = await context.NewPageAsync();
        var errors = new List<string>();
        TrackErrors(page, errors);
        await page.GotoAsync("/Account/Login");
        await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { Name = "Sign in", Exact = true })).ToBeVisibleAsync();
        Assert.Equal(0, await page.GetByText("Sign in with a passkey").CountAsync());
        await page.WaitForTimeoutAsync(500); // the passkey script would have run its autofill by now
        Assert.True(errors.Count == 0, string.Join("\n", errors));
        await context.DisposeAsync();

        var byName = await fx.Browser.NewContextAsync(new BrowserNewContextOptions { BaseURL = fx.BaseUrl });
        var named = await byName.NewPageAsync();
        await named.GotoAsync("/Account/Login");
        await Assertions.Expect(named.GetByText("Sign in with a passkey")).ToBeVisibleAsync();
        await byName.DisposeAsync();
    }

    [Fact]
    public async Task Invitation_NamesTheOrganisationAndTheInviter_AndTheLinkJoinsWithAPassword()
    {
        await CreateOwnerAsync(fx, "Join Co", "owner@join.test", "starter");
        var ownerContext = await NewContextAsync(fx, theme: "light");
        var owner = await SignInAsync(ownerContext, "owner@join.test", "Secret-123!");
        await owner.GotoAsync("/team");
        await WaitInteractiveAsync(owner);
        await owner.GetByLabel("Email").FillAsync("new.member@join.test");
        await owner.ClickAsync("button:has-text('Invite')");
        await Assertions.Expect(owner.GetByTestId("team-message")).ToContainTextAsync("Invitation sent to new.member@join.test");

        var mail = await fx.MailAsync("new.member@join.test", "invited you");
        Assert.Equal("owner@join.test invited you to Join Co on Rpt Portal", mail.Subject);
        Assert.Contains("join Join Co on Rpt Portal as a member", mail.TextBody);
        Assert.DoesNotContain("reset", mail.TextBody, StringComparison.OrdinalIgnoreCase);
        await File.WriteAllTextAsync(Path.Combine(BrowserFixture.ArtifactsDirectory, "invitation-mail.txt"), $"Subject: {mail.Subject}\n\n{mail.TextBody}");

        var memberContext = await NewContextAsync(fx, theme: "light");
        var member = await memberContext.NewPageAsync();
        var link = BrowserFixture.LinkIn(mail);
        await member.GotoAsync(link);
        await Assertions.Expect(member.Locator("h1")).ToHaveTextAsync("Join Join Co: set your password");
        await Assertions.Expect(member.Locator("body")).ToContainTextAsync("owner@join.test invited you as member");
        Assert.Equal("new.member@join.test", await member.Locator("#invited-email").InputValueAsync());
        await member.ScreenshotAsync(new() { Path = Shot("join-light") });
        await member.FillAsync("#Input\\.Password", "Joined-123!");
        await member.FillAsync("#Input\\.ConfirmPassword", "Joined-123!");
        await member.ClickAsync("button[type=submit]");
        await member.WaitForURLAsync(new Regex("/$"));
        await WaitInteractiveAsync(member);
        await Assertions.Expect(member.GetByTestId("header-remaining")).ToContainTextAsync("credits left");

        // The link worked once.
        var again = await (await NewContextAsync(fx)).NewPageAsync();
        await again.GotoAsync(link);
        await Assertions.Expect(again.Locator("h1")).ToHaveTextAsync("This invitation does not work");

        await owner.ReloadAsync();
        await WaitInteractiveAsync(owner);
        await Assertions.Expect(owner.Locator("tr", new() { HasText = "new.member@join.test" })).ToContainTextAsync("active");
        await ownerContext.DisposeAsync();
        await memberContext.DisposeAsync();
    }
}
