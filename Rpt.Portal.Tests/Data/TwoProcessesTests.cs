using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Npgsql;

namespace Rpt.Portal.Tests.Data;

/// <summary>
/// Two real portal processes on one PostgreSQL database, started at the same moment (so their migrations race), as a
/// load balancer would have them: every batch of usage is sent to both at once, each id is stored and charged once and
/// answered "accepted" by exactly one of them; an alert crossed through both is mailed once per threshold over a real
/// SMTP listener; a sign-in made on one is honoured by the other.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Kind", "Postgres")]
public sealed class TwoProcessesTests(PostgresCluster cluster)
{
    private const long MicroCreditsPerCall = 110_880; // 3,200 in + 740 out of gpt-4o-mini

    [Fact]
    public async Task TwoPortals_OnOneDatabase_StoreEachIdOnce_MailEachAlertOnce_AndHonourEachOthersSignIn()
    {
        await using var smtp = new SmtpListener();
        var connection = await cluster.CreateDatabaseAsync();
        var env = PortalProcess.Environment(new Dictionary<string, string?>(smtp.Settings())
        {
            ["Rpt:Data:Provider"] = "Postgres",
            ["ConnectionStrings:Rpt"] = connection,
        });
        var started = await Task.WhenAll(PortalProcess.StartAsync(env), PortalProcess.StartAsync(env));
        await using var a = started[0];
        await using var b = started[1];

        var bulkKey = PortalProcess.Field(await PortalProcess.RunCommandAsync(env, "tenants", "create", "--name", "Bulk Co", "--id", "bulk", "--plan", "enterprise"), "api_key");
        var alertsKey = PortalProcess.Field(await PortalProcess.RunCommandAsync(env, "tenants", "create", "--name", "Alerts Co", "--id", "alerts", "--plan", "free"), "api_key");
        var password = PortalProcess.Field(await PortalProcess.RunCommandAsync(env, "users", "create", "--tenant", "alerts", "--email", "owner@alerts.test"), "password");

        // 1. Every batch to both instances at the same moment: one stores it, the other finds the ids stored.
        var sent = new ConcurrentDictionary<string, byte>();
        long accepted = 0, duplicates = 0;
        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            using var toA = Client(a, bulkKey);
            using var toB = Client(b, bulkKey);
            for (var batch = 0; batch < 15; batch++)
            {
                var ids = Enumerable.Range(0, 200).Select(_ => Guid.NewGuid().ToString()).ToArray();
                foreach (var id in ids) sent[id] = 0;
                var body = new { events = ids.Select(id => new { id, occurred_at = DateTimeOffset.UtcNow, model = "gpt-4o-mini", input_tokens = 3200, output_tokens = 740 }) };
                foreach (var answer in await Task.WhenAll(toA.PostAsJsonAsync("/v1/usage/events", body), toB.PostAsJsonAsync("/v1/usage/events", body)))
                {
                    Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
                    var json = JsonNode.Parse(await answer.Content.ReadAsStringAsync())!;
                    Interlocked.Add(ref accepted, (long)json["accepted"]!);
                    Interlocked.Add(ref duplicates, (long)json["duplicates"]!);
                }
            }
        })));
        await using (var db = new NpgsqlConnection(connection))
        {
            await db.OpenAsync();
            await using var count = new NpgsqlCommand("SELECT COUNT(*), COUNT(DISTINCT event_id) FROM usage_events WHERE tenant_id = 'bulk'", db);
            await using var r = await count.ExecuteReaderAsync();
            await r.ReadAsync();
            Assert.Equal(sent.Count, r.GetInt64(0));
            Assert.Equal(sent.Count, r.GetInt64(1));
        }
        Assert.Equal(12_000, sent.Count);
        Assert.Equal(sent.Count, accepted); // each id "accepted" by exactly one of the two
        Assert.Equal(sent.Count, duplicates); // and a duplicate to the other
        foreach (var portal in new[] { a, b })
        {
            using var api = Client(portal, bulkKey);
            var ledger = JsonNode.Parse(await api.GetStringAsync("/v1/credits/balance"))!["ledger"]!;
            Assert.Equal(sent.Count * MicroCreditsPerCall, (long)ledger["flushed_micro_credits"]! + (long)ledger["unflushed_micro_credits"]!);
        }
        // Both flush (whoever holds the lease, and a catch-up on either): every event in exactly one consumption entry,
        // and the chain verifies deep (every entry against the audit records it covers).
        await WaitFlushedAsync(connection, "bulk", sent.Count);
        Assert.Contains("bulk: intact", await PortalProcess.RunCommandAsync(env, "ledger", "verify", "--tenant", "bulk", "--deep"));

        // 2. A free tenant (1,000 credits, alerts at 50/75/90 % by mail to its owners) crosses thresholds through both.
        using (var toA = Client(a, alertsKey))
        using (var toB = Client(b, alertsKey))
        {
            for (var i = 0; i < 14; i++)
            {
                // 10 calls of 320,000 input tokens each (5.76 credits a call), alternately through A and B.
                var body = new { events = Enumerable.Range(0, 10).Select(j => new { id = $"big-{i}-{j}", occurred_at = DateTimeOffset.UtcNow, model = "gpt-4o-mini", input_tokens = 320_000, output_tokens = 0 }) };
                Assert.Equal(HttpStatusCode.OK, (await (i % 2 == 0 ? toA : toB).PostAsJsonAsync("/v1/usage/events", body)).StatusCode);
            }
            var balance = JsonNode.Parse(await toB.GetStringAsync("/v1/credits/balance"))!;
            var consumedMicro = (long)balance["ledger"]!["flushed_micro_credits"]! + (long)balance["ledger"]!["unflushed_micro_credits"]!;
            var percent = consumedMicro / 10_000_000m; // of 1,000 credits
            var expected = new[] { 50, 75, 90 }.Count(t => percent >= t);
            Assert.True(expected >= 2, $"the test meant to cross 50 % and 75 %; it consumed {percent} %");
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (smtp.Messages.Count < expected && clock.Elapsed < TimeSpan.FromSeconds(60)) await Task.Delay(200);
            await Task.Delay(TimeSpan.FromSeconds(3)); // time for a second copy, were one coming
            var mails = smtp.Messages.ToArray();
            Assert.True(mails.Length == expected,
                $"{mails.Length} alert mails for {expected} thresholds crossed ({percent:0.0} %): {string.Join(" | ", mails.Select(m => m.Subject))}\nA:\n{a.Log}\nB:\n{b.Log}");
            Assert.Equal(expected, mails.Select(m => m.Subject).Distinct().Count());
            Assert.All(mails, m => Assert.Equal("owner@alerts.test", m.To.Mailboxes.Single().Address));
        }

        // 3. Signed in on A; the cookie opens the dashboard on B, which has never seen this user sign in.
        using var browserAtA = new HttpClient(new HttpClientHandler { UseCookies = false, AllowAutoRedirect = false }) { BaseAddress = a.Address };
        var cookie = await SignIn.WithPasswordAsync(browserAtA, "owner@alerts.test", password);
        using var browserAtB = new HttpClient(new HttpClientHandler { UseCookies = false, AllowAutoRedirect = false }) { BaseAddress = b.Address };
        var anonymous = await browserAtB.GetAsync("/");
        Assert.Equal(HttpStatusCode.Redirect, anonymous.StatusCode);
        Assert.Contains("/Account/Login", anonymous.Headers.Location!.ToString());
        var dashboard = await SignIn.GetAsync(browserAtB, "/", cookie);
        Assert.Equal(HttpStatusCode.OK, dashboard.StatusCode);
        Assert.Contains("Alerts Co", await dashboard.Content.ReadAsStringAsync());
    }

    /// <summary>
    /// The instance holding the background work's leases is killed (SIGKILL) while the other keeps taking usage: the
    /// other takes the flush over and the usage reaches the ledger within 30 s.
    /// </summary>
    [Fact]
    public async Task TheInstanceDoingTheBackgroundWorkIsKilled_TheOtherFlushesWithin30Seconds()
    {
        var connection = await cluster.CreateDatabaseAsync();
        var envA = PortalProcess.Environment(new Dictionary<string, string?>
        {
            ["Rpt:Data:Provider"] = "Postgres", ["ConnectionStrings:Rpt"] = connection + ";Application Name=portal-a",
        });
        var envB = PortalProcess.Environment(new Dictionary<string, string?>
        {
            ["Rpt:Data:Provider"] = "Postgres", ["ConnectionStrings:Rpt"] = connection + ";Application Name=portal-b",
        });
        // A starts first and takes the leases at its first tick; B starts once A holds them.
        var a = await PortalProcess.StartAsync(envA);
        try
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (await LeasesHeldByAsync(connection, "portal-a") == 0 && clock.Elapsed < TimeSpan.FromSeconds(30)) await Task.Delay(200);
            Assert.True(await LeasesHeldByAsync(connection, "portal-a") > 0, "A took no lease within 30 s of starting");
            await using var b = await PortalProcess.StartAsync(envB);
            var key = PortalProcess.Field(await PortalProcess.RunCommandAsync(envB, "tenants", "create", "--name", "Leader Co", "--id", "leader", "--plan", "enterprise"), "api_key");
            await Task.Delay(TimeSpan.FromSeconds(2));
            Assert.Equal(0, await LeasesHeldByAsync(connection, "portal-b")); // B waits: A holds them

            await a.DisposeAsync(); // SIGKILL
            var killed = System.Diagnostics.Stopwatch.StartNew();
            using var toB = Client(b, key);
            var body = new { events = Enumerable.Range(0, 500).Select(i => new { id = $"after-{i}", occurred_at = DateTimeOffset.UtcNow, model = "gpt-4o-mini", input_tokens = 3200, output_tokens = 740 }) };
            Assert.Equal(HttpStatusCode.OK, (await toB.PostAsJsonAsync("/v1/usage/events", body)).StatusCode);
            await WaitFlushedAsync(connection, "leader", 500, TimeSpan.FromSeconds(30),
                async () => $"leases held by B: {await LeasesHeldByAsync(connection, "portal-b")}, by A: {await LeasesHeldByAsync(connection, "portal-a")}; B's log:\n{b.Log}");
            Assert.True(await LeasesHeldByAsync(connection, "portal-b") > 0);
            await File.WriteAllTextAsync(Browser.BrowserFixture.Artifact("leader-killed.txt"),
                $"the lease holder was killed; the other instance had flushed 500 new events {killed.Elapsed.TotalSeconds:0.0} s later\n");
        }
        finally
        {
            await a.DisposeAsync();
        }
    }

    /// <summary>Session advisory locks (the leases) held by the connections of one instance, by its Application Name.</summary>
    private static async Task<long> LeasesHeldByAsync(string connection, string instance)
    {
        await using var db = new NpgsqlConnection(connection);
        await db.OpenAsync();
        await using var cmd = new NpgsqlCommand("""
            SELECT COUNT(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = @app
            """, db);
        cmd.Parameters.AddWithValue("app", instance);
        return (long)(await cmd.ExecuteScalarAsync())!;
    }

    /// <summary>Until every one of the tenant's events is in exactly one consumption entry.</summary>
    private static async Task WaitFlushedAsync(string connection, string tenant, long events, TimeSpan? within = null, Func<Task<string>>? context = null)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        long flushed = 0;
        while (clock.Elapsed < (within ?? TimeSpan.FromSeconds(60)))
        {
            await using var db = new NpgsqlConnection(connection);
            await db.OpenAsync();
            await using var cmd = new NpgsqlCommand("SELECT COALESCE(SUM(event_count), 0) FROM ledger_entries WHERE tenant_id = @t AND kind = 'consumption'", db);
            cmd.Parameters.AddWithValue("t", tenant);
            flushed = Convert.ToInt64(await cmd.ExecuteScalarAsync());
            if (flushed == events) return;
            Assert.True(flushed < events, $"{flushed} events in consumption entries for {events} sent: some were flushed twice");
            await Task.Delay(250);
        }
        Assert.Fail($"{flushed} of {events} events flushed within {clock.Elapsed.TotalSeconds:0} s. {(context is null ? "" : await context())}");
    }

    private static HttpClient Client(PortalProcess portal, string key)
    {
        var http = new HttpClient { BaseAddress = portal.Address, Timeout = TimeSpan.FromSeconds(30) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return http;
    }
}
