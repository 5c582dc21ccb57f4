using System.Net;
using System.Net.Http.Headers;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;
using Rpt.Portal.Data;

namespace Rpt.Portal.Tests.Components;

[Trait("Kind", "Http")]
public class SecurityHeadersTests
{
    [Fact]
    public async Task EveryAnswer_RefusesSniffingAndFraming_AndPagesCarryAContentSecurityPolicy()
    {
        await using var app = new ApiFactory(environment: "Development"); // serves the import map, as a developer's run does
        var client = app.CreateClient();
        foreach (var path in new[] { "/Account/Login", "/v1/plans", "/v1/nothing-here", "/api/docs", "/app.css" })
        {
            var response = await client.GetAsync(path);
            Assert.Equal("nosniff", response.Headers.GetValues("X-Content-Type-Options").Single());
            Assert.Equal("DENY", response.Headers.GetValues("X-Frame-Options").Single());
        }
        var page = await client.GetAsync("/Account/Login");
        var csp = page.Headers.GetValues("Content-Security-Policy").Single();
        Assert.Contains("frame-ancestors 'none'", csp);
        Assert.Matches("script-src 'self' 'nonce-[A-Za-z0-9+/=]+'", csp);
        Assert.DoesNotContain("unsafe-inline' ; script", csp);
        // The one inline script of the page, its import map, carries that nonce.
        var nonce = Regex.Match(csp, "'nonce-([^']+)'").Groups[1].Value;
        // Every inline script of the page (the import map, where the build has one) carries that nonce; the browser
        // walk checks that no page breaks the policy.
        var html = await page.Content.ReadAsStringAsync();
        foreach (Match script in Regex.Matches(html, "<script(?![^>]*\\ssrc=)[^>]*>"))
            Assert.Contains($"nonce=\"{nonce}\"", script.Value);
        // The API reference runs under the same policy: only our scripts, each tag carrying this answer's nonce.
        var docs = await client.GetAsync("/api/docs/v1");
        var docsCsp = docs.Headers.GetValues("Content-Security-Policy").Single();
        Assert.Contains("frame-ancestors 'none'", docsCsp);
        Assert.Contains("default-src 'self'", docsCsp);
        var docsNonce = Regex.Match(docsCsp, "script-src 'self' 'nonce-([^']+)'").Groups[1].Value;
        Assert.NotEqual("", docsNonce);
        Assert.NotEqual(nonce, docsNonce);
        var docsScripts = Regex.Matches(await docs.Content.ReadAsStringAsync(), "<script[^>]*>");
        Assert.NotEmpty(docsScripts);
        foreach (Match script in docsScripts) Assert.Contains($"nonce=\"{docsNonce}\"", script.Value);
    }

    /// <summary>Behind a TLS proxy on a trusted address the sign-in cookie is Secure; before, forwarded headers were ignored.</summary>
    [Fact]
    public async Task SignIn_BehindATrustedTlsProxy_SetsASecureCookie()
    {
        await using var app = new ApiFactory(new() { ["Rpt:ForwardedHeaders:KnownNetworks:0"] = "127.0.0.0/8" });
        app.UseKestrel(0);
        app.StartServer();
        using (var scope = app.Services.CreateScope())
        {
            var users = scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>();
            Assert.True((await users.CreateAsync(new ApplicationUser { UserName = "a@example.com", Email = "a@example.com", EmailConfirmed = true }, "Secret-123!")).Succeeded);
        }
        var baseUrl = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().Replace("[::]", "127.0.0.1");
        var cookies = new CookieContainer();
        using var http = new HttpClient(new HttpClientHandler { CookieContainer = cookies, AllowAutoRedirect = false }) { BaseAddress = new Uri(baseUrl) };
        http.DefaultRequestHeaders.Add("X-Forwarded-Proto", "https");
        var form = await http.GetStringAsync("/Account/Login");
        var fields = Regex.Matches(form, "<input[^>]*type=\"hidden\"[^>]*name=\"([^\"]+)\"[^>]*value=\"([^\"]*)\"")
            .ToDictionary(m => WebUtility.HtmlDecode(m.Groups[1].Value), m => WebUtility.HtmlDecode(m.Groups[2].Value));
        fields["Input.Email"] = "a@example.com";
        fields["Input.Password"] = "Secret-123!";
        var response = await http.PostAsync("/Account/Login", new FormUrlEncodedContent(fields));
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        var identity = response.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith(".AspNetCore.Identity.Application=", StringComparison.Ordinal));
        Assert.Contains("secure", identity, StringComparison.OrdinalIgnoreCase);
    }
}
