using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Text.Json.Nodes;
using Rpt.Portal.Bench;

// Drives a real Rpt Portal server (Release build, its own SQLite file) over loopback from this
// separate process, then checks through the API that what was charged equals what the events cost.
//   dotnet run -c Release --project Rpt.Portal.Bench -- ingest --events 5000000 --batch 1000 --concurrency 8 [--ids random|sequential|both] [--restart]
//   dotnet run -c Release --project Rpt.Portal.Bench -- ingest --events 20000000 --ids both --restart   (issue 14's targets)
//   dotnet run -c Release --project Rpt.Portal.Bench -- balance --events 10000000 --requests 20000
//   dotnet run -c Release --project Rpt.Portal.Bench -- reads --events 10000000 --dashboards 500
//   dotnet run -c Release --project Rpt.Portal.Bench -- ingest --events 10000000 --provider postgres   (issue 19: the same on PostgreSQL)
//   dotnet run -c Release --project Rpt.Portal.Bench -- ingest --events 10000000 --provider postgres --instances 2 --dashboards 20   (issue 20: two instances on one database)
//   dotnet run -c Release --project Rpt.Portal.Bench -- dedupe --keys 12000000   (the exactly-once check alone, two engines)
//   dotnet run -c Release --project Rpt.Portal.Bench -- budgets --events 10000000 --users 100000 --projects 1000 [--provider postgres]   (issue 22)
var mode = args.FirstOrDefault();
if (mode is not ("ingest" or "balance" or "reads" or "dedupe" or "budgets"))
{
    Console.Error.WriteLine("usage: Rpt.Portal.Bench ingest|balance|reads|dedupe|budgets [--users N] [--projects N] [--compare-events N] [--keys N] [--events N] [--batch N] [--concurrency N] [--ids random|sequential|both] [--restart] [--requests N] [--dashboards N] [--keep] [--provider sqlite|postgres] [--instances N] [--running-jobs N] [--ledger-entries N] [--background-rate N] [--server-env NAME=VALUE,...] [--pg-setting NAME=VALUE,...]");
    return 2;
}
var options = Args.Parse(args.Skip(1));
PortalServer.Provider = options.Text("provider") ?? "sqlite";
foreach (var (name, value) in Pairs("pg-setting", spaces: false)) BenchPostgres.ExtraSettings.Add($"{name}={value}");
foreach (var (name, value) in Pairs("server-env", spaces: true)) PortalServer.ExtraEnv[name] = value;
if (PortalServer.Provider is not ("sqlite" or "postgres"))
{
    Console.Error.WriteLine($"--provider must be sqlite or postgres (got '{PortalServer.Provider}')");
    return 2;
}
Console.WriteLine($"provider: {PortalServer.Provider}");
if (mode == "reads") return await ReadsMode.RunAsync(options);
if (mode == "ingest") return await IngestMode.RunAsync(options);
if (mode == "dedupe") return DedupeMode.Run(options);
if (mode == "budgets") return await BudgetsMode.RunAsync(options);
var events = options.Long("events", mode == "ingest" ? 5_000_000 : 10_000_000);
var batch = (int)options.Long("batch", 1_000);
var concurrency = (int)options.Long("concurrency", 8);
var requests = (int)options.Long("requests", 20_000);

Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {Machine.MemoryGiB():0.#} GiB, {Machine.Cpu()}, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}");
await using var server = await PortalServer.StartAsync(options.Flag("keep"));
var key = await server.CreateTenantAsync("bench", "enterprise");
using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = Math.Max(concurrency, 1), UseCookies = false })
{
    BaseAddress = server.BaseAddress,
    Timeout = TimeSpan.FromMinutes(5),
};
http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);

var prices = await Workload.LoadPricesAsync(http);
var memory = new MemorySampler(server.Pid);

Console.WriteLine($"ingest: {events:N0} events in batches of {batch:N0} from {concurrency} concurrent clients");
var ingest = await Workload.IngestAsync(http, events, batch, concurrency, prices);
var peakDuringIngest = memory.PeakBytes;
Console.WriteLine($"  events/s:        {ingest.EventsPerSecond:N0} ({ingest.Accepted:N0} accepted in {ingest.Elapsed.TotalSeconds:0.00} s)");
Console.WriteLine($"  batch latency:   p50 {ingest.Latency.P50:0.0} ms, p99 {ingest.Latency.P99:0.0} ms, max {ingest.Latency.Max:0.0} ms");
Console.WriteLine($"  server peak working set during ingestion: {peakDuringIngest / 1048576.0:N0} MiB");

var check = await Workload.CheckChargesAsync(http, ingest.ExpectedMicroCredits);
Console.WriteLine($"  charged: {check.ChargedMicroCredits:N0} µcr, expected {ingest.ExpectedMicroCredits:N0} µcr: {(check.Exact ? "exact" : "MISMATCH")}; ledger flushed in {check.FlushWait.TotalSeconds:0.0} s; chain {(check.ChainIntact ? "intact" : "BROKEN")}");

var ok = ingest.Accepted == events && check.Exact && check.ChainIntact;
if (mode == "balance")
{
    Console.WriteLine($"balance: {requests:N0} sequential GET /v1/credits/balance with {ingest.Accepted:N0} events stored for the tenant");
    var balance = await Workload.BalanceAsync(http, requests);
    Console.WriteLine($"  latency:         p50 {balance.P50:0.000} ms, p99 {balance.P99:0.000} ms, max {balance.Max:0.000} ms");
    ok &= balance.P99 <= 2.0;
}
Console.WriteLine($"  server peak working set overall: {memory.PeakBytes / 1048576.0:N0} MiB (VmHWM {Machine.PeakRss(server.Pid) / 1048576.0:N0} MiB)");
Console.WriteLine(ok ? "result: PASS" : "result: FAIL");
return ok ? 0 : 1;

// The NAME=VALUE,… pairs of an option; a pair without '=' (or, where the value goes on a command line, with a space) stops the run naming it.
IEnumerable<(string Name, string Value)> Pairs(string option, bool spaces) =>
    (options.Text(option) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries).Select(pair =>
        pair.Split('=', 2) is [var name, var value] && (spaces || !pair.Contains(' '))
            ? (name, value)
            : throw new ArgumentException($"--{option} takes NAME=VALUE pairs{(spaces ? "" : " without spaces")} (got '{pair}')"));
