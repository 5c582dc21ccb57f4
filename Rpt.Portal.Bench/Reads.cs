using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;

namespace Rpt.Portal.Bench;

/// <summary>
/// Reads that must not grow with the data: one tenant with 10,000,000 events in its current period (29 days of
/// it), one with 2,000, and one with a year of older periods; every /v1 read a customer makes and the
/// dashboard's data load timed for the large tenant against the small one; then dashboards open while
/// ingestion runs at full speed.
/// </summary>
public static class Reads
{
    public sealed record ReadResult(string Name, Latency Small, Latency Large)
    {
        public bool Pass => Large.P99 < 50 && Large.P99 <= 3 * Math.Max(Small.P99, 1.0);
    }

    public static HttpClient Client(PortalServer server, string key, int connections)
    {
        var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = connections, UseCookies = false })
        {
            BaseAddress = server.BaseAddress,
            Timeout = TimeSpan.FromMinutes(5),
        };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return http;
    }

    /// <summary>
    /// Times a read of the small and of the large tenant <paramref name="requests"/> times each, alternating, after a
    /// warm-up: background work (the flusher, checkpoints) then falls on both alike, not on whichever ran second.
    /// </summary>
    public static async Task<(Latency Small, Latency Large)> TimePairAsync(HttpClient small, string smallPath, HttpClient large, string largePath, int requests)
    {
        for (var i = 0; i < 20; i++)
        {
            (await small.GetAsync(smallPath)).EnsureSuccessStatusCode();
            (await large.GetAsync(largePath)).EnsureSuccessStatusCode();
        }
        var a = new List<double>(requests);
        var b = new List<double>(requests);
        for (var i = 0; i < requests; i++)
        {
            a.Add(await OnceAsync(small, smallPath));
            b.Add(await OnceAsync(large, largePath));
        }
        return (Latency.Of(a), Latency.Of(b));
    }

    private static async Task<double> OnceAsync(HttpClient http, string path)
    {
        var started = Stopwatch.GetTimestamp();
        using var response = await http.GetAsync(path);
        await response.Content.ReadAsByteArrayAsync();
        if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"{path}: {(int)response.StatusCode}");
        return Stopwatch.GetElapsedTime(started).TotalMilliseconds;
    }

    /// <summary>
    /// The dashboard's read itself, not its shared copy: before each request one event makes the tenant's snapshot
    /// stale and the pause lets the snapshot's minimum interval pass, so every timed answer is a fresh read.
    /// </summary>
    public static async Task<Latency> TimeDashboardReadAsync(HttpClient http, string tenant, int requests)
    {
        var ms = new List<double>(requests);
        for (var i = -5; i < requests; i++)
        {
            var body = new StringContent($$"""{"events":[{"id":"dash_{{tenant}}_{{i + 5}}","occurred_at":"{{DateTimeOffset.UtcNow:O}}","model":"gpt-4o-mini","input_tokens":10,"output_tokens":1}]}""",
                System.Text.Encoding.UTF8, "application/json");
            (await http.PostAsync("/v1/usage/events", body)).EnsureSuccessStatusCode();
            await Task.Delay(700);
            var started = Stopwatch.GetTimestamp();
            var answeredAt = DateTimeOffset.UtcNow;
            using var response = await http.GetAsync("/v1/usage/daily");
            var json = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
            var elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            if (DateTimeOffset.Parse((string)json["read_at"]!, System.Globalization.CultureInfo.InvariantCulture) < answeredAt.AddMilliseconds(-50))
                throw new InvalidOperationException("the dashboard answer was not a fresh read");
            if (i >= 0) ms.Add(elapsed);
        }
        return Latency.Of(ms);
    }

    /// <summary>
    /// Dashboards open on the large tenant while ingestion runs: each refreshes its data once a second, as an open
    /// dashboard does without news (a live page also refreshes on each change, at most once a second). Returns, for
    /// every acknowledged batch and every dashboard, how long after the acknowledgement the dashboard first showed
    /// it, in ms.
    /// </summary>
    public static async Task<List<double>> DashboardsAsync(PortalServer server, string key, int dashboards, Func<(long Micro, long At)[]> acks, CancellationToken stop)
    {
        using var http = Client(server, key, dashboards);
        var views = new List<(long At, long Seen)>[dashboards];
        var tasks = Enumerable.Range(0, dashboards).Select(d => Task.Run(async () =>
        {
            var mine = views[d] = [];
            await Task.Delay(d * 1000 / dashboards, CancellationToken.None); // opened one after another over the first second
            while (!stop.IsCancellationRequested)
            {
                var json = JsonNode.Parse(await http.GetStringAsync("/v1/usage/daily"))!;
                mine.Add((Stopwatch.GetTimestamp(), (long)json["consumed_micro_credits"]!));
                try { await Task.Delay(1000, stop); } catch (OperationCanceledException) { }
            }
        })).ToArray();
        await Task.WhenAll(tasks);
        var lags = new List<double>();
        foreach (var (micro, at) in acks())
        {
            foreach (var view in views)
            {
                var shown = view.FindIndex(v => v.At >= at && v.Seen >= micro);
                if (shown >= 0) lags.Add(Stopwatch.GetElapsedTime(at, view[shown].At).TotalMilliseconds);
            }
        }
        return lags;
    }
}

/// <summary>The CSV export of every call of a tenant, as a signed-in owner downloads it from the Usage page.</summary>
public static class CsvExport
{
    public sealed record Result(long Rows, long Bytes, TimeSpan Elapsed, long ServerPeakBytes, long ServerBaselineBytes);

    public static async Task<Result> RunAsync(PortalServer server, string tenant, string expectedFrom)
    {
        var email = $"owner@{tenant}.bench";
        var password = server.CreateUser(tenant, email);
        var cookies = new System.Net.CookieContainer();
        using var http = new HttpClient(new HttpClientHandler { CookieContainer = cookies, AllowAutoRedirect = false })
        {
            BaseAddress = server.BaseAddress,
            Timeout = TimeSpan.FromMinutes(30),
        };
        // Sign in through the real form: its hidden fields (antiforgery token, form name) and the credentials.
        var form = await http.GetStringAsync("/Account/Login");
        var fields = System.Text.RegularExpressions.Regex.Matches(form, "<input[^>]*type=\"hidden\"[^>]*name=\"([^\"]+)\"[^>]*value=\"([^\"]*)\"")
            .ToDictionary(m => System.Net.WebUtility.HtmlDecode(m.Groups[1].Value), m => System.Net.WebUtility.HtmlDecode(m.Groups[2].Value));
        fields["Input.Email"] = email;
        fields["Input.Password"] = password;
        var signedIn = await http.PostAsync("/Account/Login", new FormUrlEncodedContent(fields));
        if ((int)signedIn.StatusCode != 302) throw new InvalidOperationException($"sign-in answered {(int)signedIn.StatusCode}");

        using var sampler = new MemorySampler(server.Pid);
        await Task.Delay(200);
        var baseline = Machine.Rss(server.Pid);
        var clock = Stopwatch.StartNew();
        using var response = await http.GetAsync($"/portal/usage.csv?from={expectedFrom}", HttpCompletionOption.ResponseHeadersRead);
        if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"CSV export answered {(int)response.StatusCode}");
        await using var stream = await response.Content.ReadAsStreamAsync();
        var buffer = new byte[1 << 16];
        long rows = 0, bytes = 0;
        int n;
        while ((n = await stream.ReadAsync(buffer)) > 0)
        {
            bytes += n;
            rows += buffer.AsSpan(0, n).Count((byte)'\n');
        }
        return new Result(rows - 1, bytes, clock.Elapsed, sampler.PeakBytes, baseline);
    }
}
