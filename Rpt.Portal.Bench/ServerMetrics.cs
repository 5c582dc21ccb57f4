using System.Globalization;

namespace Rpt.Portal.Bench;

/// <summary>
/// The server's own view of a measurement, from its Prometheus scrape (/metrics, loopback): how long the runtime paused
/// for garbage collection and how many collections of each generation ran, and what share of a route's requests the
/// server answered within 5 ms. A client's latency includes the loopback, its own scheduling and the server's; this
/// separates the server's part.
/// </summary>
public sealed class ServerMetrics
{
    private readonly Dictionary<string, double> _values;

    private ServerMetrics(Dictionary<string, double> values) => _values = values;

    private static readonly SemaphoreSlim OneAtATime = new(1, 1);
    private static long _lastScrape;

    /// <summary>A fresh scrape: the exporter answers a scrape within 300 ms of the one before from its cache, so scrapes are
    /// spaced 350 ms apart (the sampler's and the measurements' alike).</summary>
    public static async Task<ServerMetrics> ScrapeAsync(Uri server)
    {
        await OneAtATime.WaitAsync();
        string text;
        try
        {
            var wait = TimeSpan.FromMilliseconds(350) - System.Diagnostics.Stopwatch.GetElapsedTime(_lastScrape);
            if (_lastScrape != 0 && wait > TimeSpan.Zero) await Task.Delay(wait);
            using var client = new HttpClient { BaseAddress = server };
            text = await client.GetStringAsync("/metrics");
            _lastScrape = System.Diagnostics.Stopwatch.GetTimestamp();
        }
        finally { OneAtATime.Release(); }
        var values = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#') continue;
            // "name{labels} value" or "name{labels} value timestamp"
            var nameEnd = line.IndexOf('}') is var brace and > 0 ? brace + 1 : line.IndexOf(' ');
            if (nameEnd <= 0) continue;
            var rest = line[nameEnd..].Trim().Split(' ');
            if (double.TryParse(rest[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var v)) values[line[..nameEnd]] = v;
        }
        return new ServerMetrics(values);
    }

    /// <summary>
    /// Scrapes every <paramref name="every"/> until stopped: the most work items the server's thread pool had queued, waiting
    /// for a thread, and the most threads it had. A queue that grows while threads are added one by one is a pool starved by
    /// threads blocked on I/O: every request waits behind it, whatever its own cost.
    /// </summary>
    public static async Task<(double MaxQueued, double MaxThreads, int Scrapes)> SampleAsync(Uri server, TimeSpan every, CancellationToken stop)
    {
        double queued = 0, threads = 0;
        var scrapes = 0;
        using var timer = new PeriodicTimer(every);
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                var m = await ScrapeAsync(server);
                scrapes++;
                queued = Math.Max(queued, m.Sum(k => k.StartsWith("dotnet_thread_pool_queue_length", StringComparison.Ordinal)));
                threads = Math.Max(threads, m.PoolThreads);
            }
        }
        catch (OperationCanceledException) { }
        return (queued, threads, scrapes);
    }

    /// <summary>The server's thread-pool threads at this scrape.</summary>
    private double PoolThreads => Sum(k => k.StartsWith("dotnet_thread_pool_thread_count", StringComparison.Ordinal));

    private double Sum(Func<string, bool> match) => _values.Where(kv => match(kv.Key)).Sum(kv => kv.Value);

    /// <summary>What ran on the server between two scrapes: GC pause seconds, collections by generation, and for the routes under a prefix the requests and the share within 5 ms.</summary>
    public static string Between(ServerMetrics before, ServerMetrics after, string route)
    {
        double Delta(Func<string, bool> m) => after.Sum(m) - before.Sum(m);
        var pause = Delta(k => k.Contains("gc_pause_time", StringComparison.Ordinal) && !k.Contains("_bucket", StringComparison.Ordinal));
        string Gen(string g) => Delta(k => k.Contains("gc_collections", StringComparison.Ordinal) && k.Contains($"\"{g}\"", StringComparison.Ordinal)).ToString("0", CultureInfo.InvariantCulture);
        bool Route(string k) => k.StartsWith("http_server_request_duration_seconds", StringComparison.Ordinal) && k.Contains($"http_route=\"{route}", StringComparison.Ordinal);
        var count = Delta(k => Route(k) && k.StartsWith("http_server_request_duration_seconds_count", StringComparison.Ordinal));
        double Within(string le) => Delta(k => Route(k) && k.StartsWith("http_server_request_duration_seconds_bucket", StringComparison.Ordinal) && k.Contains($"le=\"{le}\"", StringComparison.Ordinal));
        var within = Within("0.005");
        // A call the client saw stall for a second or more either stalled in here or never reached here in time (its connection).
        var slow = count - Within("0.25");
        // The thread pool grows by a thread or two a second when its threads are blocked: threads added in between are a sign of that.
        return string.Create(CultureInfo.InvariantCulture,
            $"server side: {count:0} requests to {route}…, {(count > 0 ? 100 * within / count : 0):0.00} % answered within 5 ms, {slow:0} took more than 250 ms; GC paused {pause * 1000:0} ms in all (collections gen0 {Gen("gen0")}, gen1 {Gen("gen1")}, gen2 {Gen("gen2")}); thread pool {before.PoolThreads:0} → {after.PoolThreads:0} threads");
    }
}
