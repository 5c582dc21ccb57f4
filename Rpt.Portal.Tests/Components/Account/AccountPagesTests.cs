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
        Assert.Equal(Strip(page), Strip(await unknown.Content.ReadAsStringAsync()));
    }

    /// <summary>Pages differ only in per-request tokens (antiforgery, CSP nonce, the protected component markers).</summary>
    private static string Strip(string html) => Regex.Replace(Regex.Replace(html, "(value|nonce)=\"[^\"]*\"", ""), "<!--Blazor[:-].*?-->", "");
}
