using System.Net;
using System.Net.WebSockets;
using System.Text.Json.Nodes;
using Rpt.Portal.Data;

namespace Rpt.Portal.Tests.Data;

/// <summary>
/// The shipped load balancer (Rpt.Proxy, as compose.yaml runs it) in front of two real portal processes on one
/// PostgreSQL: it spreads new visitors over both, keeps a browser on the instance that holds its Blazor circuit (cookie
/// affinity; the circuit's WebSocket passes through), and when that instance dies sends the same browser, still
/// signed in, to the other within seconds.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Kind", "Postgres")]
public sealed class LoadBalancerTests(PostgresCluster cluster)
{
    [Fact]
    public async Task TheProxy_SpreadsVisitors_KeepsABrowserOnItsInstance_AndMovesItWhenThatInstanceDies()
    {
        var settings = new Dictionary<string, string?> { ["Rpt:Data:Provider"] = "Postgres", ["ConnectionStrings:Rpt"] = await cluster.CreateDatabaseAsync() };
        var started = await Task.WhenAll(
            PortalProcess.StartAsync(PortalProcess.Environment(new Dictionary<string, string?>(settings) { ["Rpt:InstanceName"] = "portal-a" })),
            PortalProcess.StartAsync(PortalProcess.Environment(new Dictionary<string, string?>(settings) { ["Rpt:InstanceName"] = "portal-b" })));
        var portals = new Dictionary<string, PortalProcess> { ["portal-a"] = started[0], ["portal-b"] = started[1] };
        try
        {
            var env = PortalProcess.Environment(settings);
            await PortalProcess.RunCommandAsync(env, "tenants", "create", "--name", "Balanced Co", "--id", "balanced", "--plan", "starter");
            var password = PortalProcess.Field(await PortalProcess.RunCommandAsync(env, "users", "create", "--tenant", "balanced", "--email", "owner@balanced.test"), "password");
            await using var proxy = await PortalProcess.StartAsync(new Dictionary<string, string>
            {
                ["ASPNETCORE_ENVIRONMENT"] = "Production",
                ["ReverseProxy__Clusters__portals__Destinations__a__Address"] = started[0].Address.ToString(),
                ["ReverseProxy__Clusters__portals__Destinations__b__Address"] = started[1].Address.ToString(),
            }, dll: PortalProcess.ProxyDll, readyPath: "/proxy/healthz");

            // New visitors (no affinity cookie) reach both instances.
            using var anonymous = new HttpClient(new HttpClientHandler { UseCookies = false, AllowAutoRedirect = false }) { BaseAddress = proxy.Address };
            var seen = new HashSet<string>();
            for (var i = 0; i < 100 && seen.Count < 2; i++)
            {
                var r = await anonymous.GetAsync("/readyz");
                if (r.Headers.TryGetValues(HealthExtensions.InstanceHeader, out var v)) seen.Add(v.Single());
                await Task.Delay(50);
            }
            Assert.Equal(["portal-a", "portal-b"], seen.Order());

            // One browser: signed in through the proxy, then every request on the same instance.
            using var browser = new HttpClient(new HttpClientHandler { UseCookies = false, AllowAutoRedirect = false }) { BaseAddress = proxy.Address };
            var form = await browser.GetAsync("/Account/Login");
            var affinity = form.Headers.GetValues("Set-Cookie").Select(c => c.Split(';')[0]).Single(c => c.StartsWith(".Rpt.Instance=", StringComparison.Ordinal));
            var home = form.Headers.GetValues(HealthExtensions.InstanceHeader).Single();
            browser.DefaultRequestHeaders.Add("Cookie", affinity);
            var identity = await SignIn.WithPasswordAsync(browser, "owner@balanced.test", password);
            var cookies = $"{affinity}; {identity}";
            for (var i = 0; i < 20; i++)
            {
                var page = await Get(browser, "/", cookies);
                Assert.Equal(HttpStatusCode.OK, page.StatusCode);
                Assert.Equal(home, page.Headers.GetValues(HealthExtensions.InstanceHeader).Single());
            }

            // The circuit's connection: negotiated and upgraded to a WebSocket through the proxy.
            using (var negotiate = new HttpRequestMessage(HttpMethod.Post, "/_blazor/negotiate?negotiateVersion=1"))
            {
                negotiate.Headers.Add("Cookie", cookies);
                var answer = await browser.SendAsync(negotiate);
                Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
                var token = (string)JsonNode.Parse(await answer.Content.ReadAsStringAsync())!["connectionToken"]!;
                using var socket = new ClientWebSocket();
                socket.Options.SetRequestHeader("Cookie", cookies);
                await socket.ConnectAsync(new Uri($"ws://{proxy.Address.Authority}/_blazor?id={token}"), CancellationToken.None);
                Assert.Equal(WebSocketState.Open, socket.State);
                await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", CancellationToken.None);
            }

            // The browser's instance dies (SIGKILL); the same browser, same cookies, is answered by the other, signed in.
            await portals[home].DisposeAsync();
            var other = portals.Keys.Single(k => k != home);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            HttpResponseMessage? moved = null;
            while (clock.Elapsed < TimeSpan.FromSeconds(30))
            {
                try
                {
                    moved = await Get(browser, "/", cookies);
                    if (moved.StatusCode == HttpStatusCode.OK) break;
                }
                catch (HttpRequestException) { }
                await Task.Delay(200);
            }
            Assert.True(moved?.StatusCode == HttpStatusCode.OK, $"no signed-in answer through the proxy {clock.Elapsed.TotalSeconds:0.0} s after {home} died");
            Assert.Equal(other, moved.Headers.GetValues(HealthExtensions.InstanceHeader).Single());
            Assert.Contains("Balanced Co", await moved.Content.ReadAsStringAsync());
            await File.WriteAllTextAsync(Browser.BrowserFixture.Artifact("load-balancer.txt"),
                $"{home} killed; the same browser was answered by {other}, signed in, after {clock.Elapsed.TotalMilliseconds:0} ms\n");
        }
        finally
        {
            foreach (var p in portals.Values) await p.DisposeAsync();
        }
    }

    private static Task<HttpResponseMessage> Get(HttpClient http, string path, string cookies)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Add("Cookie", cookies);
        return http.SendAsync(request);
    }
}
