using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Amazon.Runtime;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Rpt.Portal.Billing.Marketplace;
using Rpt.Portal.Data;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Tests.Billing.Marketplace;

/// <summary>
/// Entitlement notifications read with AWSSDK.SQS from a queue on loopback: each applied once whatever the order and
/// the number of deliveries; an ended subscription's last usage is reported, then its keys stop ingesting.
/// </summary>
[Trait("Kind", "Http")]
public sealed class MarketplaceNotificationTests : IAsyncLifetime
{
    private AwsMeteringServer _aws = null!;
    private SqsQueueServer _sqs = null!;
    private ApiFactory _app = null!;

    public async Task InitializeAsync()
    {
        _aws = await AwsMeteringServer.StartAsync();
        _sqs = await SqsQueueServer.StartAsync();
        _app = new ApiFactory(new()
        {
            ["Rpt:Marketplace:Aws:ProductCode"] = MarketplaceReportingTests.Product,
            ["Rpt:Marketplace:Aws:ServiceUrl"] = _aws.Address.ToString(),
            ["Rpt:Marketplace:Aws:QueueUrl"] = _sqs.QueueUrl.ToString(),
        }, services: s => s.AddSingleton(AwsMeteringServer.Credentials()));
    }

    public async Task DisposeAsync()
    {
        await _app.DisposeAsync();
        await _sqs.DisposeAsync();
        await _aws.DisposeAsync();
    }

    private static object Batch(int n) => new
    {
        events = Enumerable.Range(0, n).Select(i => new { id = Guid.NewGuid().ToString(), occurred_at = DateTimeOffset.UtcNow, model = "gpt-4o", input_tokens = 12_345 + i, output_tokens = 678 }),
    };

    [Fact]
    public async Task EachNotificationIsAppliedOnce_InAnyOrder_AndAnEndedSubscriptionReportsItsLastUsage_ThenItsKeysStopIngesting()
    {
        var (_, client) = await _app.TenantAsync("acme", "enterprise");
        _aws.Tokens["tok"] = ("cust-acme", "111122223333", MarketplaceReportingTests.Product);
        var registrations = _app.Get<MarketplaceRegistrations>();
        var (_, id) = await registrations.RegisterAsync("tok");
        Assert.Null(await registrations.CompleteAsync(id!, "acme"));
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsJsonAsync("/v1/usage/events", Batch(40))).StatusCode);

        // Sent in this order; delivered out of it, the last one twice, and one not ours and one unreadable.
        var t0 = _app.Time.GetUtcNow().AddMinutes(-10);
        _sqs.Publish("sns-3", "unsubscribe-success", "cust-acme", MarketplaceReportingTests.Product, t0.AddMinutes(2));
        _sqs.Publish("sns-1", "subscribe-success", "cust-acme", MarketplaceReportingTests.Product, t0);
        _sqs.Publish("sns-3", "unsubscribe-success", "cust-acme", MarketplaceReportingTests.Product, t0.AddMinutes(2));
        _sqs.Publish("sns-2", "unsubscribe-pending", "cust-acme", MarketplaceReportingTests.Product, t0.AddMinutes(1));
        _sqs.Publish("sns-x", "subscribe-success", "cust-acme", "someone-elses-product", t0.AddMinutes(3));
        _sqs.PublishRaw("{not json");

        var notifications = _app.Get<MarketplaceNotifications>();
        Assert.Equal(1, await notifications.ReadAsync());
        Assert.Equal(0, _sqs.Count);
        await using (var db = await _app.Get<IDbContextFactory<ApplicationDbContext>>().CreateDbContextAsync())
        {
            Assert.Equal(MarketplaceStatus.Unsubscribed, (await db.MarketplaceAccounts.SingleAsync()).Status);
            var recorded = await db.MarketplaceNotifications.ToDictionaryAsync(n => n.MessageId);
            Assert.Equal(5, recorded.Count); // sns-1, -2, -3, -x and the unreadable one: the second sns-3 is the same notification
            Assert.StartsWith("applied to tenant acme: unsubscribed", recorded["sns-3"].Outcome);
            Assert.StartsWith("older than the state applied", recorded["sns-1"].Outcome);
            Assert.StartsWith("older than the state applied", recorded["sns-2"].Outcome);
            Assert.StartsWith("for another product", recorded["sns-x"].Outcome);
        }
        _sqs.Publish("sns-3", "unsubscribe-success", "cust-acme", MarketplaceReportingTests.Product, t0.AddMinutes(2));
        Assert.Equal(0, await notifications.ReadAsync()); // delivered once more: applied once

        // The last usage is reported: AWS bills every whole credit consumed.
        await _app.Get<ReportMarketplaceUsage>().ExecuteAsync();
        var report = _app.Get<ReportMarketplaceUsage>();
        Assert.Equal((long)(report.ConsumedMicroCredits("acme") / Credit.MicroPerCredit), _aws.Total("111122223333"));

        // Then the keys stop ingesting, and say why.
        using var refused = await client.PostAsJsonAsync("/v1/usage/events", Batch(1));
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        var problem = JsonNode.Parse(await refused.Content.ReadAsStringAsync())!;
        Assert.Equal("Subscription ended", (string?)problem["title"]);
        Assert.Contains("AWS Marketplace subscription has ended", (string?)problem["detail"]);

        // A platform key's events for the tenant are rejected one by one, with the same reason; another tenant's go in.
        await _app.TenantAsync("other", "enterprise");
        var platform = await _app.PlatformClientAsync();
        using var mixed = await platform.PostAsJsonAsync("/v1/usage/events", new
        {
            events = new[] { "acme", "other" }.Select(t => new { id = Guid.NewGuid().ToString(), tenant_id = t, occurred_at = DateTimeOffset.UtcNow, model = "gpt-4o", input_tokens = 100, output_tokens = 10 }),
        });
        var answer = JsonNode.Parse(await mixed.Content.ReadAsStringAsync())!;
        Assert.Equal((1, 1), ((int)answer["accepted"]!, (int)answer["rejected"]!));
        var rejected = answer["results"]!.AsArray().Single(r => (string?)r!["status"] == "rejected")!;
        Assert.StartsWith("tenant 'acme': The account's AWS Marketplace subscription has ended", (string?)rejected["error"]);

        // Subscribing again (a later notification) lets them in again.
        _sqs.Publish("sns-4", "subscribe-success", "cust-acme", MarketplaceReportingTests.Product, t0.AddMinutes(5));
        Assert.Equal(1, await notifications.ReadAsync());
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsJsonAsync("/v1/usage/events", Batch(1))).StatusCode);
    }

    [Fact]
    public async Task TheRegistrationEndpoint_AnswersEveryHostilePostWithAPage_NeverAnError()
    {
        var client = _app.CreateClient(new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        async Task<string> PostAsync(HttpContent? content)
        {
            using var response = await client.PostAsync("/marketplace/aws/register", content);
            Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
            return response.Headers.Location!.ToString();
        }
        Assert.Equal("/marketplace/aws/registration/missing", await PostAsync(null));
        Assert.Equal("/marketplace/aws/registration/missing", await PostAsync(new StringContent("{\"x-amzn-marketplace-token\":\"a\"}", System.Text.Encoding.UTF8, "application/json")));
        Assert.Equal("/marketplace/aws/registration/missing", await PostAsync(new FormUrlEncodedContent([new("x-amzn-marketplace-token", new string('t', 5_000))])));
        Assert.Equal("/marketplace/aws/registration/missing", await PostAsync(new ByteArrayContent(new byte[1_000_000]) { Headers = { ContentType = new("application/x-www-form-urlencoded") } }));
        Assert.Equal("/marketplace/aws/registration/missing", await PostAsync(new FormUrlEncodedContent([new("x-amzn-marketplace-token", "\u0000<script>")])));
        Assert.Equal("/marketplace/aws/registration/invalid", await PostAsync(new FormUrlEncodedContent([new("x-amzn-marketplace-token", "<script>never-issued")])));
        _aws.Tokens["ok"] = ("cust-ok", "999988887777", MarketplaceReportingTests.Product);
        Assert.StartsWith("/Account/Register?marketplace=", await PostAsync(new FormUrlEncodedContent([new("x-amzn-marketplace-token", "ok")])));
        Assert.Equal("/marketplace/aws/registration/replayed", await PostAsync(new FormUrlEncodedContent([new("x-amzn-marketplace-token", "ok")])));
        // One address gets 20 registrations a minute (each may cost a call to AWS); past that, a page asking it to wait.
        // (45 more posts: a one-minute window may turn over once during the test, so at most 40 are let through.)
        var answers = new List<string>();
        for (var i = 0; i < 45; i++)
            answers.Add(await PostAsync(new FormUrlEncodedContent([new("x-amzn-marketplace-token", $"flood-{i}")])));
        Assert.All(answers, a => Assert.Matches("/registration/(invalid|busy)$", a));
        Assert.Contains("/marketplace/aws/registration/busy", answers);
        using var page = await client.GetAsync("/marketplace/aws/registration/%3Cscript%3E");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.DoesNotContain("<script>", await page.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task ANotificationThatArrivesBeforeTheBuyerFinishesRegistering_IsAppliedWhenTheyDo()
    {
        var (_, client) = await _app.TenantAsync("early", "enterprise");
        _sqs.Publish("sns-early", "subscribe-fail", "cust-early", MarketplaceReportingTests.Product, _app.Time.GetUtcNow().AddMinutes(-1));
        Assert.Equal(0, await _app.Get<MarketplaceNotifications>().ReadAsync()); // no tenant yet: recorded, not lost

        _aws.Tokens["tok-early"] = ("cust-early", "555566667777", MarketplaceReportingTests.Product);
        var registrations = _app.Get<MarketplaceRegistrations>();
        var (_, id) = await registrations.RegisterAsync("tok-early");
        Assert.Null(await registrations.CompleteAsync(id!, "early"));
        Assert.Equal(MarketplaceStatus.SubscribeFailed, (await registrations.AccountAsync("early"))!.Status);
        using var refused = await client.PostAsJsonAsync("/v1/usage/events", Batch(1));
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Contains("did not go through", await refused.Content.ReadAsStringAsync());
    }
}
