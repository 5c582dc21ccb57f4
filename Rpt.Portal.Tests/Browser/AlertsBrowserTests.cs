using Rpt.Portal.Billing;
using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Playwright;
using Rpt.Portal.Api;
using Rpt.Portal.Components;
using Rpt.Portal.Data;
using StandardWebhooks;
using Rpt.Portal.Plans;

namespace Rpt.Portal.Tests.Browser;

/// <summary>An admin adds a webhook endpoint and a 60 % rule in the portal; usage crosses it; the bell shows it, live, and the endpoint receives a signed message.</summary>
[Collection(BrowserCollection.Name)]
[Trait("Kind", "Browser")]
public class AlertsBrowserTests(BrowserFixture fx)
{
    [Fact]
    public async Task Admin_AddsAWebhookAndA60PercentRule_UsageCrossesIt_TheBellShowsIt()
    {
        var received = new ConcurrentQueue<(string Id, string Ts, string Signature, string Body)>();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        await using var receiver = builder.Build();
        receiver.MapPost("/hook", async (HttpContext http) =>
        {
            received.Enqueue((http.Request.Headers["webhook-id"].ToString(), http.Request.Headers["webhook-timestamp"].ToString(),
                http.Request.Headers["webhook-signature"].ToString(), await new StreamReader(http.Request.Body).ReadToEndAsync()));
            return Results.NoContent();
        });
        await receiver.StartAsync();
        var hookUrl = receiver.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First() + "/hook";

        var created = await fx.App.Get<Rpt.Portal.Billing.CreateTenant>().ExecuteAsync("Alert Co", "professional");
        var tenant = created.Tenant!.Id;
        using (var scope = fx.App.Services.CreateScope())
        {
            var users = scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>();
            var admin = new ApplicationUser { UserName = "admin@alert.test", Email = "admin@alert.test", EmailConfirmed = true, TenantId = tenant };
            Assert.True((await users.CreateAsync(admin, "Secret-123!")).Succeeded);
            Assert.True((await users.AddToRoleAsync(admin, PortalRoles.Admin)).Succeeded);
        }

        var context = await fx.Browser.NewContextAsync(new() { BaseURL = fx.BaseUrl, ViewportSize = new() { Width = 1366, Height = 900 } });
        var page = await context.NewPageAsync();
        try
        {
            await page.GotoAsync("/Account/Login");
            await page.FillAsync("#Input\\.Email", "admin@alert.test");
            await page.FillAsync("#Input\\.Password", "Secret-123!");
            await page.ClickAsync("button[type=submit]");
            await page.WaitForURLAsync(new Regex("/$"));
            await page.GotoAsync("/alerts");
            await Assertions.Expect(page.Locator(".mud-layout[data-interactive='true']")).ToBeVisibleAsync();
            await Assertions.Expect(page.GetByTestId("alert-rules")).ToContainTextAsync("50 % of the allocation used"); // the defaults

            await page.GetByLabel("Endpoint URL").FillAsync(hookUrl);
            await page.GetByTestId("add-endpoint").ClickAsync();
            var secret = (await page.GetByTestId("endpoint-secret").Locator("code").InnerTextAsync()).Trim();
            Assert.StartsWith("whsec_", secret);

            await page.GetByLabel("Threshold").FillAsync("60");
            await page.GetByLabel("Webhook", new() { Exact = true }).CheckAsync();
            await page.GetByTestId("add-rule").ClickAsync();
            await Assertions.Expect(page.GetByTestId("rule-message")).ToContainTextAsync("Added: 60 % of the allocation used");
            await page.ScreenshotAsync(new() { Path = Path.Combine(BrowserFixture.ArtifactsDirectory, "alerts-configured.png"), FullPage = true });

            await page.GotoAsync("/");
            await Assertions.Expect(page.Locator(".mud-layout[data-interactive='true']")).ToBeVisibleAsync();
            await Assertions.Expect(page.GetByLabel("Alerts: none new")).ToBeVisibleAsync();
            using var api = new HttpClient { BaseAddress = new Uri(fx.BaseUrl) };
            api.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", await fx.App.Get<ApiKeyService>().CreateAsync(tenant, "load", ApiScopes.Ingest));
            var events = Enumerable.Range(0, 510).Select(i => new { id = $"al{i}", occurred_at = DateTimeOffset.UtcNow, model = "gpt-4o", input_tokens = 100_000, output_tokens = 0 });
            (await api.PostAsJsonAsync("/v1/usage/events", new { events })).EnsureSuccessStatusCode(); // 15,300 of 25,000 = 61.2 %

            // No reload: the flush fires 50 % and 60 %, and the bell counts them.
            await Assertions.Expect(page.GetByLabel("Alerts: 2 new")).ToBeVisibleAsync(new() { Timeout = 15_000 });
            await page.ScreenshotAsync(new() { Path = Path.Combine(BrowserFixture.ArtifactsDirectory, "alerts-bell.png") });

            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (received.IsEmpty && DateTime.UtcNow < deadline) await Task.Delay(100);
            var message = Assert.Single(received);
            Assert.Contains("\"type\":\"alert.triggered\"", message.Body);
            Assert.Contains(new StandardWebhook(secret).Sign(message.Id, DateTimeOffset.FromUnixTimeSeconds(long.Parse(message.Ts)), message.Body),
                message.Signature.Split(' '));

            await page.GetByLabel("Alerts: 2 new").ClickAsync();
            await Assertions.Expect(page.GetByTestId("alert-firings")).ToContainTextAsync("60 % of the credits are used");
            await Assertions.Expect(page.GetByTestId("delivery-history")).ToContainTextAsync("HTTP 204");
            await page.ScreenshotAsync(new() { Path = Path.Combine(BrowserFixture.ArtifactsDirectory, "alerts-fired.png"), FullPage = true });
            await page.GotoAsync("/");
            await Assertions.Expect(page.GetByLabel("Alerts: none new")).ToBeVisibleAsync();
        }
        catch
        {
            await page.ScreenshotAsync(new() { Path = Path.Combine(BrowserFixture.ArtifactsDirectory, "alerts-failure.png"), FullPage = true });
            throw;
        }
        finally
        {
            await context.DisposeAsync();
        }
    }
}
