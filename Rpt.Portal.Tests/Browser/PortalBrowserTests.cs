using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using static Rpt.Portal.Tests.Browser.BrowserPages;

namespace Rpt.Portal.Tests.Browser;

/// <summary>A newcomer's path through the portal in a real browser, against the real server on loopback.</summary>
[Collection(BrowserCollection.Name)]
[Trait("Kind", "Browser")]
public class PortalBrowserTests(BrowserFixture fx)
{
    private static readonly string[] Pages = ["", "usage", "jobs", "jobs/job_browser", "credits", "allocations", "plans", "billing", "budgets", "alerts", "keys", "team", "pricing"];

    /// <summary>Registers through the pages, confirms with the link from the mail the SMTP listener received, signs in.</summary>
    private async Task RegisterAndSignInAsync(IPage page, string organisation, string email, string password)
    {
        await page.GotoAsync("/Account/Register");
        await page.FillAsync("#Input\\.Organisation", organisation);
        await page.FillAsync("#Input\\.Email", email);
        await page.FillAsync("#Input\\.Password", password);
        await page.FillAsync("#Input\\.ConfirmPassword", password);
        await page.ClickAsync("button[type=submit]");
        await Assertions.Expect(page.Locator("h1")).ToHaveTextAsync("Check your email");
        await page.GotoAsync(BrowserFixture.LinkIn(await fx.MailAsync(email, "Confirm")));
        await Assertions.Expect(page.Locator("body")).ToContainTextAsync("Thank you for confirming your email");
        await page.GotoAsync("/Account/Login");
        await page.FillAsync("#Input\\.Email", email);
        await page.FillAsync("#Input\\.Password", password);
        await page.ClickAsync("button[type=submit]");
        await page.WaitForURLAsync(new Regex("/$"));
    }

    private async Task<T> ShootOnFailureAsync<T>(IPage page, string name, Func<Task<T>> walk)
    {
        try
        {
            return await walk();
        }
        catch
        {
            await page.ScreenshotAsync(new() { Path = Shot(name + "-failure"), FullPage = true });
            throw;
        }
    }

    [Fact]
    public async Task Newcomer_Registers_SeesTheFreePlan_AndTheDashboardFollowsApiUsageWithoutAReload()
    {
        var context = await NewContextAsync(fx, theme: "light");
        var page = await context.NewPageAsync();
        var errors = new List<string>();
        TrackErrors(page, errors);
        try
        {
            await ShootOnFailureAsync(page, "walk", async () => { await WalkAsync(context, page, errors); return 0; });
        }
        finally
        {
            await context.DisposeAsync();
        }
    }

    private async Task WalkAsync(IBrowserContext context, IPage page, List<string> errors)
    {
        await RegisterAndSignInAsync(page, "Browser Test Co", "owner@browser.test", "Secret-123!");
        await WaitInteractiveAsync(page);

        await Assertions.Expect(page.GetByTestId("allocated")).ToHaveTextAsync("1,000");
        await Assertions.Expect(page.GetByTestId("consumed")).ToHaveTextAsync("0");
        await Assertions.Expect(page.GetByTestId("remaining")).ToHaveTextAsync("1,000");
        await Assertions.Expect(page.GetByTestId("runout-policy")).ToContainTextAsync("quota checks deny new jobs");

        // The owner creates an API key in the portal and sends usage through the API.
        await page.ClickAsync("a[href='keys']");
        await page.WaitForURLAsync(new Regex("/keys$"));
        await WaitInteractiveAsync(page);
        await page.GetByLabel("Name").FillAsync("browser test");
        await page.ClickAsync("button:has-text('Create key')");
        var key = (await page.GetByTestId("new-key").Locator("code").InnerTextAsync()).Trim();
        Assert.StartsWith("rpt_", key);

        await page.ClickAsync("a[href='']");
        await page.WaitForURLAsync(new Regex("/$"));
        await WaitInteractiveAsync(page);
        await Assertions.Expect(page.GetByTestId("consumed")).ToHaveTextAsync("0");
        using var http = new HttpClient { BaseAddress = new Uri(fx.BaseUrl) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        var now = DateTimeOffset.UtcNow;
        var sent = await http.PostAsJsonAsync("/v1/usage/events", new
        {
            events = new object[]
            {
                // 1,000,000 gpt-4o input tokens = $2.50 × 1.2 / $0.01 = 300 credits
                new { id = "b1", occurred_at = now, model = "gpt-4o", input_tokens = 1_000_000, output_tokens = 0, job_id = "job_browser", feature = "document_summary" },
                new { id = "b2", occurred_at = now, model = "gpt-4o-mini", input_tokens = 3200, output_tokens = 740, job_id = "job_browser", feature = "classification" },
            },
        });
        sent.EnsureSuccessStatusCode();

        var api = JsonNode.Parse(await http.GetStringAsync("/v1/credits/balance"))!["credits"]!;
        Assert.Equal(300, (long)api["consumed"]!);
        // No reload: the open dashboard reaches the API's numbers by itself.
        await Assertions.Expect(page.GetByTestId("consumed")).ToHaveTextAsync(((long)api["consumed"]!).ToString("N0"), new() { Timeout = 5_000 });
        await Assertions.Expect(page.GetByTestId("remaining")).ToHaveTextAsync(((long)api["remaining"]!).ToString("N0"), new() { Timeout = 5_000 });
        await Assertions.Expect(page.GetByTestId("header-remaining")).ToHaveTextAsync("700 credits left");

        // The job page explains the charge to the millionth; lists read whole credits, the exact amount on hover.
        await page.GotoAsync("/jobs/job_browser");
        await Assertions.Expect(page.GetByTestId("job-summary")).ToContainTextAsync("300.11088 credits");
        await page.GotoAsync("/jobs");
        await WaitInteractiveAsync(page);
        var jobCredits = page.GetByTestId("job-credits").First;
        await Assertions.Expect(jobCredits).ToHaveTextAsync("300");
        await Assertions.Expect(jobCredits.Locator("span")).ToHaveAttributeAsync("title", "300.11088 credits");

        await ChartsAndColoursAsync(page, http);
        var violations = await EveryPageAsync(context, page);

        // The API reference documents our API only, and says how to authenticate.
        await page.SetViewportSizeAsync(1366, 900);
        await page.GotoAsync("/api/docs/v1");
        await Assertions.Expect(page.GetByText("The balance of the current billing period").First).ToBeVisibleAsync(new() { Timeout = 15_000 });
        await Assertions.Expect(page.GetByText("Authorization: Bearer YOUR_API_KEY").First).ToBeVisibleAsync();
        foreach (var promo in new[] { "Deploy", "Generate SDK", "Ask AI" })
            Assert.Equal(0, await page.GetByRole(AriaRole.Button, new() { Name = promo, Exact = true }).CountAsync());
        await Assertions.Expect(page.GetByText("Powered by", new() { Exact = false })).ToBeHiddenAsync(); // the page speaks of our API only
        await page.ScreenshotAsync(new() { Path = Shot("api-reference") });

        await File.WriteAllLinesAsync(Path.Combine(BrowserFixture.ArtifactsDirectory, "accessibility-violations.txt"), violations);
        Assert.True(errors.Count == 0, string.Join("\n", errors));
        Assert.True(violations.Count == 0, string.Join("\n", violations));
    }

    /// <summary>
    /// The dashboard's chart: elapsed days and a dashed forecast, the day's total in the tooltip, the table following
    /// the toggle; and a model's colour is its own, on every page and after another model overtakes it.
    /// </summary>
    private async Task ChartsAndColoursAsync(IPage page, HttpClient http)
    {
        await page.GotoAsync("/");
        await WaitInteractiveAsync(page);
        var chart = page.GetByTestId("daily-chart");
        await Assertions.Expect(chart.Locator(".apexcharts-legend")).ToContainTextAsync("Forecast (a day)");
        Assert.DoesNotContain("ledger", await page.Locator(".mud-main-content").InnerTextAsync(), StringComparison.OrdinalIgnoreCase);
        var swatch = page.Locator("[data-testid=swatch][data-series='gpt-4o']");
        var dashboardColour = await BackgroundAsync(swatch);
        // The same colour draws the model's bars.
        var fills = await chart.Locator(".apexcharts-bar-series .apexcharts-series").EvaluateAllAsync<string[]>("els => els.map(e => getComputedStyle(e.querySelector('path')).fill)");
        Assert.Contains(Rgb(dashboardColour), fills.Select(Rgb));

        // The tooltip names the day's total.
        var today = DateTimeOffset.UtcNow.ToString("d MMM", System.Globalization.CultureInfo.InvariantCulture);
        var bar = chart.Locator(".apexcharts-bar-series path").First;
        await bar.HoverAsync(new() { Force = true });
        await Assertions.Expect(chart.Locator(".apexcharts-tooltip-title")).ToContainTextAsync($"{today} · total 300 credits");

        // The table follows the toggle.
        await page.GetByText("By feature").ClickAsync();
        await Assertions.Expect(page.GetByTestId("by-group")).ToContainTextAsync("document_summary");
        await Assertions.Expect(page.Locator("h6", new() { HasText = "Tokens and credits by feature" })).ToBeVisibleAsync();
        await page.GetByText("By model").ClickAsync();

        await page.GotoAsync("/usage");
        await WaitInteractiveAsync(page);
        Assert.Equal(dashboardColour, await BackgroundAsync(page.Locator("[data-testid=swatch][data-series='gpt-4o']").First));

        // A new model that costs more moves gpt-4o to second place; its colour stays.
        (await http.PostAsJsonAsync("/v1/usage/events", new
        {
            events = new object[] { new { id = "b3", occurred_at = DateTimeOffset.UtcNow, model = "claude-sonnet-4", input_tokens = 1_000_000, output_tokens = 0, job_id = "job_other", feature = "search", project = "search", user_id = "u_browser" } },
        })).EnsureSuccessStatusCode();
        await page.GotoAsync("/");
        await WaitInteractiveAsync(page);
        await Assertions.Expect(page.Locator("[data-testid=swatch][data-series='claude-sonnet-4']")).ToBeVisibleAsync(new() { Timeout = 5_000 });
        Assert.Equal(dashboardColour, await BackgroundAsync(swatch));
        Assert.NotEqual(dashboardColour, await BackgroundAsync(page.Locator("[data-testid=swatch][data-series='claude-sonnet-4']")));
        await page.ScreenshotAsync(new() { Path = Shot("dashboard-colours"), FullPage = true });

        // The owner caps the project the last call was for, on the Budgets page; its gauge shows that call.
        await page.GotoAsync("/budgets");
        await WaitInteractiveAsync(page);
        await page.GetByTestId("budget-subject").FillAsync("search");
        await page.GetByTestId("budget-credits").FillAsync("5000");
        await page.GetByTestId("add-budget").ClickAsync();
        await Assertions.Expect(page.GetByTestId("budget-message")).ToContainTextAsync("Added: Project search, 5,000 credits a day, hard.");
        await Assertions.Expect(page.GetByTestId("budget-use")).ToContainTextAsync(new Regex(@"^\s*[1-9][\d,]* used \("));
        await Assertions.Expect(page.GetByTestId("use-by-user")).ToContainTextAsync("u_browser");
    }

    /// <summary>"78, 121, 167" of "rgb(78, 121, 167)" or "rgba(78,121,167,0.85)": the colour without its opacity.</summary>
    private static string Rgb(string css) => string.Join(", ", Regex.Matches(css, @"\d+(\.\d+)?").Take(3).Select(m => m.Value));

    /// <summary>Every page in light, dark and at phone width: screenshots, axe, and the checks a person makes by eye.</summary>
    private async Task<List<string>> EveryPageAsync(IBrowserContext context, IPage page)
    {
        var violations = new List<string>();
        // Both themes on SQLite; on PostgreSQL dark only (the first visit in dark mode, where defects were found): what the
        // engine changes is whether each page reads its data, which one look shows, and the whole run is kept under 20 minutes.
        foreach (var theme in TestEngine.IsPostgres ? ["dark"] : new[] { "light", "dark" })
        {
            await SetThemeAsync(fx, context, theme);
            foreach (var path in Pages)
            {
                await page.GotoAsync("/" + path);
                await WaitInteractiveAsync(page);
                await Assertions.Expect(page.Locator(".mud-layout")).ToHaveAttributeAsync("data-theme", theme);
                await Assertions.Expect(page.Locator("h4").First).ToBeVisibleAsync();
                await page.WaitForTimeoutAsync(300);
                var name = (path.Length == 0 ? "dashboard" : path.Replace('/', '-')) + "-" + theme;
                await page.ScreenshotAsync(new() { Path = Shot(name), FullPage = true });
                violations.AddRange(await AxeAsync(page, name));
                var text = await page.Locator("body").InnerTextAsync();
                foreach (var template in TemplateText) Assert.DoesNotContain(template, text, StringComparison.OrdinalIgnoreCase);
                // No credits to six decimals outside the job's explanation (prices keep their published digits).
                if (!path.StartsWith("jobs/", StringComparison.Ordinal)) Assert.DoesNotMatch(@"(?<![$\d.])\d+\.\d{6}\b", text);
            }
        }

        // Dark: the gauge's percentage reads clearly (WCAG AA for large text is 3:1; we ask 4.5:1).
        await page.GotoAsync("/");
        await WaitInteractiveAsync(page);
        var percent = page.GetByTestId("gauge-percent");
        await Assertions.Expect(percent).ToHaveTextAsync(new Regex(@"^\d+(\.\d)? %$"));
        var contrast = await ContrastAsync(percent);
        Assert.True(contrast >= 4.5, $"the gauge's percentage has a contrast of {contrast:0.00} in dark mode");
        Assert.Equal("rgba(0, 0, 0, 0)", await chartBackground());
        async Task<string> chartBackground() => await page.Locator(".apexcharts-canvas").First.EvaluateAsync<string>("el => getComputedStyle(el).backgroundColor");

        // The switch is remembered: light chosen in the page stays light after a reload.
        await page.GetByTestId("theme-toggle").ClickAsync();
        await Assertions.Expect(page.Locator(".mud-layout")).ToHaveAttributeAsync("data-theme", "light");
        for (var i = 0; i < 50 && !(await context.CookiesAsync()).Any(c => c.Name == "rpt-theme" && c.Value == "light"); i++) await Task.Delay(100);
        await page.ReloadAsync();
        await WaitInteractiveAsync(page);
        await Assertions.Expect(page.Locator(".mud-layout")).ToHaveAttributeAsync("data-theme", "light");
        Assert.True(await ContrastAsync(page.GetByTestId("gauge-percent")) >= 4.5);

        // Phone width: every page fits, the app bar's figures are not covered, rows stay compact, filters fold away.
        await page.SetViewportSizeAsync(PhoneWidth, PhoneHeight);
        foreach (var path in Pages)
        {
            await page.GotoAsync("/" + path);
            await WaitInteractiveAsync(page);
            await Assertions.Expect(page.Locator("h4").First).ToBeVisibleAsync();
            await page.WaitForTimeoutAsync(300);
            var name = (path.Length == 0 ? "dashboard" : path.Replace('/', '-')) + "-phone";
            await page.ScreenshotAsync(new() { Path = Shot(name), FullPage = true });
            Assert.True(await page.EvaluateAsync<bool>("() => document.documentElement.scrollWidth <= window.innerWidth + 1"), $"{name} scrolls sideways on a phone");
            var balance = await page.GetByTestId("header-remaining").BoundingBoxAsync();
            var toggle = await page.GetByTestId("theme-toggle").BoundingBoxAsync();
            Assert.True(balance is not null && toggle is not null && balance.X + balance.Width <= toggle.X, $"{name}: the theme switch covers the balance in the app bar");
            violations.AddRange(await AxeAsync(page, name));
        }
        await page.GotoAsync("/");
        await WaitInteractiveAsync(page);
        await Assertions.Expect(page.GetByTestId("remaining")).ToBeInViewportAsync();
        Assert.False(await page.Locator("a[href='usage']").IsVisibleAsync());

        await page.GotoAsync("/usage");
        await WaitInteractiveAsync(page);
        Assert.False(await page.Locator("#usage-filters").IsVisibleAsync(), "the filters fill the phone's first screen");
        var rows = page.GetByTestId("usage-table").Locator("tbody tr");
        await Assertions.Expect(rows.First).ToBeInViewportAsync();
        foreach (var row in await rows.AllAsync())
        {
            var box = await row.BoundingBoxAsync();
            Assert.True(box!.Height <= 72, $"a usage row is {box.Height} px tall on a phone");
        }
        await page.GetByTestId("filters-toggle").ClickAsync();
        await Assertions.Expect(page.Locator("#usage-filters")).ToBeVisibleAsync();
        await page.ScreenshotAsync(new() { Path = Shot("usage-phone-filters"), FullPage = true });
        await page.SetViewportSizeAsync(1366, 900);
        return violations;
    }
}
