using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Npgsql;

namespace Rpt.Portal.Tests.Data;

/// <summary>
/// A primary with a synchronous streaming standby, and a real portal process on a multi-host connection string
/// (<c>Target Session Attributes=primary</c>) while clients send usage with random ids and resend whatever got no
/// answer. Three rounds of: kill -9 of the primary's postmaster, <c>pg_ctl promote</c> of the standby, a new standby
/// made from the new primary (pg_basebackup) on the dead one's port (RPT_FAILOVER_ROUNDS for more). In the end every id the portal acknowledged is
/// stored, exactly once, on the last primary, and its ledger verifies; each round's time from the kill to the first
/// accepted batch is written to artifacts/failover-rounds.txt.
/// </summary>
[Trait("Kind", "Postgres")]
public sealed class FailoverTests : IAsyncLifetime
{
    /// <summary>Three in every ./test.sh; RPT_FAILOVER_ROUNDS=10 for the longer measurement in docs/PERFORMANCE.md.</summary>
    private static readonly int Rounds = int.TryParse(Environment.GetEnvironmentVariable("RPT_FAILOVER_ROUNDS"), out var n) && n is >= 1 and <= 50 ? n : 3;
    private readonly string _root = Path.Combine(Path.GetTempPath(), "rpt-failover-" + Guid.NewGuid().ToString("N")[..8]);
    private readonly int[] _ports = [PortalProcess.FreePort(), PortalProcess.FreePort()];
    private readonly string?[] _nodes = new string?[2]; // the data directory on each port, or null

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_root);
        await RunAsync("chown", "postgres:postgres", _root);
        var data = Path.Combine(_root, "node0");
        await AsPostgresAsync("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync");
        await StartAsync(0, data);
        await ExecAsync(0, "CREATE DATABASE rpt");
    }

    [Fact]
    public async Task KillingThePrimaryInRounds_LosesNothingAcknowledged_AndStoresEachIdOnce()
    {
        await AttachStandbyAsync(primary: 0, standby: 1);
        var connection = $"Host=127.0.0.1:{_ports[0]},127.0.0.1:{_ports[1]};Username=postgres;Database=rpt;Target Session Attributes=primary;"
                         + "Host Recheck Seconds=1;Timeout=3;Command Timeout=15";
        var env = PortalProcess.Environment(new Dictionary<string, string?> { ["Rpt:Data:Provider"] = "Postgres", ["ConnectionStrings:Rpt"] = connection });
        await using var portal = await PortalProcess.StartAsync(env);
        var key = PortalProcess.Field(await PortalProcess.RunCommandAsync(env, "tenants", "create", "--name", "Failover Co", "--id", "failover", "--plan", "enterprise"), "api_key");

        var acknowledged = new ConcurrentDictionary<string, byte>();
        // Per round: the first answer "accepted" to a batch sent after the kill (a batch sent before it may be answered
        // just after, from the old primary: that is not the new one accepting).
        long firstAcceptedAfterKill = 0, killedAtTicks = long.MaxValue;
        using var stop = new CancellationTokenSource();
        using var giveUp = new CancellationTokenSource(); // the resending ends at last, so that a portal that never answers again fails the test instead of hanging the run
        var workers = Enumerable.Range(0, 2).Select(_ => Task.Run(async () =>
        {
            using var http = new HttpClient { BaseAddress = portal.Address, Timeout = TimeSpan.FromSeconds(20) };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
            while (!stop.IsCancellationRequested)
            {
                var ids = Enumerable.Range(0, 100).Select(_ => Guid.NewGuid().ToString()).ToArray();
                var body = new { events = ids.Select(id => new { id, occurred_at = DateTimeOffset.UtcNow, model = "gpt-4o-mini", input_tokens = 3200, output_tokens = 740 }) };
                await Task.Delay(50); // about 2,000 events a second from both: a steady load, small enough for the base backups
                while (!giveUp.IsCancellationRequested) // resent until answered, as the API asks: a batch without an answer may or may not be stored
                {
                    try
                    {
                        var sentAt = Stopwatch.GetTimestamp();
                        using var answer = await http.PostAsJsonAsync("/v1/usage/events", body);
                        if (answer.StatusCode == HttpStatusCode.OK)
                        {
                            var json = JsonNode.Parse(await answer.Content.ReadAsStringAsync())!;
                            Assert.Equal(100, (long)json["accepted"]! + (long)json["duplicates"]!);
                            foreach (var id in ids) acknowledged[id] = 0;
                            if (sentAt > Interlocked.Read(ref killedAtTicks)) Interlocked.CompareExchange(ref firstAcceptedAfterKill, Stopwatch.GetTimestamp(), 0);
                            break;
                        }
                        Assert.True(answer.StatusCode == HttpStatusCode.ServiceUnavailable,
                            $"ingestion answered {(int)answer.StatusCode} during a failover (only 200 or 503 may be): {await answer.Content.ReadAsStringAsync()}");
                        Assert.NotNull(answer.Headers.RetryAfter);
                    }
                    catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { }
                    await Task.Delay(200);
                }
            }
        })).ToArray();

        var report = new List<string>();
        var primary = 0;
        for (var round = 1; round <= Rounds; round++)
        {
            await Task.Delay(TimeSpan.FromSeconds(2)); // ingestion under way on this primary
            var before = acknowledged.Count;
            var standby = 1 - primary;
            Interlocked.Exchange(ref firstAcceptedAfterKill, 0);
            var killedAt = Stopwatch.GetTimestamp();
            Interlocked.Exchange(ref killedAtTicks, killedAt);
            KillPostmaster(primary);
            await AsPostgresAsync("pg_ctl", "promote", "-w", "-D", _nodes[standby]!);
            // The new primary has no standby yet: it must not wait for one (the operator's step, docs/DEPLOYMENT.md).
            await ExecAsync(standby, "ALTER SYSTEM SET synchronous_standby_names = ''");
            await ExecAsync(standby, "SELECT pg_reload_conf()");
            var clock = Stopwatch.StartNew();
            while (Interlocked.Read(ref firstAcceptedAfterKill) == 0 && clock.Elapsed < TimeSpan.FromSeconds(60)) await Task.Delay(20);
            Assert.True(Interlocked.Read(ref firstAcceptedAfterKill) != 0, $"round {round}: nothing sent after the kill was accepted within 60 s");
            var accepting = Stopwatch.GetElapsedTime(killedAt, Interlocked.Read(ref firstAcceptedAfterKill));
            Interlocked.Exchange(ref killedAtTicks, long.MaxValue);
            report.Add($"round {round}: killed the primary on port {_ports[primary]} with {before:N0} ids acknowledged; "
                       + $"promoted port {_ports[standby]}; first batch sent after the kill accepted {accepting.TotalSeconds:0.00} s after it");
            // A new standby from the new primary, on the dead primary's port, synchronous again.
            Directory.Delete(_nodes[primary]!, recursive: true);
            _nodes[primary] = null;
            await AttachStandbyAsync(primary: standby, standby: primary);
            primary = standby;
        }
        await Task.Delay(TimeSpan.FromSeconds(1));
        await stop.CancelAsync();
        giveUp.CancelAfter(TimeSpan.FromMinutes(2));
        await Task.WhenAll(workers);
        Assert.False(giveUp.IsCancellationRequested, "a batch was still unanswered 2 minutes after the last round");

        await using var db = new NpgsqlConnection($"Host=127.0.0.1;Port={_ports[primary]};Username=postgres;Database=rpt;Pooling=false");
        await db.OpenAsync();
        var stored = new HashSet<string>();
        long rows = 0;
        await using (var cmd = new NpgsqlCommand("SELECT event_id FROM usage_events WHERE tenant_id = 'failover'", db))
        await using (var r = await cmd.ExecuteReaderAsync())
            while (await r.ReadAsync())
            {
                stored.Add(r.GetString(0));
                rows++;
            }
        var lost = acknowledged.Keys.Where(id => !stored.Contains(id)).Take(5).ToList();
        Assert.True(lost.Count == 0, $"acknowledged but not stored on the last primary: {string.Join(", ", lost)}");
        Assert.Equal(stored.Count, rows); // each id once
        Assert.True(acknowledged.Count > 2_000, $"only {acknowledged.Count} ids were acknowledged");
        report.Insert(0, $"{DateTimeOffset.UtcNow:yyyy-MM-dd}, this machine ({Environment.ProcessorCount} cores): primary + synchronous standby on loopback, one portal process, 2 clients "
                         + "sending 100-event batches of random ids; promotion right after each kill (what detection adds is the operator's or the failover manager's)");
        var verify = await PortalProcess.RunCommandAsync(env, "ledger", "verify", "--tenant", "failover", "--deep");
        Assert.Contains("intact", verify, StringComparison.OrdinalIgnoreCase);
        report.Add($"acknowledged {acknowledged.Count:N0} ids; stored {rows:N0} rows, {stored.Count:N0} distinct; none acknowledged lost");
        var artifacts = Path.Combine(Browser.BrowserFixture.RepositoryRoot(), "artifacts");
        Directory.CreateDirectory(artifacts);
        await File.WriteAllTextAsync(Path.Combine(artifacts, "failover-rounds.txt"), string.Join("\n", report) + "\n");
    }

    /// <summary>pg_basebackup of <paramref name="primary"/> into a new directory on the standby's port, started, then made synchronous.</summary>
    private async Task AttachStandbyAsync(int primary, int standby)
    {
        var data = Path.Combine(_root, "node" + Guid.NewGuid().ToString("N")[..6]);
        await AsPostgresAsync("pg_basebackup", "-h", "127.0.0.1", "-p", _ports[primary].ToString(), "-U", "postgres", "-D", data, "-R", "-X", "stream", "--checkpoint=fast", "--no-sync");
        // The standby names itself, so that the primary's synchronous_standby_names can wait for it.
        await AsPostgresAsync("sh", "-c", $"echo \"primary_conninfo = 'host=127.0.0.1 port={_ports[primary]} user=postgres application_name=standby'\" >> {data}/postgresql.auto.conf");
        await StartAsync(standby, data);
        await ExecAsync(primary, "ALTER SYSTEM SET synchronous_standby_names = 'standby'");
        await ExecAsync(primary, "SELECT pg_reload_conf()");
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            await using var c = new NpgsqlConnection($"Host=127.0.0.1;Port={_ports[primary]};Username=postgres;Database=postgres;Pooling=false");
            await c.OpenAsync();
            await using var cmd = new NpgsqlCommand("SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby'", c);
            if (await cmd.ExecuteScalarAsync() is "sync") return;
            await Task.Delay(100);
        }
        throw new TimeoutException("the standby did not become synchronous within 60 s");
    }

    private async Task StartAsync(int node, string data)
    {
        _nodes[node] = data;
        try
        {
            await AsPostgresAsync("pg_ctl", "-D", data, "-l", data + ".log", "-w", "-t", "60",
                "-o", $"-p {_ports[node]} -k {_root} -c listen_addresses=127.0.0.1 -c max_connections=100 -c synchronous_commit=on", "start");
        }
        catch (InvalidOperationException e)
        {
            throw new InvalidOperationException($"{e.Message}\n{string.Join("\n", File.ReadLines(data + ".log").TakeLast(15))}", e);
        }
    }

    /// <summary>SIGKILL to the postmaster and every process it started, at once, as when its machine is lost.</summary>
    private void KillPostmaster(int node)
    {
        var pid = int.Parse(File.ReadLines(Path.Combine(_nodes[node]!, "postmaster.pid")).First());
        var family = Directory.GetDirectories("/proc").Select(d => int.TryParse(Path.GetFileName(d), out var p) ? p : 0)
            .Where(p => p > 0 && ParentOf(p) == pid).Append(pid);
        foreach (var p in family)
        {
            try
            {
                using var process = Process.GetProcessById(p);
                process.Kill();
                process.WaitForExit(5_000);
            }
            catch (ArgumentException) { }
            catch (InvalidOperationException) { }
        }
        // Its socket files stay behind (a new machine would not have them); the node started on this port next removes them.
        foreach (var f in new[] { $".s.PGSQL.{_ports[node]}", $".s.PGSQL.{_ports[node]}.lock" }) File.Delete(Path.Combine(_root, f));
    }

    private static int ParentOf(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1]);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { return 0; }
    }

    private async Task ExecAsync(int node, string sql)
    {
        await using var c = new NpgsqlConnection($"Host=127.0.0.1;Port={_ports[node]};Username=postgres;Database=postgres;Pooling=false");
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, c);
        await cmd.ExecuteNonQueryAsync();
    }

    /// <summary>One of PostgreSQL's programs (or sh) as the postgres user.</summary>
    private static Task AsPostgresAsync(string program, params string[] args) =>
        PostgresCluster.AsPostgresAsync(program == "sh" ? "sh" : Path.Combine(PostgresCluster.BinDirectory(), program), args);

    private static Task RunAsync(string program, params string[] args) => PostgresCluster.RunAsync(program, args);

    public async Task DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        foreach (var data in _nodes.OfType<string>())
        {
            try { await AsPostgresAsync("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"); }
            catch (InvalidOperationException) { }
        }
        try { Directory.Delete(_root, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
