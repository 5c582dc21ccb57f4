using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace Rpt.Portal.Tests.Metering;

/// <summary>
/// The real server as its own process, killed with SIGKILL at random moments while clients send events with
/// random ids; after every restart the clients resend whatever got no answer, as the API asks them to. In the
/// end every id sent is stored exactly once and charged exactly once: nothing lost, nothing doubled.
/// </summary>
[Trait("Kind", "Process")]
public class IngestCrashTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "rpt-crash-" + Guid.NewGuid().ToString("N")[..8]);
    private PortalProcess? _server;

    public IngestCrashTests()
    {
        Directory.CreateDirectory(_dir);
        _database = TestEngine.DatabaseSettings(_dir);
    }

    /// <summary>The database of the engine under test (test.sh runs this test on both).</summary>
    private readonly Dictionary<string, string?> _database;

    private Dictionary<string, string> Environment => PortalProcess.Environment(_database);

    [Fact]
    public async Task KilledAtRandomMomentsOfIngestion_LosesNothing_AndCountsNothingTwice()
    {
        var address = new Uri($"http://127.0.0.1:{PortalProcess.FreePort()}");
        _server = await PortalProcess.StartAsync(Environment, address);
        Key = PortalProcess.Field(await PortalProcess.RunCommandAsync(Environment, "tenants", "create", "--name", "Crash Co", "--id", "crash", "--plan", "enterprise"), "api_key");

        const int Rounds = 6, Workers = 4, BatchSize = 250;
        var sent = new System.Collections.Concurrent.ConcurrentDictionary<string, byte>();
        long acknowledgedAccepted = 0, acknowledgedDuplicates = 0;
        using var stop = new CancellationTokenSource();
        using var giveUp = new CancellationTokenSource(); // the resending ends at last, so that a server that never answers again fails the test instead of hanging the run
        var workers = Enumerable.Range(0, Workers).Select(w => Task.Run(async () =>
        {
            using var http = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(10) };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Key);
            while (!stop.IsCancellationRequested)
            {
                var ids = Enumerable.Range(0, BatchSize).Select(_ => Guid.NewGuid().ToString()).ToArray();
                foreach (var id in ids) sent[id] = 0;
                var body = new { events = ids.Select(id => new { id, occurred_at = DateTimeOffset.UtcNow, model = "gpt-4o-mini", input_tokens = 3200, output_tokens = 740 }) };
                // Resend the same batch until it is answered: a batch that got no answer may or may not have been stored.
                while (!giveUp.IsCancellationRequested)
                {
                    try
                    {
                        using var response = await http.PostAsJsonAsync("/v1/usage/events", body);
                        if (response.StatusCode == HttpStatusCode.OK)
                        {
                            var answer = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
                            Interlocked.Add(ref acknowledgedAccepted, (long)answer["accepted"]!);
                            Interlocked.Add(ref acknowledgedDuplicates, (long)answer["duplicates"]!);
                            break;
                        }
                    }
                    catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException) { }
                    await Task.Delay(100);
                }
            }
        })).ToArray();

        var random = new Random();
        var kills = new List<string>();
        for (var round = 0; round < Rounds; round++)
        {
            await Task.Delay(random.Next(300, 1_500));
            var before = sent.Count;
            await _server.DisposeAsync(); // SIGKILL: no shutdown, no flush, mid-commit or mid-answer
            kills.Add($"round {round + 1}: killed with {before:N0} ids sent");
            _server = await PortalProcess.StartAsync(Environment, address);
        }
        await Task.Delay(1_000);
        await stop.CancelAsync();
        giveUp.CancelAfter(TimeSpan.FromMinutes(2));
        await Task.WhenAll(workers);
        Assert.False(giveUp.IsCancellationRequested, "a batch was still unanswered 2 minutes after the last restart");

        // Every id sent was answered at last; the audit table holds each exactly once, and the balance charges each once.
        using var db = TestEngine.Open(_database);
        long Scalar(string sql) { using var c = db.CreateCommand(); c.CommandText = sql; return Convert.ToInt64(c.ExecuteScalar()); }
        var stored = Scalar("SELECT COUNT(*) FROM usage_events WHERE tenant_id = 'crash'");
        var distinct = Scalar("SELECT COUNT(DISTINCT event_id) FROM usage_events WHERE tenant_id = 'crash'");
        Assert.True(sent.Count > Rounds * BatchSize, $"only {sent.Count} ids were sent");
        Assert.Equal(sent.Count, distinct);
        Assert.Equal(distinct, stored);
        // Each id got exactly one final answer: accepted, or a duplicate of its own earlier attempt that was stored but not answered.
        Assert.Equal(sent.Count, acknowledgedAccepted + acknowledgedDuplicates);
        Assert.Equal(stored, acknowledgedAccepted + acknowledgedDuplicates);
        using var api = new HttpClient { BaseAddress = address };
        api.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Key);
        var balance = JsonNode.Parse(await api.GetStringAsync("/v1/credits/balance"))!;
        var consumed = (long)balance["ledger"]!["flushed_micro_credits"]! + (long)balance["ledger"]!["unflushed_micro_credits"]!;
        Assert.Equal(stored * 110_880L, consumed); // 3,200 in + 740 out of gpt-4o-mini = 110,880 µcr each
        await File.WriteAllTextAsync(Path.Combine(BrowserArtifacts(), $"crash-rounds{TestEngine.Suffix}.txt"),
            string.Join("\n", kills) + $"\nids sent {sent.Count:N0}; stored {stored:N0}; distinct {distinct:N0}; accepted answers {acknowledgedAccepted:N0}; duplicate answers {acknowledgedDuplicates:N0}; charged {consumed:N0} µcr\n");
    }

    private string Key { get; set; } = "";

    private static string BrowserArtifacts()
    {
        var dir = Path.Combine(Browser.BrowserFixture.RepositoryRoot(), "artifacts");
        Directory.CreateDirectory(dir);
        return dir;
    }

    public void Dispose()
    {
        try
        {
            _server?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        catch (InvalidOperationException) { }
        try { Directory.Delete(_dir, true); } catch (IOException) { }
        GC.SuppressFinalize(this);
    }
}
