using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using static Rpt.Portal.Tests.Browser.BrowserPages;

namespace Rpt.Portal.Tests.Browser;

/// <summary>Past the allocation, every figure says the same thing; API keys are copied and revoked with care.</summary>
[Collection(BrowserCollection.Name)]
[Trait("Kind", "Browser")]
public class ProductBrowserTests(BrowserFixture fx)
{
    [Fact]
    public async Task PastTheAllocation_TheGaugeHeaderAndBanner_AgreeAndSayWhatToDo()
    {
        var tenant = await CreateOwnerAsync(fx, "Over Co", "owner@over.test", "free");
        var key = await fx.App.Get<Rpt.Portal.Api.ApiKeyService>().CreateAsync(tenant, "load", Rpt.Portal.Api.ApiScopes.Read | Rpt.Portal.Api.ApiScopes.Ingest);
        using var http = new HttpClient { BaseAddress = new Uri(fx.BaseUrl) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        // 3,490,000 gpt-4o input tokens = $8.725 × 1.2 / $0.01 = 1,047 credits, 47 past the Free plan's 1,000.
        (await http.PostAsJsonAsync("/v1/usage/events", new
        {
            events = new object[] { new { id = "over-1", occurred_at = DateTimeOffset.UtcNow, model = "gpt-4o", input_tokens = 3_490_000, output_tokens = 0, job_id = "big" } },
        })).EnsureSuccessStatusCode();

        foreach (var (theme, width) in new[] { ("light", 1366), ("dark", 1366), ("light", PhoneWidth) })
        {
            var context = await NewContextAsync(fx, width, width == PhoneWidth ? PhoneHeight : 900, theme);
            var page = await SignInAsync(context, "owner@over.test", "Secret-123!");
            var suffix = width == PhoneWidth ? "phone" : theme;
            try
            {
                await Assertions.Expect(page.GetByTestId("consumed")).ToHaveTextAsync("1,047", new() { Timeout = 5_000 });
                await Assertions.Expect(page.GetByTestId("gauge-percent")).ToHaveTextAsync("104.7 %");
                await Assertions.Expect(page.GetByTestId("gauge-caption")).ToHaveTextAsync("used · 47 over");
                await Assertions.Expect(page.GetByTestId("over")).ToHaveTextAsync("47");
                await Assertions.Expect(page.GetByTestId("header-remaining")).ToHaveTextAsync("47 credits over");
                var banner = page.GetByTestId("allocation-banner");
                await Assertions.Expect(banner).ToContainTextAsync("The allocation of this period is used up: 1,047 of 1,000 credits used (104.7 %)");
                await Assertions.Expect(banner).ToContainTextAsync("Quota checks refuse new jobs");
                await Assertions.Expect(banner.GetByRole(AriaRole.Link, new() { Name = "Buy credits" })).ToBeVisibleAsync();
                await Assertions.Expect(banner.GetByRole(AriaRole.Link, new() { Name = "Compare plans" })).ToBeVisibleAsync();
                var body = await page.Locator(".mud-main-content").InnerTextAsync();
                Assert.DoesNotContain("-47", body);
                Assert.DoesNotContain("already used up", body);
                Assert.DoesNotContain("days left", body);
                Assert.True(await ContrastAsync(page.GetByTestId("gauge-percent")) >= 4.5, $"gauge contrast in {suffix}");
                await page.ScreenshotAsync(new() { Path = Shot("over-allocation-" + suffix), FullPage = true });
                // The banner follows to every page.
                await page.GotoAsync("/usage");
                await WaitInteractiveAsync(page);
                await Assertions.Expect(page.GetByTestId("allocation-banner")).ToBeVisibleAsync();
            }
            finally
            {
                await context.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Allocations_DownloadsAStatementAndItsRecords_ThatTheVerifierAccepts()
    {
        var tenant = await CreateOwnerAsync(fx, "Ledger Co", "owner@ledger.test", "starter");
        var key = await fx.App.Get<Rpt.Portal.Api.ApiKeyService>().CreateAsync(tenant, "load", Rpt.Portal.Api.ApiScopes.Read | Rpt.Portal.Api.ApiScopes.Ingest);
        using var http = new HttpClient { BaseAddress = new Uri(fx.BaseUrl) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        (await http.PostAsJsonAsync("/v1/usage/events", new
        {
            events = Enumerable.Range(0, 20).Select(i => new { id = $"stmt-{i}", occurred_at = DateTimeOffset.UtcNow, model = "gpt-4o", input_tokens = 1000 + i, output_tokens = 50, job_id = "statement-job" }).ToArray(),
        })).EnsureSuccessStatusCode();
        await fx.App.Get<Rpt.Portal.Ledger.FlushUsage>().ExecuteAsync(); // entry 1: the sign-up allocation; entry 2: this consumption

        var context = await NewContextAsync(fx);
        var dir = Directory.CreateTempSubdirectory("rpt-statement-browser-").FullName;
        try
        {
            var page = await SignInAsync(context, "owner@ledger.test", "Secret-123!");
            await page.GotoAsync("/allocations");
            await WaitInteractiveAsync(page);
            var statement = await page.RunAndWaitForDownloadAsync(() => page.GetByTestId("statement-download").ClickAsync());
            Assert.Matches(@"^statement-.+-\d{4}-\d{2}-\d{2}\.json$", statement.SuggestedFilename);
            var statementFile = Path.Combine(dir, statement.SuggestedFilename);
            await statement.SaveAsAsync(statementFile);

            await page.GetByLabel("Consumption entry #").FillAsync("2");
            await page.GetByLabel("Consumption entry #").BlurAsync();
            await Assertions.Expect(page.GetByTestId("records-download")).ToHaveAttributeAsync("href", "portal/statement-records.txt?entry=2");
            var records = await page.RunAndWaitForDownloadAsync(() => page.GetByTestId("records-download").ClickAsync());
            var recordsFile = Path.Combine(dir, records.SuggestedFilename);
            await records.SaveAsAsync(recordsFile);
            await page.ScreenshotAsync(new() { Path = Shot("allocations-statements"), FullPage = true });

            var (code, output) = await Support.StatementVerifier.RunAsync(statementFile, recordsFile);
            Assert.True(code == 0, output);
            Assert.Contains("20 records = the entry's event_count 20", output);
        }
        finally
        {
            await context.DisposeAsync();
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task ApiKeys_AreCopiedWithAButton_RevokedAfterAConfirmationNamingThem_AndNeverLeftToCopy()
    {
        await CreateOwnerAsync(fx, "Key Co", "owner@keys.test", "starter");
        var context = await NewContextAsync(fx, theme: "light");
        await context.GrantPermissionsAsync(["clipboard-read", "clipboard-write"], new() { Origin = fx.BaseUrl });
        var page = await SignInAsync(context, "owner@keys.test", "Secret-123!");
        try
        {
            await page.GotoAsync("/keys");
            await WaitInteractiveAsync(page);
            await page.GetByLabel("Name").FillAsync("nightly export");
            await page.ClickAsync("button:has-text('Create key')");
            var secret = (await page.GetByTestId("new-key").Locator("code").InnerTextAsync()).Trim();
            await page.GetByTestId("copy-key").ClickAsync();
            await Assertions.Expect(page.GetByTestId("copy-key")).ToHaveTextAsync("Copied");
            Assert.Equal(secret, await page.EvaluateAsync<string>("() => navigator.clipboard.readText()"));
            await page.ScreenshotAsync(new() { Path = Shot("keys-created") });

            // Revoking asks first, naming the key; keeping it changes nothing.
            await page.GetByRole(AriaRole.Button, new() { Name = "Revoke nightly export" }).ClickAsync();
            var dialog = page.Locator(".mud-dialog");
            await Assertions.Expect(dialog).ToContainTextAsync("Revoke the key \"nightly export\"?");
            await Assertions.Expect(dialog).ToContainTextAsync(secret[..12]);
            await page.ScreenshotAsync(new() { Path = Shot("keys-revoke-confirm") });
            await dialog.GetByRole(AriaRole.Button, new() { Name = "Keep it" }).ClickAsync();
            await Assertions.Expect(dialog).ToHaveCountAsync(0);
            await Assertions.Expect(page.Locator("tr", new() { HasText = "nightly export" })).ToContainTextAsync("active");
            await Assertions.Expect(page.GetByTestId("new-key")).ToBeVisibleAsync();

            await page.GetByRole(AriaRole.Button, new() { Name = "Revoke nightly export" }).ClickAsync();
            await page.Locator(".mud-dialog").GetByRole(AriaRole.Button, new() { Name = "Revoke nightly export" }).ClickAsync();
            await Assertions.Expect(page.Locator("tr", new() { HasText = "nightly export" })).ToContainTextAsync("revoked");
            await Assertions.Expect(page.GetByTestId("new-key")).ToHaveCountAsync(0);
            await page.ScreenshotAsync(new() { Path = Shot("keys-revoked") });

            using var http = new HttpClient { BaseAddress = new Uri(fx.BaseUrl) };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", secret);
            Assert.Equal(System.Net.HttpStatusCode.Unauthorized, (await http.GetAsync("/v1/credits/balance")).StatusCode);
        }
        finally
        {
            await context.DisposeAsync();
        }
    }
}
