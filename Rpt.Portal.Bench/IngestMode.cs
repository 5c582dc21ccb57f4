using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;

namespace Rpt.Portal.Bench;

/// <summary>
/// Ingestion at scale, with the ids real clients send: random UUIDs by default (events and jobs), sequential
/// names for comparison, or both, each on a fresh server and database. Reports the rate of every million
/// acknowledged, the server's peak memory, that what was charged is exact, and with --restart kills the
/// server (SIGKILL) and measures how long until it accepts events again (its exactly-once index is rebuilt
/// from the audit table on every start).
/// </summary>
public static class IngestMode
{
    public static async Task<int> RunAsync(Args options)
    {
        var events = options.Long("events", 5_000_000);
        var batch = (int)options.Long("batch", 1_000);
        var concurrency = (int)options.Long("concurrency", 8);
        var idsOption = options.Text("ids") ?? "random";
        var instances = (int)options.Long("instances", 1);
        if (instances is < 1 or > 8) throw new ArgumentException($"--instances must be 1 to 8 (got {instances})");
        if (instances > 1 && PortalServer.Provider != "postgres") throw new ArgumentException("--instances above 1 needs --provider postgres: instances share one PostgreSQL database");
        IdKind[] kinds = idsOption switch
        {
            "random" => [IdKind.Random],
            "sequential" => [IdKind.Sequential],
            "both" => [IdKind.Random, IdKind.Sequential],
            _ => throw new ArgumentException($"--ids must be random, sequential or both (got '{idsOption}')"),
        };
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {Machine.MemoryGiB():0.#} GiB, {Machine.Cpu()}, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}");
        var ok = true;
        var rates = new Dictionary<IdKind, IReadOnlyList<double>>();
        foreach (var kind in kinds)
        {
            var (passed, perMillion) = await RunOneAsync(kind, events, batch, concurrency, options.Flag("restart"), options.Flag("keep"), instances,
                (int)options.Long("dashboards", 0));
            ok &= passed;
            rates[kind] = perMillion;
        }
        if (rates.Count == 2 && rates[IdKind.Random].Count > 0)
        {
            Console.WriteLine();
            Console.WriteLine("| million | random UUIDs (events/s) | sequential ids (events/s) |");
            Console.WriteLine("|---|---|---|");
            for (var i = 0; i < Math.Max(rates[IdKind.Random].Count, rates[IdKind.Sequential].Count); i++)
                Console.WriteLine($"| {i + 1} | {Cell(rates[IdKind.Random], i)} | {Cell(rates[IdKind.Sequential], i)} |");
        }
        Console.WriteLine(ok ? "result: PASS" : "result: FAIL");
        return ok ? 0 : 1;
    }

    private static string Cell(IReadOnlyList<double> r, int i) => i < r.Count ? r[i].ToString("N0", CultureInfo.InvariantCulture) : "";

    private static async Task<(bool Ok, IReadOnlyList<double> PerMillion)> RunOneAsync(IdKind kind, long events, int batch, int concurrency, bool restart, bool keep,
        int instances = 1, int dashboards = 0)
    {
        Console.WriteLine();
        Console.WriteLine($"== {(kind == IdKind.Random ? "random UUIDs (events and jobs)" : "sequential ids (call_0, call_1, …)")}: {events:N0} events in batches of {batch:N0} from {concurrency} concurrent clients"
                          + (instances > 1 ? $", spread over {instances} instances on one database" : ""));
        await using var server = await PortalServer.StartAsync(keep);
        var others = new List<PortalServer>();
        for (var i = 1; i < instances; i++) others.Add(await server.StartAnotherInstanceAsync());
        var key = await server.CreateTenantAsync("bench", "enterprise");
        using var http = Client(server, key, concurrency);
        var clients = others.Select(o => Client(o, key, concurrency)).Prepend(http).ToList();
        var prices = await Workload.LoadPricesAsync(http);
        var memory = new MemorySampler(server.Pid);
        // Dashboards open on every instance (split evenly), each refreshing once a second: how long after its
        // acknowledgement (by whichever instance) a batch shows on them.
        var acks = new List<(long Micro, long At)>();
        long cumulative = 0;
        using var stopWatching = new CancellationTokenSource();
        var watching = dashboards > 0
            ? others.Prepend(server).Select(s => Reads.DashboardsAsync(s, key, Math.Max(1, dashboards / instances), () => { lock (acks) return acks.ToArray(); }, stopWatching.Token)).ToArray()
            : [];
        var ingest = await Workload.IngestAsync(http, events, batch, concurrency, prices, ids: kind, instances: clients,
            acked: dashboards > 0 ? micro => { lock (acks) acks.Add((cumulative += micro, Stopwatch.GetTimestamp())); } : null);
        if (watching.Length > 0)
        {
            await Task.Delay(3_000);
            await stopWatching.CancelAsync();
            var lags = (await Task.WhenAll(watching)).SelectMany(l => l).ToList();
            lags.Sort();
            Console.WriteLine($"  dashboards: {dashboards} open over {instances} instance(s); new usage shown p50 {lags[lags.Count / 2]:0} ms, p95 {lags[(int)(lags.Count * 0.95)]:0} ms, max {lags[^1]:0} ms after its acknowledgement ({lags.Count:N0} batch × dashboard pairs)");
        }
        foreach (var (o, i) in others.Select((o, i) => (o, i)))
            Console.WriteLine($"  instance {i + 2} peak memory (VmHWM): {Machine.PeakRss(o.Pid) / 1048576.0:N0} MiB");
        foreach (var c in clients.Skip(1)) c.Dispose();
        foreach (var o in others) await o.DisposeAsync();
        Console.WriteLine($"  events/s:        {ingest.EventsPerSecond:N0} ({ingest.Accepted:N0} accepted in {ingest.Elapsed.TotalSeconds:0.0} s)");
        Console.WriteLine($"  batch latency:   p50 {ingest.Latency.P50:0.0} ms, p99 {ingest.Latency.P99:0.0} ms, max {ingest.Latency.Max:0.0} ms");
        var perMillion = ingest.RatePerMillion;
        if (perMillion.Count > 0)
        {
            Console.WriteLine("  rate per million: " + string.Join(", ", perMillion.Select((r, i) => $"{i + 1}: {r:N0}")));
            Console.WriteLine($"  slowest million {perMillion.Min():N0} ev/s; last/first {perMillion[^1] / perMillion[0]:0.00}");
        }
        var check = await Workload.CheckChargesAsync(http, ingest.ExpectedMicroCredits);
        Console.WriteLine($"  charged: {check.ChargedMicroCredits:N0} µcr, expected {ingest.ExpectedMicroCredits:N0} µcr: {(check.Exact ? "exact" : "MISMATCH")}; chain {(check.ChainIntact ? "intact" : "BROKEN")}");
        var peak = Machine.PeakRss(server.Pid);
        Console.WriteLine($"  server peak memory (VmHWM): {peak / 1048576.0:N0} MiB; database {server.DatabaseBytes() / 1048576.0:N0} MiB on disk");
        var ok = ingest.Accepted == events && check.Exact && check.ChainIntact && peak < 1L << 30;
        if (kind == IdKind.Random && perMillion.Count >= 2)
        {
            var aim = perMillion.Min() >= 100_000 && perMillion[^1] >= 0.8 * perMillion[0];
            if (!aim)
                Console.WriteLine($"  below the aim: every million at 100,000 events/s or more, the last within 80 % of the first (slowest {perMillion.Min():N0}, last/first {perMillion[^1] / perMillion[0]:0.00})");
            ok &= aim;
        }

        if (restart)
        {
            var clock = Stopwatch.StartNew();
            await server.RestartAfterKillAsync();
            var answering = clock.Elapsed;
            // The writer rebuilds its exactly-once index from the audit table before it takes a batch: the restart
            // is over when an event is accepted, and a resent old event is still a duplicate.
            var first = await http.PostAsJsonAsync("/v1/usage/events", new { events = new[] { new { id = "after-restart", occurred_at = DateTimeOffset.UtcNow, model = "gpt-4o-mini", input_tokens = 10, output_tokens = 1 } } });
            var accepting = clock.Elapsed;
            first.EnsureSuccessStatusCode();
            Console.WriteLine($"  restart after kill -9: answering HTTP in {answering.TotalSeconds:0.0} s, accepting events (exactly-once index rebuilt from {ingest.Accepted:N0} records) in {accepting.TotalSeconds:0.0} s");
            var again = await http.PostAsJsonAsync("/v1/usage/events", new { events = new[] { new { id = "after-restart", occurred_at = DateTimeOffset.UtcNow, model = "gpt-4o-mini", input_tokens = 10, output_tokens = 1 } } });
            var body = await again.Content.ReadAsStringAsync();
            var duplicate = body.Contains("\"duplicates\":1", StringComparison.Ordinal);
            Console.WriteLine($"  the same event sent again: {(duplicate ? "duplicate" : "NOT A DUPLICATE: " + body)}");
            Console.WriteLine($"  server memory after the rebuild: {Machine.Rss(server.Pid) / 1048576.0:N0} MiB");
            ok &= accepting < TimeSpan.FromSeconds(60) && duplicate;
        }
        memory.Dispose();
        return (ok, perMillion);
    }

    private static HttpClient Client(PortalServer server, string key, int concurrency)
    {
        var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = Math.Max(concurrency, 1), UseCookies = false })
        {
            BaseAddress = server.BaseAddress,
            Timeout = TimeSpan.FromMinutes(5),
        };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return http;
    }
}
