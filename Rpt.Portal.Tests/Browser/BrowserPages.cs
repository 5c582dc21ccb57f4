using Rpt.Portal.Billing;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using Rpt.Portal.Components;
using Rpt.Portal.Data;
using Rpt.Portal.Plans;

namespace Rpt.Portal.Tests.Browser;

/// <summary>What every browser test does the same way: contexts in a theme, waiting for the live page, screenshots, axe, contrast.</summary>
public static class BrowserPages
{
    public const int PhoneWidth = 390, PhoneHeight = 844;

    public static string Shot(string name) => Path.Combine(BrowserFixture.ArtifactsDirectory, name + ".png");

    /// <summary>Prerendered markup is replaced when the circuit starts; act only on the live page.</summary>
    public static Task WaitInteractiveAsync(IPage page) =>
        Assertions.Expect(page.Locator(".mud-layout[data-interactive='true']")).ToBeVisibleAsync();

    /// <summary>A browser context at a width, with the theme chosen (the cookie the theme switch sets) or none.</summary>
    public static async Task<IBrowserContext> NewContextAsync(BrowserFixture fx, int width = 1366, int height = 900, string? theme = null)
    {
        var context = await fx.Browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = fx.BaseUrl,
            ViewportSize = new() { Width = width, Height = height },
            IsMobile = width <= PhoneWidth,
            HasTouch = width <= PhoneWidth,
        });
        if (theme is not null) await SetThemeAsync(fx, context, theme);
        return context;
    }

    public static Task SetThemeAsync(BrowserFixture fx, IBrowserContext context, string theme) =>
        context.AddCookiesAsync([new Cookie { Name = "rpt-theme", Value = theme, Url = fx.BaseUrl }]);

    /// <summary>Console errors and uncaught exceptions of the page, collected for one assertion at the end.</summary>
    public static void TrackErrors(IPage page, List<string> errors)
    {
        page.Console += (_, m) => { if (m.Type == "error") errors.Add($"console on {page.Url}: {m.Text} ({m.Location})"); };
        page.PageError += (_, e) => errors.Add($"page {page.Url}: {e}");
    }

    /// <summary>A tenant on a plan and its owner, who can sign in at once (or must confirm first).</summary>
    public static async Task<string> CreateOwnerAsync(BrowserFixture fx, string organisation, string email, string plan, bool confirmed = true)
    {
        var created = await fx.App.Get<Rpt.Portal.Billing.CreateTenant>().ExecuteAsync(organisation, plan);
        Assert.Null(created.Error);
        using var scope = fx.App.Services.CreateScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>();
        var user = new ApplicationUser { UserName = email, Email = email, EmailConfirmed = confirmed, TenantId = created.Tenant!.Id };
        Assert.True((await users.CreateAsync(user, "Secret-123!")).Succeeded);
        Assert.True((await users.AddToRoleAsync(user, PortalRoles.Owner)).Succeeded);
        return created.Tenant.Id;
    }

    public static async Task<IPage> SignInAsync(IBrowserContext context, string email, string password)
    {
        var page = await context.NewPageAsync();
        await page.GotoAsync("/Account/Login");
        await page.FillAsync("#Input\\.Email", email);
        await page.FillAsync("#Input\\.Password", password);
        await page.ClickAsync("button[type=submit]");
        try
        {
            // The home page renders the dashboard before its load event; on a loaded 2-core run of both engines that
            // has taken longer than an action's 30 s, so the wait is for the address and then for the live page. The
            // address is polled rather than awaited as a navigation event: a PostgreSQL pass once timed out at 60 s
            // waiting for the event with the browser already showing the home page.
            await Assertions.Expect(page).ToHaveURLAsync(new Regex("/$"), new() { Timeout = 60_000 });
        }
        catch (Exception e) when (e is TimeoutException or PlaywrightException)
        {
            var text = await page.Locator("body").InnerTextAsync(new() { Timeout = 5_000 }).ContinueWith(t => t.IsCompletedSuccessfully ? t.Result : "(no page text)");
            throw new TimeoutException($"Signing in as {email} did not reach the home page; the browser is at {page.Url} showing: {text[..Math.Min(text.Length, 600)]}", e);
        }
        await Assertions.Expect(page.Locator(".mud-layout[data-interactive='true']")).ToBeVisibleAsync(new() { Timeout = 30_000 });
        return page;
    }

    /// <summary>
    /// Serious and critical axe-core violations of the page. Evaluated through the browser's debugging protocol:
    /// the page's content security policy (rightly) refuses an injected inline script.
    /// </summary>
    public static async Task<List<string>> AxeAsync(IPage page, string name)
    {
        var axe = await File.ReadAllTextAsync(Path.Combine(BrowserFixture.RepositoryRoot(), "Rpt.Portal", "node_modules", "axe-core", "axe.min.js"));
        await page.EvaluateAsync(axe);
        var result = await page.EvaluateAsync<JsonElement>("async () => (await axe.run(document, { resultTypes: ['violations'] })).violations.map(v => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ')) }))");
        var found = new List<string>();
        foreach (var v in result.EnumerateArray())
            if (v.GetProperty("impact").GetString() is "serious" or "critical")
                found.Add($"{name}: {v.GetProperty("impact").GetString()} {v.GetProperty("id").GetString()}: {v.GetProperty("help").GetString()} at {v.GetProperty("nodes")}");
        return found;
    }

    /// <summary>The WCAG contrast ratio of an element's text against the first opaque background behind it, as the browser computes both.</summary>
    public static Task<double> ContrastAsync(ILocator element) => element.EvaluateAsync<double>("""
        el => {
          const parse = c => { const p = c.match(/rgba?\(([^)]+)\)/)[1].split(',').map(x => parseFloat(x)); return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 }; };
          const fg = parse(getComputedStyle(el).color);
          let bg = { r: 255, g: 255, b: 255, a: 1 };
          for (let n = el; n; n = n.parentElement) { const c = parse(getComputedStyle(n).backgroundColor); if (c.a > 0) { bg = c; break; } }
          const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }; return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
          const a = lum(fg), b = lum(bg);
          return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
        }
        """);

    /// <summary>The computed background colour of an element, "rgb(r, g, b)".</summary>
    public static Task<string> BackgroundAsync(ILocator element) => element.EvaluateAsync<string>("el => getComputedStyle(el).backgroundColor");

    /// <summary>Words of the stock account template that a customer must never read.</summary>
    public static readonly string[] TemplateText =
    [
        "external authentication", "real email sender", "Invalid login attempt", "See this article", "Use a local account",
        "Use another service", "Microsoft", "go.microsoft.com", "2FA", "glyphicon", "Register as a new user",
    ];
}
