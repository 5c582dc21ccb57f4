using System.Net;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Rpt.Portal.Data;

namespace Rpt.Portal.Tests.Components.Account;

/// <summary>The sign-in pages as a visitor who is not signed in, or who is not who they say, meets them.</summary>
[Trait("Kind", "Http")]
public class AccountPagesTests
{
    [Theory]
    [InlineData("/Account/LoginWith2fa")]
    [InlineData("/Account/LoginWithRecoveryCode")]
    public async Task TwoFactorPages_WithoutASignInInProgress_SendTheVisitorToSignIn(string path)
    {
        await using var app = new ApiFactory();
        var client = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        var response = await client.GetAsync(path + "?ReturnUrl=%2Fusage");
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal("/Account/Login", new Uri(new Uri("http://localhost"), response.Headers.Location!).AbsolutePath);
    }

    /// <summary>Before, any visitor could read a confirmation link for any registered but unconfirmed address here,
    /// in every environment, and an unknown address answered 404: the page both enumerated and handed over accounts.</summary>
    [Theory]
    [InlineData("Testing")]
    [InlineData("Development")]
    public async Task RegisterConfirmation_ForSomebodyElsesAddress_ShowsNoLink_AndTheSameAnswerAsForNoAccount(string environment)
    {
        await using var app = new ApiFactory(environment: environment);
        using (var scope = app.Services.CreateScope())
        {
            var users = scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>();
            Assert.True((await users.CreateAsync(new ApplicationUser { UserName = "victim@example.com", Email = "victim@example.com" }, "Secret-123!")).Succeeded);
        }
        var client = app.CreateClient();
        var existing = await client.GetAsync("/Account/RegisterConfirmation?email=victim%40example.com");
        var unknown = await client.GetAsync("/Account/RegisterConfirmation?email=nobody%40example.com");
        Assert.Equal(HttpStatusCode.OK, existing.StatusCode);
        Assert.Equal(HttpStatusCode.OK, unknown.StatusCode);
        var page = await existing.Content.ReadAsStringAsync();
        Assert.DoesNotContain("ConfirmEmail", page);
        Assert.Contains("check your email", page, StringComparison.OrdinalIgnoreCase);
        // Each page names the address it was asked about, and nothing else differs.
        Assert.Equal(Strip(page).Replace("victim", "someone"), Strip(await unknown.Content.ReadAsStringAsync()).Replace("nobody", "someone"));
    }

    /// <summary>Links from mail arrive cut, doubled or forged: each answers with a page that says so, never a server error.</summary>
    [Theory]
    [InlineData("/Account/ConfirmEmail?userId=x&code=%25%25%25")]
    [InlineData("/Account/ConfirmEmail?userId=x&code=not*base64")]
    [InlineData("/Account/ResetPassword?code=%E2%82%AC%E2%82%AC")]
    [InlineData("/Account/ConfirmEmailChange?userId=x&email=a%40b.c&code=%%")]
    [InlineData("/Account/Join?userId=x&code=not*base64")]
    [InlineData("/Account/Join")]
    public async Task MangledLinks_AnswerAPage_NotAServerError(string path)
    {
        await using var app = new ApiFactory();
        var client = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        var longId = await client.GetAsync("/Account/Join?userId=" + new string('a', 5000) + "&code=abc");
        Assert.True((int)longId.StatusCode < 500, $"a 5,000-character id answered {(int)longId.StatusCode}");
        var response = await client.GetAsync(path);
        Assert.True((int)response.StatusCode < 500, $"{path} answered {(int)response.StatusCode}");
    }

    /// <summary>The theme switch of the static pages: a preference cookie and a way back to a page of the portal only.</summary>
    [Theory]
    [InlineData("/theme/dark?returnUrl=%2Fusage", 302, "/usage", "rpt-theme=dark")]
    [InlineData("/theme/light?returnUrl=%2F%2Fevil.example", 302, "/", "rpt-theme=light")]
    [InlineData("/theme/dark?returnUrl=https%3A%2F%2Fevil.example%2F", 302, "/", "rpt-theme=dark")]
    [InlineData("/theme/system?returnUrl=%2FAccount%2FLogin", 302, "/Account/Login", "rpt-theme=;")]
    [InlineData("/theme/purple", 400, null, null)]
    public async Task ThemeSwitch_SetsTheCookie_AndReturnsOnlyToThePortal(string path, int status, string? location, string? cookie)
    {
        await using var app = new ApiFactory();
        var client = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        var response = await client.GetAsync(path);
        Assert.Equal(status, (int)response.StatusCode);
        if (location is not null) Assert.Equal(location, response.Headers.Location!.OriginalString);
        if (cookie is not null) Assert.Contains(response.Headers.GetValues("Set-Cookie"), c => c.StartsWith(cookie, StringComparison.Ordinal));
        else Assert.Contains("mode must be dark, light or system", await response.Content.ReadAsStringAsync());
    }

    /// <summary>The light or dark choice is drawn by the server before any script runs: no page flashes the other theme.</summary>
    [Theory]
    [InlineData("rpt-theme=dark", null, "dark")]
    [InlineData("rpt-theme=light", "dark", "light")]
    [InlineData(null, "dark", "dark")]   // no choice: the browser's preference
    [InlineData(null, null, "light")]
    public async Task SignInPage_IsDrawnInTheChosenTheme_OrTheSystems(string? cookie, string? hint, string expected)
    {
        await using var app = new ApiFactory();
        var client = app.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/Account/Login");
        if (cookie is not null) request.Headers.Add("Cookie", cookie);
        if (hint is not null) request.Headers.Add("Sec-CH-Prefers-Color-Scheme", hint);
        var response = await client.SendAsync(request);
        Assert.Contains($"data-theme=\"{expected}\"", await response.Content.ReadAsStringAsync());
        Assert.Contains("Sec-CH-Prefers-Color-Scheme", response.Headers.GetValues("Accept-CH"));
    }

    /// <summary>Pages differ only in per-request tokens (antiforgery, CSP nonce, the protected component markers).</summary>
    private static string Strip(string html) => Regex.Replace(Regex.Replace(html, "(value|nonce)=\"[^\"]*\"", ""), "<!--Blazor[:-].*?-->", "");
}
