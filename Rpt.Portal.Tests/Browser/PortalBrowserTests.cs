using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.Playwright;

namespace Rpt.Portal.Tests.Browser;

/// <summary>A newcomer's path through the portal in a real browser, against the real server on loopback.</summary>
[Collection(BrowserCollection.Name)]
[Trait("Kind", "Browser")]
public class PortalBrowserTests(BrowserFixture fx)
{
    private static readonly string[] Pages = ["", "usage", "jobs", "jobs/job_browser", "credits", "allocations", "plans", "billing", "alerts", "keys", "team", "pricing"];

    private async Task<(IBrowserContext Context, IPage Page, List<string> Errors)> OpenAsync(int width = 1366)
    {
        var context = await fx.Browser.NewContextAsync(new BrowserNewContextOptions { BaseURL = fx.BaseUrl, ViewportSize = new() { Width = width, Height = 900 } });
        var page = await context.NewPageAsync();
        var errors = new List<string>();
        page.Console += (_, m) => { if (m.Type == "error") errors.Add($"console on {page.Url}: {m.Text} ({m.Location})"); };
        page.PageError += (_, e) => errors.Add($"page: {e}");
        return (context, page, errors);
    }

    /// <summary>Prerendered markup is replaced when the circuit starts; act only on the live page.</summary>
    private static Task WaitInteractiveAsync(IPage page) =>
        Assertions.Expect(page.Locator(".mud-layout[data-interactive='true']")).ToBeVisibleAsync();

    private static async Task RegisterAndSignInAsync(IPage page, string organisation, string email, string password)
    {
        await page.GotoAsync("/Account/Register");
        await page.FillAsync("#Input\\.Organisation", organisation);
        await page.FillAsync("#Input\\.Email", email);
        await page.FillAsync("#Input\\.Password", password);
        await page.FillAsync("#Input\\.ConfirmPassword", password);
        await page.ClickAsync("button[type=submit]");
        await page.ClickAsync("text=Confirm your account");
        await Assertions.Expect(page.Locator("body")).ToContainTextAsync("Thank you for confirming your email");
        await page.GotoAsync("/Account/Login");
        await page.FillAsync("#Input\\.Email", email);
        await page.FillAsync("#Input\\.Password", password);
        await page.ClickAsync("button[type=submit]");
        await page.WaitForURLAsync(new Regex("/$"));
    }

    [Fact]
    public async Task Newcomer_Registers_SeesTheFreePlan_AndTheDashboardFollowsApiUsageWithoutAReload()
    {
        var (context, page, errors) = await OpenAsync();
        try
        {
            await WalkAsync(page, errors);
        }
        catch
        {
            await page.ScreenshotAsync(new() { Path = Path.Combine(BrowserFixture.ArtifactsDirectory, "failure.png"), FullPage = true });
            throw;
        }
        finally
        {
            await context.DisposeAsync();
        }
    }

    private async Task WalkAsync(IPage page, List<string> errors)
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

        // The job page explains the charge.
        await page.GotoAsync("/jobs/job_browser");
        await Assertions.Expect(page.GetByTestId("job-summary")).ToContainTextAsync("300.11088 credits");

        // Every page, light and dark, with no console error and no serious accessibility violation.
        var axe = await File.ReadAllTextAsync(Path.Combine(BrowserFixture.RepositoryRoot(), "Rpt.Portal", "node_modules", "axe-core", "axe.min.js"));
        var violations = new List<string>();
        foreach (var path in Pages)
        {
            foreach (var dark in new[] { false, true })
            {
                await page.GotoAsync("/" + path);
                await WaitInteractiveAsync(page);
                await Assertions.Expect(page.Locator("h4").First).ToBeVisibleAsync();
                if (dark) await page.GetByLabel("Switch to dark theme").ClickAsync();
                await page.WaitForTimeoutAsync(400);
                var name = (path.Length == 0 ? "dashboard" : path.Replace('/', '-')) + (dark ? "-dark" : "-light");
                await page.ScreenshotAsync(new() { Path = Path.Combine(BrowserFixture.ArtifactsDirectory, name + ".png"), FullPage = true });
                // Evaluated through the browser's debugging protocol: the page's content security policy (rightly)
                // refuses an injected inline script, and the walk runs under that policy.
                await page.EvaluateAsync(axe);
                var result = await page.EvaluateAsync<JsonElement>("async () => (await axe.run(document, { resultTypes: ['violations'] })).violations.map(v => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ')) }))");
                foreach (var v in result.EnumerateArray())
                {
                    var impact = v.GetProperty("impact").GetString();
                    if (impact is "serious" or "critical")
                        violations.Add($"{name}: {impact} {v.GetProperty("id").GetString()}: {v.GetProperty("help").GetString()} at {v.GetProperty("nodes")}");
                }
            }
        }
        // The API reference page loads the OpenAPI document and lists the endpoints with their summaries.
        await page.SetViewportSizeAsync(1366, 900);
        await page.GotoAsync("/api/docs/v1");
        await Assertions.Expect(page.GetByText("The balance of the current billing period").First).ToBeVisibleAsync(new() { Timeout = 15_000 });
        await page.ScreenshotAsync(new() { Path = Path.Combine(BrowserFixture.ArtifactsDirectory, "api-reference.png") });

        // On a phone-width screen the navigation folds away and the figures stay readable.
        await page.SetViewportSizeAsync(390, 844);
        await page.GotoAsync("/");
        await WaitInteractiveAsync(page);
        await Assertions.Expect(page.GetByTestId("remaining")).ToBeInViewportAsync();
        Assert.False(await page.Locator("a[href='usage']").IsVisibleAsync());
        Assert.True(await page.EvaluateAsync<bool>("() => document.documentElement.scrollWidth <= window.innerWidth + 1"), "the page scrolls sideways on a phone");
        await page.ScreenshotAsync(new() { Path = Path.Combine(BrowserFixture.ArtifactsDirectory, "dashboard-phone.png"), FullPage = true });

        await File.WriteAllLinesAsync(Path.Combine(BrowserFixture.ArtifactsDirectory, "accessibility-violations.txt"), violations);
        Assert.True(errors.Count == 0, string.Join("\n", errors));
        Assert.True(violations.Count == 0, string.Join("\n", violations));
    }
}
