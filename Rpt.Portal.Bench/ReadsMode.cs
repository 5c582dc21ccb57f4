using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Rpt.Portal.Bench;

/// <summary>The "reads" mode: see <see cref="Reads"/>.</summary>
public static class ReadsMode
{
    public static async Task<int> RunAsync(Args options)
    {
        var events = options.Long("events", 10_000_000);
        var history = options.Long("history-events", 1_000_000);
        var small = options.Long("small-events", 2_000);
        var live = options.Long("live-events", 2_000_000);
        var dashboards = (int)options.Long("dashboards", 500);
        var requests = (int)options.Long("requests", 500);
        var batch = (int)options.Long("batch", 1_000);
        var concurrency = (int)options.Long("concurrency", 8);

        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {Machine.MemoryGiB():0.#} GiB, {Machine.Cpu()}, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}");
        await using var server = await PortalServer.StartAsync(options.Flag("keep"));
        var now = DateTimeOffset.UtcNow;
        var anchor = new DateTimeOffset(now.UtcDateTime.Date.AddDays(-29), TimeSpan.Zero); // the current period holds 29 days and today
        var largeKey = await server.CreateTenantAsync("large", "enterprise", anchor);
        var smallKey = await server.CreateTenantAsync("small", "enterprise", anchor);
        // Ten and a half periods back: as far as the seeded price book goes (it starts on 1 January 2026).
        var historyStart = now.AddDays(-320);
        var historyKey = await server.CreateTenantAsync("history", "enterprise", historyStart);
        using var large = Reads.Client(server, largeKey, concurrency);
        using var smallHttp = Reads.Client(server, smallKey, concurrency);
        using var historyHttp = Reads.Client(server, historyKey, concurrency);
        var prices = await Workload.LoadPricesAsync(large);
        var memory = new MemorySampler(server.Pid);

        Console.WriteLine($"load: {events:N0} events for 'large' over 30 days of its current period, {history:N0} for 'history' over 320 days, {small:N0} for 'small' (random UUIDs for events and jobs, batches of {batch:N0}, {concurrency} clients)");
        var loaded = await Workload.IngestAsync(large, events, batch, concurrency, prices, anchor);
        Console.WriteLine($"  large:   {loaded.EventsPerSecond:N0} events/s with the rollups ({loaded.Accepted:N0} in {loaded.Elapsed.TotalSeconds:0.0} s; batch p50 {loaded.Latency.P50:0.0} ms, p99 {loaded.Latency.P99:0.0} ms)");
        var past = await Workload.IngestAsync(historyHttp, history, batch, concurrency, prices, historyStart, "h_");
        var few = await Workload.IngestAsync(smallHttp, small, batch, 1, prices, anchor, "s_");
        var check = await Workload.CheckChargesAsync(large, loaded.ExpectedMicroCredits);
        Console.WriteLine($"  charged: {check.ChargedMicroCredits:N0} µcr for 'large', expected {loaded.ExpectedMicroCredits:N0}: {(check.Exact ? "exact" : "MISMATCH")}; chain {(check.ChainIntact ? "intact" : "BROKEN")}");
        Console.WriteLine($"  accepted: large {loaded.Accepted:N0}, history {past.Accepted:N0}, small {few.Accepted:N0}");
        var ok = check.Exact && check.ChainIntact && loaded.Accepted == events && past.Accepted == history && few.Accepted == small;

        Console.WriteLine($"reads: {requests} sequential requests each, 'small' ({small:N0} events) against 'large' ({events:N0} events in the period), ms");
        Console.WriteLine($"  {"read",-48} {"small p50",10} {"small p99",10} {"large p50",10} {"large p99",10} {"p99 ×",7}");
        var paths = new[]
        {
            "/v1/credits/balance", "/v1/usage/tokens?group_by=model", "/v1/usage/tokens?group_by=feature", "/v1/usage/tokens?group_by=job",
            "/v1/credits/consumption?days=30", "/v1/credits/allocations", "/v1/usage/daily", "/v1/ledger/verify",
        };
        var results = new List<Reads.ReadResult>();
        foreach (var path in paths)
        {
            var (s, l) = await Reads.TimePairAsync(smallHttp, path, large, path, requests);
            results.Add(new(path, s, l));
        }
        var job = (string)JsonNode.Parse(await large.GetStringAsync("/v1/usage/tokens?group_by=job&page_size=1"))!["groups"]!["items"]![0]!["key"]!;
        var smallJob = (string)JsonNode.Parse(await smallHttp.GetStringAsync("/v1/usage/tokens?group_by=job&page_size=1"))!["groups"]!["items"]![0]!["key"]!;
        var (js, jl) = await Reads.TimePairAsync(smallHttp, $"/v1/usage/jobs/{smallJob}", large, $"/v1/usage/jobs/{job}", requests);
        results.Add(new("/v1/usage/jobs/{job} (25 calls)", js, jl));
        results.Add(new("dashboard data load, fresh read (not shared)", await Reads.TimeDashboardReadAsync(smallHttp, "small", 40), await Reads.TimeDashboardReadAsync(large, "large", 40)));
        foreach (var r in results)
            Console.WriteLine($"  {r.Name,-48} {r.Small.P50,10:0.00} {r.Small.P99,10:0.00} {r.Large.P50,10:0.00} {r.Large.P99,10:0.00} {r.Large.P99 / Math.Max(r.Small.P99, 0.001),7:0.0}{(r.Pass ? "" : "  FAIL")}");
        ok &= results.All(r => r.Pass);

        var csv = await CsvExport.RunAsync(server, "large", anchor.ToString("yyyy-MM-dd"));
        var csvGrowth = Math.Max(0, csv.ServerPeakBytes - csv.ServerBaselineBytes);
        Console.WriteLine($"csv: every call of 'large' exported by a signed-in owner: {csv.Rows:N0} rows, {csv.Bytes / 1048576.0:N0} MiB in {csv.Elapsed.TotalSeconds:0.0} s; " +
            $"server working set {csv.ServerBaselineBytes / 1048576.0:N0} MiB before, peak {csv.ServerPeakBytes / 1048576.0:N0} MiB during (+{csvGrowth / 1048576.0:N0} MiB)");
        ok &= csv.Rows >= events && csvGrowth < 256L * 1024 * 1024;

        if (dashboards > 0)
        {
            Console.WriteLine($"dashboards: {live:N0} more events for 'large' at full speed, alone, then with {dashboards} dashboards open on 'large', then alone again");
            await Task.Delay(10_000); // let the flusher catch up with the load
            var alone = await Workload.IngestAsync(large, live, batch, concurrency, prices, anchor, "alone_");
            Console.WriteLine($"  alone:           {alone.EventsPerSecond:N0} events/s (batch p99 {alone.Latency.P99:0.0} ms)");
            await Task.Delay(10_000);
            var baseline = (long)JsonNode.Parse(await large.GetStringAsync("/v1/usage/daily"))!["consumed_micro_credits"]!;
            var acks = new List<(long Micro, long At)>();
            long cumulative = baseline;
            using var stop = new CancellationTokenSource();
            var peakBefore = memory.PeakBytes;
            var watching = Reads.DashboardsAsync(server, largeKey, dashboards, () => { lock (acks) return acks.ToArray(); }, stop.Token);
            await Task.Delay(2_000);
            var withDashboards = await Workload.IngestAsync(large, live, batch, concurrency, prices, anchor, "live_",
                micro => { lock (acks) acks.Add((cumulative += micro, Stopwatch.GetTimestamp())); });
            await Task.Delay(3_000);
            stop.Cancel();
            var staleness = await watching;
            var stale = Latency.Of(staleness);
            staleness.Sort();
            var p95 = staleness[(int)(staleness.Count * 0.95)];
            await Task.Delay(10_000);
            var again = await Workload.IngestAsync(large, live, batch, concurrency, prices, anchor, "again_");
            Console.WriteLine($"  alone again:     {again.EventsPerSecond:N0} events/s (batch p99 {again.Latency.P99:0.0} ms)");
            var ratio = withDashboards.EventsPerSecond / ((alone.EventsPerSecond + again.EventsPerSecond) / 2);
            Console.WriteLine($"  with dashboards: {withDashboards.EventsPerSecond:N0} events/s ({ratio:P0} of the mean alone; batch p99 {withDashboards.Latency.P99:0.0} ms)");
            Console.WriteLine($"  new usage shown on the dashboards ({acks.Count:N0} acknowledged batches × {dashboards} dashboards, {staleness.Count:N0} pairs): p50 {stale.P50:0} ms, p95 {p95:0} ms, max {stale.Max:0} ms after the acknowledgement");
            Console.WriteLine($"  server peak working set with dashboards: {memory.PeakBytes / 1048576.0:N0} MiB (before them {peakBefore / 1048576.0:N0} MiB)");
            ok &= ratio >= 0.9 && p95 <= 2_000 && memory.PeakBytes < 1.5 * 1024 * 1024 * 1024;
        }
        Console.WriteLine($"  server peak working set overall: {memory.PeakBytes / 1048576.0:N0} MiB (VmHWM {Machine.PeakRss(server.Pid) / 1048576.0:N0} MiB)");
        Console.WriteLine(ok ? "result: PASS" : "result: FAIL");
        return ok ? 0 : 1;
    }
}
