using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace Rpt.Portal.Bench;

/// <summary>
/// Budgets and holds at scale (issue 22). Two measures, on fresh servers and databases:
/// 1. Ingestion with a hard budget on every key against ingestion with none: the same events (random ids, end users and
///    projects), the same keys, two servers side by side taking turns (A B B A, twice); the aim is within 10 %.
/// 2. A tenant with --events calls from --users end users and --projects projects, sent through --keys keys, with a hard
///    daily budget on every key, one for each end user and one per project: quota checks (each with an end user and a
///    project) and holds (placed, then released) one after another while other clients keep ingesting; the aim is p99 under
///    5 ms for each, with --running-jobs jobs (1,000) running under holds of their own meanwhile, each having made one call
///    (so every balance reads what each hold has left of its job's use). The budgets list and the report by end user are
///    timed too (they read one row per budget, and one window's rows). With --ledger-entries N, the tenant's current
///    period holds N consumption entries more before the calls are timed (518,000: a month of 5-second flushes).
/// </summary>
public static class BudgetsMode
{
    public static async Task<int> RunAsync(Args options)
    {
        var events = options.Long("events", 10_000_000);
        var compare = options.Long("compare-events", 2_000_000);
        var users = (int)options.Long("users", 100_000);
        var projects = (int)options.Long("projects", 1_000);
        var keyCount = (int)options.Long("keys", 8);
        var requests = (int)options.Long("requests", 5_000);
        var batch = (int)options.Long("batch", 1_000);
        var concurrency = (int)options.Long("concurrency", 8);
        var background = (double)options.Long("background-rate", 20_000);
        var running = (int)options.Long("running-jobs", 1_000);
        var ledgerEntries = options.Long("ledger-entries", 0);
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {Machine.MemoryGiB():0.#} GiB, {Machine.Cpu()}, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}");
        var ok = true;

        Console.WriteLine();
        Console.WriteLine($"== ingestion: {compare:N0} events (random ids, {users:N0} end users, {projects:N0} projects) through {keyCount} keys, {concurrency} clients, without and with a hard budget on every key");
        // Both servers run side by side and take turns, A B B A twice, each turn a quarter of its events: whatever the
        // machine does meanwhile (the other server's checkpoints and flushes, the page cache, a slower minute) falls on
        // both alike. One server after the other, the second ran with what the first left behind.
        await using var plain = await PortalServer.StartAsync(false);
        await using var budgeted = await PortalServer.StartAsync(false);
        var sides = new List<(string Name, HttpClient Admin, List<(HttpClient Client, string Id)> Keys, PriceSheet Prices)>();
        foreach (var (server, withBudgets) in new[] { (plain, false), (budgeted, true) })
        {
            var (admin, keys) = await TenantAsync(server, keyCount, concurrency);
            if (withBudgets)
                foreach (var (_, id) in keys)
                    await Created(admin.PostAsJsonAsync("/v1/budgets", new { scope = "api_key", api_key_id = id, credits = 1_000_000, window = "day", mode = "hard" }));
            sides.Add((withBudgets ? "with a budget on every key" : "without budgets", admin, keys, await Workload.LoadPricesAsync(admin)));
        }
        var turns = new[] { 0, 1, 1, 0, 0, 1, 1, 0 };
        var seconds = new double[2];
        var accepted = new long[2];
        var expectedMicro = new long[2];
        var perTurn = new List<double>[] { [], [] };
        for (var t = 0; t < turns.Length; t++)
        {
            var side = turns[t];
            var k = perTurn[side].Count; // this side's turn: a quarter of its events each, summing to compare
            var share = compare * (k + 1) / 4 - compare * k / 4;
            var (_, admin, keys, prices) = sides[side];
            var run = await Workload.IngestAsync(admin, share, batch, concurrency, prices, instances: keys.Select(k => k.Client).ToList(), users: users, projects: projects);
            seconds[side] += run.Elapsed.TotalSeconds;
            accepted[side] += run.Accepted;
            expectedMicro[side] += run.ExpectedMicroCredits;
            perTurn[side].Add(run.EventsPerSecond);
        }
        var rates = new double[2];
        for (var side = 0; side < 2; side++)
        {
            var check = await Workload.CheckChargesAsync(sides[side].Admin, expectedMicro[side]);
            rates[side] = accepted[side] / seconds[side];
            Console.WriteLine($"  {sides[side].Name,-28} {rates[side],10:N0} events/s over {accepted[side]:N0} events in 4 turns ({string.Join(", ", perTurn[side].Select(r => r.ToString("N0")))}); charged {(check.Exact ? "exact" : "MISMATCH")}");
            ok &= check.Exact && accepted[side] == compare;
            foreach (var (c, _) in sides[side].Keys) c.Dispose();
            sides[side].Admin.Dispose();
        }
        var ratio = rates[1] / rates[0];
        Console.WriteLine($"  with / without: {ratio:0.00} (aim: within 10 %)");
        ok &= ratio >= 0.9;

        Console.WriteLine();
        Console.WriteLine($"== quota checks and holds at {events:N0} events, {users:N0} end users, {projects:N0} projects, {keyCount} keys, {running:N0} jobs running under holds, while ingesting {background:N0} events/s");
        await using (var server = await PortalServer.StartAsync(options.Flag("keep")))
        {
            var (admin, keys) = await TenantAsync(server, keyCount, concurrency);
            var prices = await Workload.LoadPricesAsync(admin);
            var load = await Workload.IngestAsync(admin, events, batch, concurrency, prices, instances: keys.Select(k => k.Client).ToList(), users: users, projects: projects);
            Console.WriteLine($"  loaded: {load.Accepted:N0} events at {load.EventsPerSecond:N0} events/s");
            if (ledgerEntries > 0)
            {
                var seeding = Stopwatch.StartNew();
                await SeedLedgerEntriesAsync(server, "bench", ledgerEntries);
                Console.WriteLine($"  ledger: {ledgerEntries:N0} consumption entries written into the current period in {seeding.Elapsed.TotalSeconds:0.0} s (a month of 5-second flushes; see --ledger-entries)");
            }
            var clock = Stopwatch.StartNew();
            var placing = DateTime.UtcNow;
            foreach (var (_, id) in keys)
                await Created(admin.PostAsJsonAsync("/v1/budgets", new { scope = "api_key", api_key_id = id, credits = 10_000_000, window = "day" }));
            await Created(admin.PostAsJsonAsync("/v1/budgets", new { scope = "user", user_id = "*", credits = 50, window = "day" }));
            for (var p = 0; p < projects; p++)
                await Created(admin.PostAsJsonAsync("/v1/budgets", new { scope = "project", project = $"p_{p}", credits = 1_000_000, window = "period" }));
            Console.WriteLine($"  budgets: {keys.Count + 1 + projects:N0} created in {clock.Elapsed.TotalSeconds:0.0} s");
            // Jobs running meanwhile, each under a hold of its own: every balance read and quota check counts what they still hold.
            clock.Restart();
            for (var j = 0; j < running; j++)
            {
                using var r = await keys[0].Client.PostAsJsonAsync("/v1/credits/reservations", new { id = $"running-{j}", credits = 1, job_id = $"running-job-{j}", expires_in_seconds = 86_400 });
                if ((int)r.StatusCode != 201) throw new InvalidOperationException($"reservation: {(int)r.StatusCode} {await r.Content.ReadAsStringAsync()}");
            }
            // Each running job has made a call already, so its hold is partly drawn and the balance finds its job's row.
            var model = prices.Models[0];
            for (var first = 0; first < running; first += 1_000)
            {
                var calls = Enumerable.Range(first, Math.Min(1_000, running - first)).Select(j => new
                {
                    id = Guid.NewGuid().ToString("D"), occurred_at = DateTimeOffset.UtcNow, provider = model.Provider, model = model.Model,
                    input_tokens = 1_000, output_tokens = 200, job_id = $"running-job-{j}", user_id = $"u_{j % users}", project = $"p_{j % projects}",
                    status = "succeeded",
                });
                using var r = await keys[0].Client.PostAsJsonAsync("/v1/usage/events", new { events = calls });
                var answer = await r.Content.ReadAsStringAsync();
                if ((int)r.StatusCode != 200 || JsonNode.Parse(answer)!["rejected"]!.GetValue<int>() != 0)
                    throw new InvalidOperationException($"/v1/usage/events: {(int)r.StatusCode} {answer}");
            }
            Console.WriteLine($"  running jobs: {running:N0}, each under a hold and with one call made, placed in {clock.Elapsed.TotalSeconds:0.0} s");

            if (server.OnPostgres)
            {
                // PostgreSQL plans the quota check and holds from its statistics of the holds and budgets, which autovacuum
                // takes within a minute of a bulk change (the tables' own thresholds, PostgresDbContext). The calls are timed
                // in that steady state; the minute before it is slower (docs/PERFORMANCE.md).
                var analyzed = await BenchPostgres.WaitForAnalyzeAsync(server.ConnectionString, ["credit_reservations", "budgets"], placing, TimeSpan.FromMinutes(3));
                Console.WriteLine(analyzed is { } after
                    ? $"  statistics: autovacuum analyzed the holds and budgets {after.TotalSeconds:0} s after the first was placed"
                    : "  statistics: autovacuum had not analyzed the holds and budgets 3 minutes after they were placed; timing anyway");
            }
            var (runner, _) = keys[^1];
            // A quota check with a random end user and project; whether it was allowed.
            bool Check(Random random)
            {
                using var r = Post(runner, "/v1/quota/check", new { estimated_credits = 1, user_id = $"u_{random.Next(users)}", project = $"p_{random.Next(projects)}" });
                r.EnsureSuccessStatusCode();
                return JsonNode.Parse(r.Content.ReadAsStream())!["allowed"]!.GetValue<bool>();
            }
            // Holds for a project (one of its budgets) placed and released one after another, after 100 untimed: each call timed.
            (Latency Latency, int Yes, int Calls) Holds(Random random, int count)
            {
                for (var i = 0; i < 100; i++) HoldAndRelease(runner, $"p_{random.Next(projects)}", null);
                var ms = new List<double>(2 * count);
                var yes = 0;
                for (var i = 0; i < count; i++)
                    if (HoldAndRelease(runner, $"p_{random.Next(projects)}", ms)) yes++;
                return (Latency.Of(ms), yes, ms.Count);
            }

            // The same calls with nothing else running first: what the product itself costs, apart from sharing the machine.
            // The measured calls run on a thread of their own with synchronous HTTP, as a product's own process would make them:
            // the benchmark's ingestion clients, which share this process, cannot queue ahead of them in its thread pool.
            var idleRandom = new Random(7);
            // Where the cores went while each phase was timed: the server, the database (PostgreSQL), this process.
            (string, IEnumerable<int>)[] Groups() => BenchPostgres.PostmasterPid is { } pm && server.OnPostgres
                ? [("server", [server.Pid]), ("PostgreSQL", Machine.WithChildren(pm).ToList()), ("this benchmark", [Environment.ProcessId])]
                : [("server", [server.Pid]), ("this benchmark", [Environment.ProcessId])];
            // A phase timed on a thread of its own, with where the cores went meanwhile.
            async Task<(TResult Result, Machine.CoreUse Cores)> Timed<TResult>(Func<TResult> work)
            {
                var before = Machine.CoreUse.Snapshot(Groups());
                var result = await OnOwnThread(work);
                return (result, Machine.CoreUse.Between(before, Machine.CoreUse.Snapshot(Groups())));
            }
            var ((idleQuota, idleHolds), idleCores) = await Timed(() => (Time(1_000, _ => Check(idleRandom)), Holds(idleRandom, 400)));
            Console.WriteLine($"  with nothing else running: quota check p50 {idleQuota.Latency.P50:0.00} ms, p99 {idleQuota.Latency.P99:0.00} ms (1,000); holds placed and released p50 {idleHolds.Latency.P50:0.00} ms, p99 {idleHolds.Latency.P99:0.00} ms ({idleHolds.Calls:N0} calls)");
            Console.WriteLine($"    cores meanwhile: {idleCores}");

            using var stop = new CancellationTokenSource();
            var ingesting = Workload.IngestAsync(admin, 100_000_000, batch, 2, prices, idPrefix: "bg_", stop: stop.Token,
                instances: keys.Take(2).Select(k => k.Client).ToList(), users: users, projects: projects, eventsPerSecond: background);
            await Task.Delay(2_000);
            var random = new Random(42);
            var scraped = await ServerMetrics.ScrapeAsync(server.BaseAddress);
            using var sampling = new CancellationTokenSource();
            var sampler = ServerMetrics.SampleAsync(server.BaseAddress, TimeSpan.FromMilliseconds(500), sampling.Token);
            var (clientPaused, clientCollections) = (GC.GetTotalPauseDuration(), GC.CollectionCount(0));
            var (quota, quotaCores) = await Timed(() => Time(requests, _ => Check(random)));
            var quotaServer = ServerMetrics.Between(scraped, scraped = await ServerMetrics.ScrapeAsync(server.BaseAddress), "/v1/quota/check");
            var (holds, holdCores) = await Timed(() => Holds(random, requests / 2));
            var holdServer = ServerMetrics.Between(scraped, await ServerMetrics.ScrapeAsync(server.BaseAddress), "/v1/credits/reservations");
            await sampling.CancelAsync();
            var pool = await sampler;
            (clientPaused, clientCollections) = (GC.GetTotalPauseDuration() - clientPaused, GC.CollectionCount(0) - clientCollections);
            var list = await TimeAsync(50, async _ => { (await admin.GetAsync("/v1/budgets")).EnsureSuccessStatusCode(); return true; });
            var report = await TimeAsync(50, async _ => { (await admin.GetAsync("/v1/usage/groups?group_by=user&limit=100")).EnsureSuccessStatusCode(); return true; });
            await stop.CancelAsync();
            var ingested = await ingesting;
            Console.WriteLine($"  meanwhile ingested: {ingested.Accepted:N0} events at {ingested.EventsPerSecond:N0} events/s from 2 clients (paced at {background:N0}; batch p50 {ingested.Latency.P50:0.0} ms, p99 {ingested.Latency.P99:0.0} ms)");
            Console.WriteLine($"  quota check (key + project + end user budgets): p50 {quota.Latency.P50:0.00} ms, p99 {quota.Latency.P99:0.00} ms, max {quota.Latency.Max:0.0} ms over {requests:N0}; allowed {quota.Yes:N0}, refused by a budget {requests - quota.Yes:N0}");
            Console.WriteLine($"    {quotaServer}");
            Console.WriteLine($"    cores meanwhile: {quotaCores}");
            Console.WriteLine($"  holds placed (project budget checked) and released: p50 {holds.Latency.P50:0.00} ms, p99 {holds.Latency.P99:0.00} ms, max {holds.Latency.Max:0.0} ms over {holds.Calls:N0} calls; held {holds.Yes:N0} of {requests / 2:N0}");
            Console.WriteLine($"    {holdServer} (placed and released)");
            Console.WriteLine($"    cores meanwhile: {holdCores}");
            Console.WriteLine($"  server thread pool while the calls above were timed (scraped every 500 ms, {pool.Scrapes:N0} scrapes): at most {pool.MaxQueued:N0} work items queued for a thread, at most {pool.MaxThreads:N0} threads");
            // The benchmark's own collections pause its measured client and its ingestion clients alike (both timed here).
            Console.WriteLine($"  this benchmark's process meanwhile (its clients): GC paused {clientPaused.TotalMilliseconds:N0} ms in all, {clientCollections:N0} collections");
            Console.WriteLine($"  GET /v1/budgets ({keys.Count + 1 + projects:N0} budgets, each with its use): p50 {list.Latency.P50:0.0} ms, p99 {list.Latency.P99:0.0} ms");
            Console.WriteLine($"  GET /v1/usage/groups?group_by=user (top 100 of {users:N0}): p50 {report.Latency.P50:0.0} ms, p99 {report.Latency.P99:0.0} ms");
            Console.WriteLine($"  server peak memory (VmHWM): {Machine.PeakRss(server.Pid) / 1048576.0:N0} MiB; database {server.DatabaseBytes() / 1048576.0:N0} MiB on disk");
            ok &= quota.Latency.P99 < 5 && holds.Latency.P99 < 5;
            foreach (var (c, _) in keys) c.Dispose();
            admin.Dispose();
        }
        Console.WriteLine(ok ? "result: PASS" : "result: FAIL");
        return ok ? 0 : 1;
    }

    /// <summary>
    /// A month of flushes (<c>--ledger-entries</c>): the flusher appends a consumption entry per tenant every 5 s while usage
    /// comes in, about 518,000 in a 30-day period, and every balance read reads that period. Appending them through the
    /// flusher would take the month, so they are written straight into the server's database: consumption entries of the
    /// tenant's current period, 1 µcr each, numbered far above the chain's head so that the flusher goes on after them (the
    /// chain they make is not valid; nothing here verifies it). Where the period's sums exist (ledger_period_sums), they are
    /// kept in step, as the appender keeps them.
    /// </summary>
    private static async Task SeedLedgerEntriesAsync(PortalServer server, string tenant, long count)
    {
        var pg = server.OnPostgres;
        await using System.Data.Common.DbConnection c = pg
            ? new Npgsql.NpgsqlConnection(server.ConnectionString + ";Pooling=false")
            : new Microsoft.Data.Sqlite.SqliteConnection(server.ConnectionString + ";Pooling=False;Default Timeout=60");
        await c.OpenAsync();
        async Task<object?> Scalar(string sql)
        {
            await using var cmd = c.CreateCommand();
            cmd.CommandText = sql;
            cmd.CommandTimeout = 600;
            return await cmd.ExecuteScalarAsync();
        }
        var period = Convert.ToString(await Scalar($"SELECT MAX(period_start) FROM usage_totals WHERE tenant_id = '{tenant}'"), System.Globalization.CultureInfo.InvariantCulture)!;
        var day = DateOnly.FromDateTime(DateTime.Parse(period, System.Globalization.CultureInfo.InvariantCulture)).ToString("yyyy-MM-dd");
        var from = Convert.ToInt64(await Scalar($"SELECT COALESCE(MAX(seq), 0) FROM ledger_entries WHERE tenant_id = '{tenant}'")) + 1_000_000;
        var numbers = pg ? $"generate_series(1, {count}) AS n(i)" : $"n";
        var series = pg ? "" : $"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {count}) ";
        var date = pg ? $"DATE '{day}'" : $"'{day}'";
        await using var tx = await c.BeginTransactionAsync();
        await using (var insert = c.CreateCommand())
        {
            insert.Transaction = tx;
            insert.CommandTimeout = 600;
            insert.CommandText = $"""
                {series}INSERT INTO ledger_entries (tenant_id, seq, kind, source, amount_micro_credits, period_start, idempotency_key, description, created_at, prev_hash, hash)
                SELECT '{tenant}', {from} + i, 'consumption', 'usage', 1, {date}, 'bench-seed:' || i, 'seeded by the benchmark', 0, '', ''
                FROM {numbers}
                """;
            await insert.ExecuteNonQueryAsync();
        }
        var sums = pg ? "SELECT to_regclass('ledger_period_sums') IS NOT NULL" : "SELECT COUNT(*) > 0 FROM sqlite_master WHERE name = 'ledger_period_sums'";
        await using (var has = c.CreateCommand())
        {
            has.Transaction = tx;
            has.CommandText = sums;
            if (Convert.ToBoolean(await has.ExecuteScalarAsync()))
            {
                await using var keep = c.CreateCommand();
                keep.Transaction = tx;
                keep.CommandText = $"""
                    INSERT INTO ledger_period_sums (tenant_id, period_start, kind, micro_credits, entries) VALUES ('{tenant}', {date}, 'consumption', {count}, {count})
                    ON CONFLICT (tenant_id, period_start, kind) DO UPDATE
                    SET micro_credits = ledger_period_sums.micro_credits + excluded.micro_credits, entries = ledger_period_sums.entries + excluded.entries
                    """;
                await keep.ExecuteNonQueryAsync();
            }
        }
        await tx.CommitAsync();
        if (pg) await Scalar("ANALYZE ledger_entries");
    }

    private static async Task Created(Task<HttpResponseMessage> call)
    {
        using var r = await call;
        if ((int)r.StatusCode != 201) throw new InvalidOperationException($"POST /v1/budgets: {(int)r.StatusCode} {await r.Content.ReadAsStringAsync()}");
    }

    /// <summary>The tenant "bench" (enterprise) with an admin client and <paramref name="count"/> ingesting keys.</summary>
    private static async Task<(HttpClient Admin, List<(HttpClient Client, string Id)> Keys)> TenantAsync(PortalServer server, int count, int concurrency)
    {
        await server.CreateTenantAsync("bench", "enterprise");
        var admin = Reads.Client(server, server.CreateKey("bench", "read,ingest,admin", "admin").Secret, concurrency);
        var keys = new List<(HttpClient, string)>();
        for (var i = 0; i < count; i++)
        {
            var (secret, id) = server.CreateKey("bench", "read,ingest", $"worker-{i}");
            keys.Add((Reads.Client(server, secret, concurrency), id));
        }
        return (admin, keys);
    }

    /// <summary>Places a hold of one credit for a project and releases it, each call's time added to <paramref name="ms"/>; whether it was held.</summary>
    private static bool HoldAndRelease(HttpClient client, string project, List<double>? ms)
    {
        var id = $"hold-{Guid.NewGuid():N}";
        var started = Stopwatch.GetTimestamp();
        using var r = Post(client, "/v1/credits/reservations", new { id, credits = 1, project });
        var body = new StreamReader(r.Content.ReadAsStream()).ReadToEnd();
        ms?.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        if ((int)r.StatusCode == 402) return false;
        if ((int)r.StatusCode != 201) throw new InvalidOperationException($"reservation: {(int)r.StatusCode} {body}");
        started = Stopwatch.GetTimestamp();
        using var released = client.Send(new HttpRequestMessage(HttpMethod.Post, $"/v1/credits/reservations/{id}/release"));
        released.EnsureSuccessStatusCode();
        new StreamReader(released.Content.ReadAsStream()).ReadToEnd();
        ms?.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        return true;
    }

    /// <summary>A synchronous JSON POST (the measured calls make no use of the thread pool).</summary>
    private static HttpResponseMessage Post(HttpClient client, string path, object body) =>
        client.Send(new HttpRequestMessage(HttpMethod.Post, path)
        {
            Content = new StringContent(System.Text.Json.JsonSerializer.Serialize(body), System.Text.Encoding.UTF8, "application/json"),
        });

    private static Task<T> OnOwnThread<T>(Func<T> work)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        new Thread(() =>
        {
            try { done.SetResult(work()); }
            catch (Exception e) { done.SetException(e); }
        }) { IsBackground = true, Name = "measured client" }.Start();
        return done.Task;
    }

    /// <summary>Times <paramref name="count"/> sequential synchronous calls after 200 unmeasured ones.</summary>
    private static (Latency Latency, int Yes) Time(int count, Func<int, bool> call)
    {
        for (var i = 0; i < Math.Min(200, count); i++) call(-1 - i);
        var ms = new List<double>(count);
        var yes = 0;
        for (var i = 0; i < count; i++)
        {
            var started = Stopwatch.GetTimestamp();
            if (call(i)) yes++;
            ms.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }
        return (Latency.Of(ms), yes);
    }

    /// <summary>Times <paramref name="count"/> sequential calls after 200 unmeasured ones.</summary>
    private static async Task<(Latency Latency, int Yes)> TimeAsync(int count, Func<int, Task<bool>> call)
    {
        for (var i = 0; i < Math.Min(200, count); i++) await call(-1 - i);
        var ms = new List<double>(count);
        var yes = 0;
        for (var i = 0; i < count; i++)
        {
            var started = Stopwatch.GetTimestamp();
            if (await call(i)) yes++;
            var elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            ms.Add(elapsed);
        }
        return (Latency.Of(ms), yes);
    }
}
