using System.Buffers;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Rpt.Portal.Bench;

public sealed record Latency(double P50, double P99, double Max)
{
    public static Latency Of(List<double> ms)
    {
        ms.Sort();
        return new(ms[(int)(ms.Count * 0.50)], ms[Math.Min(ms.Count - 1, (int)Math.Ceiling(ms.Count * 0.99) - 1)], ms[^1]);
    }
}

public sealed record IngestRun(long Accepted, TimeSpan Elapsed, Latency Latency, long ExpectedMicroCredits, IReadOnlyList<double> SecondsAtMillion)
{
    public double EventsPerSecond => Accepted / Elapsed.TotalSeconds;

    /// <summary>Events per second within each whole million acknowledged (the first, the second, …).</summary>
    public IReadOnlyList<double> RatePerMillion =>
        SecondsAtMillion.Select((t, i) => 1_000_000 / (t - (i == 0 ? 0 : SecondsAtMillion[i - 1]))).ToList();
}

/// <summary>The ids clients send: random UUIDs (what real clients and providers use), or call_0, call_1, … for comparison.</summary>
public enum IdKind { Random, Sequential }

public sealed record ChargeCheck(long ChargedMicroCredits, bool Exact, TimeSpan FlushWait, bool ChainIntact);

public sealed record ModelPrice(string Provider, string Model, decimal Input, decimal Output, decimal Cached);

public sealed record PriceSheet(decimal UsdPerCredit, decimal Overhead, ModelPrice[] Models);

/// <summary>The synthetic but varied workload, and the independent arithmetic that says what it must cost.</summary>
public static class Workload
{
    private static readonly string[] Models = ["gpt-4o-mini", "gpt-4o", "gemini-1.5-flash", "claude-3-5-haiku"];
    private static readonly string[] Features = ["document_summary", "classification", "extraction", "qa_chat"];

    /// <summary>The published rule and prices, read from the API: the benchmark rates with what customers are told.</summary>
    public static async Task<PriceSheet> LoadPricesAsync(HttpClient http)
    {
        var c = JsonNode.Parse(await http.GetStringAsync("/v1/credits/conversion"))!;
        var prices = c["prices"]!.AsArray();
        var models = Models.Select(m =>
        {
            var p = prices.Single(x => (string?)x!["model"] == m)!;
            return new ModelPrice((string)p["provider"]!, m, (decimal)p["input_per_mtok"]!, (decimal)p["output_per_mtok"]!,
                (decimal?)p["cached_input_per_mtok"] ?? (decimal)p["input_per_mtok"]!);
        }).ToArray();
        return new PriceSheet((decimal)c["usd_per_credit"]!, (decimal)c["overhead"]!, models);
    }

    /// <param name="from">Events occur between this instant and now (today's midnight UTC by default).</param>
    /// <param name="idPrefix">With sequential ids, ids are the prefix and the event's number, distinct per prefix.</param>
    /// <param name="acked">Called after each acknowledged batch with what the batch must cost, in µcr.</param>
    /// <param name="ids">Random UUIDs for events and jobs (the default of every mode: what real clients send), or sequential names.</param>
    public static async Task<IngestRun> IngestAsync(HttpClient http, long events, int batchSize, int concurrency, PriceSheet prices,
        DateTimeOffset? from = null, string idPrefix = "call_", Action<long>? acked = null, CancellationToken stop = default, IdKind ids = IdKind.Random,
        IReadOnlyList<HttpClient>? instances = null, int users = 0, int projects = 0, double eventsPerSecond = 0)
    {
        // With several instances, client w sends to instance w mod n: the load split evenly, as a load balancer would.
        instances ??= [http];
        // A job's id is the same for its 25 calls: a UUID derived from the job's number and this run's salt.
        var salt = Guid.NewGuid().ToByteArray();
        var now = DateTimeOffset.UtcNow;
        var periodStart = from ?? new DateTimeOffset(now.UtcDateTime.Date, TimeSpan.Zero);
        var spanMs = Math.Max(1, (long)(now - periodStart).TotalMilliseconds - 1_000);
        var batches = (events + batchSize - 1) / batchSize;
        // The token pattern below repeats every 20,000 events, so what each event must cost is computed once,
        // with the published rule, independently of the server.
        var charge = new long[Cycle];
        for (var n = 0; n < Cycle; n++)
        {
            var (m, input, output, cached) = Shape(n, prices);
            var cost = (input * m.Input + output * m.Output + cached * m.Cached) / 1_000_000m;
            charge[n] = (long)Math.Round(cost * (1m + prices.Overhead) / prices.UsdPerCredit * 1_000_000m, MidpointRounding.AwayFromZero);
        }
        long next = -1, accepted = 0, expected = 0;
        var latencies = new List<double>[concurrency];
        var marks = new List<double>();
        var clock = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, concurrency).Select(w => Task.Run(async () =>
        {
            var mine = latencies[w] = new List<double>((int)(batches / concurrency + 1));
            var buffer = new ArrayBufferWriter<byte>(batchSize * 320);
            long jobNumber = -1;
            var jobGuid = Guid.Empty;
            long localExpected = 0;
            while (true)
            {
                var b = Interlocked.Increment(ref next);
                if (b >= batches || stop.IsCancellationRequested) break;
                if (eventsPerSecond > 0)
                {
                    // Paced: batch b leaves when the steady rate reaches it, as a product's traffic does.
                    var wait = TimeSpan.FromSeconds(b * batchSize / eventsPerSecond) - clock.Elapsed;
                    if (wait > TimeSpan.Zero)
                    {
                        try { await Task.Delay(wait, stop); }
                        catch (OperationCanceledException) { break; }
                    }
                }
                var batchExpected = 0L;
                buffer.ResetWrittenCount();
                using (var json = new Utf8JsonWriter(buffer))
                {
                    json.WriteStartObject();
                    json.WriteStartArray("events");
                    var occurredAt = periodStart.AddMilliseconds(b * 997 % spanMs); // a batch is sent as its calls finish
                    for (var n = b * batchSize; n < Math.Min(events, (b + 1) * batchSize); n++)
                    {
                        var (model, input, output, cached) = Shape(n, prices);
                        json.WriteStartObject();
                        if (ids == IdKind.Random) json.WriteString("id", RandomUuid());
                        else json.WriteString("id", idPrefix + n.ToString(System.Globalization.CultureInfo.InvariantCulture));
                        json.WriteString("occurred_at", occurredAt);
                        json.WriteString("provider", model.Provider);
                        json.WriteString("model", model.Model);
                        json.WriteNumber("input_tokens", input);
                        json.WriteNumber("output_tokens", output);
                        json.WriteNumber("cached_input_tokens", cached);
                        json.WriteString("feature", Features[n % Features.Length]);
                        if (ids == IdKind.Random)
                        {
                            if (jobNumber != n / 25) (jobNumber, jobGuid) = (n / 25, JobGuid(salt, n / 25));
                            json.WriteString("job_id", jobGuid);
                        }
                        else json.WriteString("job_id", "job_" + (n / 25).ToString(System.Globalization.CultureInfo.InvariantCulture));
                        // End users and projects spread over the calls as a product's traffic spreads: every id in use, in no order.
                        if (users > 0) json.WriteString("user_id", "u_" + (n * 2_654_435_761L % users).ToString(System.Globalization.CultureInfo.InvariantCulture));
                        if (projects > 0) json.WriteString("project", "p_" + (n * 40_503L % projects).ToString(System.Globalization.CultureInfo.InvariantCulture));
                        json.WriteString("status", "succeeded");
                        json.WriteEndObject();
                        batchExpected += charge[n % Cycle];
                    }
                    json.WriteEndArray();
                    json.WriteEndObject();
                }
                using var content = new ReadOnlyMemoryContent(buffer.WrittenMemory);
                content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
                var started = Stopwatch.GetTimestamp();
                using var response = await instances[w % instances.Count].PostAsync("/v1/usage/events", content);
                var body = await response.Content.ReadAsByteArrayAsync();
                mine.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                if (!response.IsSuccessStatusCode)
                    throw new InvalidOperationException($"batch {b}: {(int)response.StatusCode} {System.Text.Encoding.UTF8.GetString(body)}");
                var acceptedNow = Accepted(body);
                var total = Interlocked.Add(ref accepted, acceptedNow);
                if (total / 1_000_000 != (total - acceptedNow) / 1_000_000)
                    lock (marks) marks.Add(clock.Elapsed.TotalSeconds);
                localExpected += batchExpected;
                acked?.Invoke(batchExpected);
            }
            Interlocked.Add(ref expected, localExpected);
        })).ToArray();
        await Task.WhenAll(workers);
        var elapsed = clock.Elapsed;
        marks.Sort();
        return new IngestRun(accepted, elapsed, Latency.Of(latencies.SelectMany(l => l).ToList()), expected, marks);
    }

    /// <summary>A version-4 UUID from a fast generator: random like a client's, without a system call per id.</summary>
    private static Guid RandomUuid()
    {
        Span<byte> bytes = stackalloc byte[16];
        Random.Shared.NextBytes(bytes);
        bytes[7] = (byte)(bytes[7] & 0x0F | 0x40);
        bytes[8] = (byte)(bytes[8] & 0x3F | 0x80);
        return new Guid(bytes);
    }

    private static Guid JobGuid(byte[] salt, long job)
    {
        Span<byte> input = stackalloc byte[24];
        salt.CopyTo(input);
        BitConverter.TryWriteBytes(input[16..], job);
        Span<byte> hash = stackalloc byte[32];
        System.Security.Cryptography.SHA256.HashData(input, hash);
        return new Guid(hash[..16]);
    }

    private const int Cycle = 20_000;

    /// <summary>Event n's model and tokens: varied, and periodic in n with period <see cref="Cycle"/>.</summary>
    private static (ModelPrice Model, long Input, long Output, long Cached) Shape(long n, PriceSheet prices) =>
        (prices.Models[n % prices.Models.Length], 500 + n * 7919 % 20_000, 50 + n * 104_729 % 2_000, n % 5 == 0 ? 100 : 0);

    /// <summary>Waits for the flusher, then compares what the ledger charged with the independent sum.</summary>
    public static async Task<ChargeCheck> CheckChargesAsync(HttpClient http, long expected)
    {
        var clock = Stopwatch.StartNew();
        JsonNode balance;
        do
        {
            balance = JsonNode.Parse(await http.GetStringAsync("/v1/credits/balance"))!;
            if ((long)balance["ledger"]!["unflushed_micro_credits"]! == 0) break;
            await Task.Delay(250);
        } while (clock.Elapsed < TimeSpan.FromMinutes(5));
        var flushed = (long)balance["ledger"]!["flushed_micro_credits"]!;
        var consumed = (long)balance["credits"]!["consumed"]!;
        var verify = JsonNode.Parse(await http.GetStringAsync("/v1/ledger/verify"))!;
        var exact = flushed == expected && consumed == expected / 1_000_000;
        return new ChargeCheck(flushed, exact, clock.Elapsed, (bool)verify["intact"]!);
    }

    public static async Task<Latency> BalanceAsync(HttpClient http, int requests)
    {
        for (var i = 0; i < 500; i++) await (await http.GetAsync("/v1/credits/balance")).Content.ReadAsByteArrayAsync();
        var ms = new List<double>(requests);
        for (var i = 0; i < requests; i++)
        {
            var started = Stopwatch.GetTimestamp();
            using var response = await http.GetAsync("/v1/credits/balance");
            await response.Content.ReadAsByteArrayAsync();
            ms.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"balance: {(int)response.StatusCode}");
        }
        return Latency.Of(ms);
    }

    private static long Accepted(byte[] body)
    {
        var reader = new Utf8JsonReader(body);
        while (reader.Read())
        {
            if (reader.TokenType == JsonTokenType.PropertyName && reader.ValueTextEquals("accepted"u8))
            {
                reader.Read();
                return reader.GetInt64();
            }
        }
        throw new InvalidOperationException("The answer has no accepted count.");
    }
}

public sealed class MemorySampler : IDisposable
{
    private readonly Timer _timer;
    private long _peak;

    public MemorySampler(int pid)
    {
        _timer = new Timer(_ => Interlocked.Exchange(ref _peak, Math.Max(Interlocked.Read(ref _peak), Machine.Rss(pid))), null, 0, 50);
    }

    public long PeakBytes => Interlocked.Read(ref _peak);
    public void Dispose() => _timer.Dispose();
}

public static class Machine
{
    public static long Rss(int pid) => StatusKb(pid, "VmRSS:") * 1024;
    public static long PeakRss(int pid) => StatusKb(pid, "VmHWM:") * 1024;

    private static long StatusKb(int pid, string field)
    {
        try
        {
            var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith(field, StringComparison.Ordinal));
            return line is null ? 0 : long.Parse(line[field.Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (IOException) { return 0; }
    }

    public static double MemoryGiB()
    {
        var line = File.ReadLines("/proc/meminfo").First(l => l.StartsWith("MemTotal:", StringComparison.Ordinal));
        return long.Parse(line["MemTotal:".Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) / 1048576.0;
    }

    /// <summary>
    /// The cores' time while a phase ran: what the server, the benchmark's PostgreSQL and this process used, how long their
    /// threads were runnable but waited for a core (the kernel's per-thread run-queue delay, <c>/proc/PID/task/TID/schedstat</c>),
    /// and the machine's idle share (<c>/proc/stat</c>). Each thread counts what it did between the two snapshots (a thread
    /// started meanwhile, all it did); a thread that ended meanwhile takes its part with it, so a figure can only be low.
    /// </summary>
    public sealed record CoreUse(double Seconds, (string Name, double Cpu, double Waited)[] Groups, double IdleShare)
    {
        /// <summary>Each group's threads with their times so far, and the machine's idle and total ticks.</summary>
        public sealed record Snap(DateTime At, (string Name, Dictionary<string, (double Cpu, double Waited)> Threads)[] Groups, long Idle, long Total);

        public static Snap Snapshot(params (string Name, IEnumerable<int> Pids)[] groups)
        {
            var (idle, total) = ProcStat();
            return new Snap(DateTime.UtcNow, groups.Select(g => (g.Name, Threads(g.Pids))).ToArray(), idle, total);
        }

        public static CoreUse Between(Snap a, Snap b) =>
            new((b.At - a.At).TotalSeconds,
                b.Groups.Select((g, i) =>
                {
                    double cpu = 0, waited = 0;
                    foreach (var (thread, now) in g.Threads)
                    {
                        var then = a.Groups[i].Threads.GetValueOrDefault(thread);
                        cpu += now.Cpu - then.Cpu;
                        waited += now.Waited - then.Waited;
                    }
                    return (g.Name, cpu, waited);
                }).ToArray(),
                b.Total == a.Total ? 0 : (double)(b.Idle - a.Idle) / (b.Total - a.Total));

        /// <summary>One line: each group's cores used and thread-seconds waited per second of the phase, and the idle share.</summary>
        public override string ToString() =>
            string.Join("; ", Groups.Select(g => $"{g.Name} used {g.Cpu / Seconds:0.00} cores, its threads waited {g.Waited / Seconds:0.00} s/s for one"))
            + $"; cores idle {IdleShare:P0} ({Seconds:0.0} s)";

        private static Dictionary<string, (double Cpu, double Waited)> Threads(IEnumerable<int> pids)
        {
            var threads = new Dictionary<string, (double, double)>();
            foreach (var pid in pids)
            {
                string[] tasks;
                try { tasks = Directory.GetDirectories($"/proc/{pid}/task"); }
                catch (IOException) { continue; }
                catch (UnauthorizedAccessException) { continue; }
                foreach (var task in tasks)
                {
                    try
                    {
                        var f = File.ReadAllText(Path.Combine(task, "schedstat")).Split(' ');
                        threads[task] = (long.Parse(f[0], System.Globalization.CultureInfo.InvariantCulture) / 1e9,
                            long.Parse(f[1], System.Globalization.CultureInfo.InvariantCulture) / 1e9);
                    }
                    catch (IOException) { }
                }
            }
            return threads;
        }

        private static (long Idle, long Total) ProcStat()
        {
            var f = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1)
                .Select(v => long.Parse(v, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
            return (f[3] + f[4], f.Take(8).Sum());
        }
    }

    /// <summary>A process and its children (a PostgreSQL cluster: the postmaster and its backends).</summary>
    public static IEnumerable<int> WithChildren(int pid)
    {
        yield return pid;
        foreach (var dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var child)) continue;
            string stat;
            try { stat = File.ReadAllText(Path.Combine(dir, "stat")); }
            catch (IOException) { continue; }
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            if (fields[1] == pid.ToString(System.Globalization.CultureInfo.InvariantCulture)) yield return child;
        }
    }

    public static string Cpu() =>
        File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown CPU";
}

public sealed class Args
{
    private readonly Dictionary<string, string?> _values = new();

    public static Args Parse(IEnumerable<string> args)
    {
        var a = new Args();
        var list = args.ToList();
        for (var i = 0; i < list.Count; i++)
        {
            if (!list[i].StartsWith("--", StringComparison.Ordinal)) throw new ArgumentException($"unexpected argument '{list[i]}'");
            var hasValue = i + 1 < list.Count && !list[i + 1].StartsWith("--", StringComparison.Ordinal);
            a._values[list[i][2..]] = hasValue ? list[++i] : null;
        }
        return a;
    }

    public long Long(string name, long fallback) =>
        _values.TryGetValue(name, out var v) && v is not null
            ? long.TryParse(v.Replace("_", ""), out var n) && n > 0 ? n : throw new ArgumentException($"--{name} must be a positive whole number (got '{v}')")
            : fallback;

    public bool Flag(string name) => _values.ContainsKey(name);

    public string? Text(string name) => _values.TryGetValue(name, out var v) ? v : null;
}
