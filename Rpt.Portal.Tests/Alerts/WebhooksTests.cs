using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Rpt.Portal.Alerts;
using Rpt.Portal.Data;
using StandardWebhooks;

namespace Rpt.Portal.Tests.Alerts;

/// <summary>
/// Alert webhooks to a real HTTP receiver on loopback that checks every signature with the Standard Webhooks scheme
/// and fails the first attempts: one logical delivery, the same webhook-id on every attempt, every attempt logged.
/// </summary>
[Trait("Kind", "Http")]
public sealed class WebhooksTests : IAsyncLifetime
{
    private WebApplication _receiver = default!;
    private string _url = "";
    private int _failFirst;
    private string _secret = "";
    private readonly ConcurrentQueue<(string Id, long Timestamp, bool SignatureValid, string Body, int Answered)> _received = new();
    private readonly ConcurrentQueue<string> _raw = new();
    private readonly TaskCompletionSource _releaseSlow = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ConcurrentQueue<string> _fast = new();
    private int _slowCalls;

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        _receiver = builder.Build();
        _receiver.MapPost("/hook", async (HttpContext http) =>
        {
            var body = await new StreamReader(http.Request.Body).ReadToEndAsync();
            var id = http.Request.Headers["webhook-id"].ToString();
            var ts = long.Parse(http.Request.Headers["webhook-timestamp"].ToString());
            // The receiver's own check, with the package: the signature over {id}.{timestamp}.{body} under the endpoint's secret.
            var expected = new StandardWebhook(_secret).Sign(id, DateTimeOffset.FromUnixTimeSeconds(ts), body);
            var valid = http.Request.Headers["webhook-signature"].ToString().Split(' ').Contains(expected);
            var status = _received.Count < _failFirst ? 500 : 204;
            _raw.Enqueue($"POST /hook\nwebhook-id: {id}\nwebhook-timestamp: {ts}\nwebhook-signature: {http.Request.Headers["webhook-signature"]}\n" +
                $"(receiver: signature {(valid ? "verified" : "NOT verified")} with StandardWebhooks; answered {status})\n\n{body}\n");
            _received.Enqueue((id, ts, valid, body, status));
            http.Response.StatusCode = status;
        });

        // An endpoint that takes its time: it answers only when the test lets it (or after 30 s).
        _receiver.MapPost("/slow", async (HttpContext http) =>
        {
            Interlocked.Increment(ref _slowCalls);
            await Task.WhenAny(_releaseSlow.Task, Task.Delay(TimeSpan.FromSeconds(30)));
            http.Response.StatusCode = 204;
        });
        _receiver.MapPost("/fast", (HttpContext http) =>
        {
            _fast.Enqueue(http.Request.Headers["webhook-id"].ToString());
            return Results.NoContent();
        });
        await _receiver.StartAsync();
        _url = _receiver.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First() + "/hook";
    }

    /// <summary>Until the receiver has had <paramref name="count"/> calls (at most 5 s), and a moment for the sender to record the last.</summary>
    private async Task ReceivedAsync(int count)
    {
        for (var i = 0; i < 100 && _received.Count < count; i++) await Task.Delay(50);
        await Task.Delay(150);
        Assert.True(_received.Count >= count, $"the endpoint had {_received.Count} calls, not {count}, within 5 s");
    }

    public async Task DisposeAsync()
    {
        _releaseSlow.TrySetResult();
        await _receiver.DisposeAsync();
    }

    /// <summary>
    /// Two instances on one database deliver at the same moment (the dispatcher's lease may pass between them, and an
    /// emitting instance starts a round of its own): each attempt is claimed once, so each message is sent once.
    /// </summary>
    [Fact]
    public async Task TwoInstancesDeliveringAtOnce_SendEachMessageOnce()
    {
        var settings = new Dictionary<string, string?> { ["Rpt:Webhooks:AllowPrivateNetworks"] = "true" };
        await using var a = await PortalHarness.StartAsync(settings);
        await using var b = await PortalHarness.StartAsync(settings, directory: a.Directory);
        await a.CreateTenantAsync("acme", "professional");
        var webhooks = a.Get<Webhooks>();
        _secret = (await webhooks.CreateEndpointAsync("acme", _url)).Secret!;
        await using (var db = await a.Get<IDbContextFactory<ApplicationDbContext>>().CreateDbContextAsync())
        {
            // Written as EnqueueAsync writes them, without its own round: both instances find all 40 due.
            for (var i = 0; i < 40; i++)
                db.WebhookMessages.Add(new WebhookMessage($"msg_twice_{i:00}", "acme", db.WebhookEndpoints.Single().Id, "plan.changed", "{\"n\":" + i + "}", a.Time.GetUtcNow()));
            await db.SaveChangesAsync();
        }
        b.Time.SetUtcNow(a.Time.GetUtcNow());
        var delivered = await Task.WhenAll(Task.Run(() => webhooks.DeliverDueAsync()), Task.Run(() => b.Get<Webhooks>().DeliverDueAsync()));
        Assert.Equal(40, delivered.Sum());
        Assert.Equal(40, _received.Count);
        Assert.Equal(40, _received.Select(r => r.Id).Distinct().Count());
    }

    /// <summary>
    /// One endpoint that hangs while another answers at once: the fast one gets every message at once, though the slow
    /// one still holds its first call; and the event that emits them does not wait for either.
    /// </summary>
    [Fact]
    public async Task ASlowEndpoint_DelaysOnlyItsOwnMessages()
    {
        await using var h = await PortalHarness.StartAsync(new Dictionary<string, string?> { ["Rpt:Webhooks:AllowPrivateNetworks"] = "true" });
        await h.CreateTenantAsync("acme", "professional");
        var webhooks = h.Get<Webhooks>();
        var root = _url[..^"/hook".Length];
        Assert.Null((await webhooks.CreateEndpointAsync("acme", root + "/slow")).Error);
        Assert.Null((await webhooks.CreateEndpointAsync("acme", root + "/fast")).Error);

        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (var i = 0; i < 3; i++) await webhooks.EnqueueAsync("acme", "plan.changed", new { n = i });
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"emitting 3 events waited {clock.ElapsedMilliseconds} ms for the endpoints");
        while ((_fast.Count < 3 || Volatile.Read(ref _slowCalls) < 1) && clock.Elapsed < TimeSpan.FromSeconds(5)) await Task.Delay(20);
        Assert.Equal(3, _fast.Count); // all three, while the slow endpoint still holds the first
        Assert.Equal(1, Volatile.Read(ref _slowCalls)); // its own messages wait behind it, in order
        Assert.False(_releaseSlow.Task.IsCompleted);

        _releaseSlow.TrySetResult();
        while (Volatile.Read(ref _slowCalls) < 3 && clock.Elapsed < TimeSpan.FromSeconds(15))
        {
            await webhooks.DeliverDueAsync();
            await Task.Delay(50);
        }
        Assert.Equal(3, Volatile.Read(ref _slowCalls));
    }

    [Fact]
    public async Task AThresholdCrossed_IsDeliveredOnce_WithTheSameWebhookIdOnEveryRetry_AndEveryAttemptLogged()
    {
        await using var h = await PortalHarness.StartAsync(new Dictionary<string, string?> { ["Rpt:Webhooks:AllowPrivateNetworks"] = "true" });
        await h.CreateTenantAsync("acme", "professional"); // 25,000 credits, webhook alerts included
        var created = await h.Get<Webhooks>().CreateEndpointAsync("acme", _url);
        Assert.Null(created.Error);
        _secret = created.Secret!;
        Assert.StartsWith("whsec_", _secret);
        Assert.DoesNotContain(_secret, created.Endpoint!.ProtectedSecret); // kept encrypted
        await using (var db = await h.Get<IDbContextFactory<ApplicationDbContext>>().CreateDbContextAsync())
        {
            db.AlertRules.Add(new AlertRule("acme", AlertKind.PercentConsumed, 60, AlertChannels.Webhook, h.Time.GetUtcNow()));
            await db.SaveChangesAsync();
        }
        _failFirst = 2;
        await h.IngestAsync("acme", Enumerable.Range(0, 510).Select(i => Events.Call($"w{i}", "gpt-4o", 100_000, 0)).ToArray()); // 15,300 = 61.2 %
        await h.FlushAsync();

        var fired = Assert.Single(await h.Get<EvaluateAlerts>().ExecuteAsync("acme"));
        // The first attempt is made at once, beside the evaluation (which does not wait for it): 500.
        await ReceivedAsync(1);
        Assert.Single(_received);
        h.Time.Advance(TimeSpan.FromSeconds(5));
        await h.Get<Webhooks>().DeliverDueAsync(); // 500
        h.Time.Advance(TimeSpan.FromMinutes(4));
        Assert.Equal(0, await h.Get<Webhooks>().DeliverDueAsync()); // not due before 5 minutes
        h.Time.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(1, await h.Get<Webhooks>().DeliverDueAsync()); // 204
        Assert.Equal(0, await h.Get<Webhooks>().DeliverDueAsync());

        var attempts = _received.ToList();
        Assert.Equal([500, 500, 204], attempts.Select(a => a.Answered));
        Assert.Single(attempts.Select(a => a.Id).Distinct());
        Assert.StartsWith("msg_", attempts[0].Id);
        Assert.All(attempts, a => Assert.True(a.SignatureValid, "a signature did not verify"));
        Assert.Contains("\"type\":\"alert.triggered\"", attempts[0].Body);
        Assert.Contains(fired.Key, attempts[0].Body);

        await using var check = await h.Get<IDbContextFactory<ApplicationDbContext>>().CreateDbContextAsync();
        var message = await check.WebhookMessages.SingleAsync();
        Assert.Equal((WebhookMessageStatus.Delivered, 3), (message.Status, message.Attempts));
        var log = await check.WebhookAttempts.OrderBy(a => a.Id).ToListAsync();
        Assert.Equal([500, 500, 204], log.Select(a => a.StatusCode ?? 0));
        var dir = Path.Combine(Browser.BrowserFixture.RepositoryRoot(), "artifacts");
        Directory.CreateDirectory(dir);
        await File.WriteAllTextAsync(Path.Combine(dir, "alert-webhook.txt"), string.Join("\n----\n", _raw) + "\n==== delivery log (GET /v1/webhooks/deliveries) ====\n" +
            string.Join("\n", log.Select(a => $"{a.At:u}  {a.MessageId}  {a.Type}  attempt {a.Number}  HTTP {a.StatusCode}")));
    }

    [Fact]
    public async Task OnAPlanWithoutWebhookAlerts_NothingIsSent()
    {
        await using var h = await PortalHarness.StartAsync(new Dictionary<string, string?> { ["Rpt:Webhooks:AllowPrivateNetworks"] = "true" });
        await h.CreateTenantAsync("acme", "starter");
        _secret = (await h.Get<Webhooks>().CreateEndpointAsync("acme", _url)).Secret!;
        await using (var db = await h.Get<IDbContextFactory<ApplicationDbContext>>().CreateDbContextAsync())
        {
            db.AlertRules.Add(new AlertRule("acme", AlertKind.PercentConsumed, 10, AlertChannels.Webhook, h.Time.GetUtcNow()));
            await db.SaveChangesAsync();
        }
        await h.IngestAsync("acme", Events.Call("a", "gpt-4o", 10_000_000, 0)); // 3,000 of 5,000
        await h.FlushAsync();
        Assert.Single(await h.Get<EvaluateAlerts>().ExecuteAsync("acme"));
        Assert.Empty(_received);
    }

    /// <summary>A name that was public when the endpoint was added and points at loopback when the message goes (DNS rebinding).</summary>
    private sealed class RebindingAddresses : WebhookAddresses
    {
        public int Asked;

        public override Task<System.Net.IPAddress[]> ResolveAsync(string host, CancellationToken ct) =>
            host == "hooks.rebind.test"
                ? Task.FromResult(new[] { Interlocked.Increment(ref Asked) == 1 ? System.Net.IPAddress.Parse("203.0.113.10") : System.Net.IPAddress.Loopback })
                : base.ResolveAsync(host, ct);
    }

    [Fact]
    public async Task AHostThatResolvesToLoopbackAtDeliveryTime_IsNotCalled_AndTheAttemptSaysWhy()
    {
        var rebinding = new RebindingAddresses();
        await using var h = await PortalHarness.StartAsync(services: s => s.AddSingleton<WebhookAddresses>(rebinding));
        await h.CreateTenantAsync("acme", "professional");
        var port = new Uri(_url).Port;
        var created = await h.Get<Webhooks>().CreateEndpointAsync("acme", $"http://hooks.rebind.test:{port}/hook");
        Assert.Null(created.Error); // public when it was added
        _secret = created.Secret!;

        await h.Get<Webhooks>().TestEndpointAsync("acme", created.Endpoint!.Id);

        Assert.Empty(_received); // the receiver on loopback was never called
        await using var db = await h.Get<IDbContextFactory<ApplicationDbContext>>().CreateDbContextAsync();
        var attempt = await db.WebhookAttempts.SingleAsync();
        Assert.Null(attempt.StatusCode);
        Assert.Contains("loopback or private address", attempt.Error);
    }

    [Theory]
    [InlineData("http://127.0.0.1:9/hook", "loopback or private")]
    [InlineData("http://10.1.2.3/hook", "loopback or private")]
    [InlineData("https://192.168.0.10/hook", "loopback or private")]
    [InlineData("http://[::1]/hook", "loopback or private")]
    [InlineData("http://169.254.169.254/latest/meta-data", "loopback or private")]
    [InlineData("ftp://example.com/hook", "absolute https (or http) URL")]
    [InlineData("https://user:pw@example.com/hook", "user name or password")]
    [InlineData("", "url is required")]
    public async Task HostileEndpointUrls_AreRefused_NamingWhy(string url, string error)
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme", "professional");
        var created = await h.Get<Webhooks>().CreateEndpointAsync("acme", url);
        Assert.Null(created.Endpoint);
        Assert.Contains(error, created.Error);
        var tooLong = await h.Get<Webhooks>().CreateEndpointAsync("acme", "https://example.com/" + new string('a', 2000));
        Assert.Contains("longer than 2000 characters", tooLong.Error);
    }

    [Fact]
    public async Task AccountEvents_TopUpSucceededAndPlanChanged_ReachTheEndpoints()
    {
        await using var h = await PortalHarness.StartAsync(new Dictionary<string, string?> { ["Rpt:Webhooks:AllowPrivateNetworks"] = "true" });
        await h.CreateTenantAsync("acme", "professional");
        _secret = (await h.Get<Webhooks>().CreateEndpointAsync("acme", _url)).Secret!;
        var gateway = h.Get<Rpt.Portal.Billing.TestModeGateway>();
        var baseUri = new Uri("https://portal.example/");

        var pack = await h.Get<Rpt.Portal.Billing.StartTopUp>().ExecuteAsync("acme", Rpt.Portal.Tenants.PortalRoles.Owner, "topup_25k", baseUri);
        await gateway.CompleteCheckoutAsync(pack.RedirectUrl!.Split('/')[^1], "acme", default);
        var upgrade = await h.Get<Rpt.Portal.Billing.StartPlanChange>().ExecuteAsync("acme", Rpt.Portal.Tenants.PortalRoles.Owner, "business", baseUri);
        await gateway.CompleteCheckoutAsync(upgrade.RedirectUrl!.Split('/')[^1], "acme", default);
        await ReceivedAsync(2); // delivered beside the payment, which does not wait for the endpoint

        var second = await h.Get<Webhooks>().CreateEndpointAsync("acme", _url + "?second");
        _secret = second.Secret!; // each endpoint signs with its own secret
        var endpoint = second.Endpoint!;
        Assert.Single(await h.Get<Webhooks>().TestEndpointAsync("acme", endpoint.Id)); // to that endpoint alone
        var bodies = _received.Select(r => System.Text.Json.Nodes.JsonNode.Parse(r.Body)!).ToList();
        Assert.Equal(["top_up.succeeded", "plan.changed", "alert.triggered"], bodies.Select(b => (string)b["type"]!));
        Assert.True((bool)bodies[2]["data"]!["test"]!);
        Assert.Equal((25_000L, "checkout"), ((long)bodies[0]["data"]!["credits"]!, (string)bodies[0]["data"]!["source"]!));
        Assert.Equal(("business", "upgrade", 75_000L), ((string)bodies[1]["data"]!["plan"]!, (string)bodies[1]["data"]!["change"]!, (long)bodies[1]["data"]!["credits_granted"]!));
        Assert.All(_received, r => Assert.True(r.SignatureValid));
    }
}
