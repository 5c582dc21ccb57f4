using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;

namespace Rpt.Portal.Tests.Data;

/// <summary>
/// Two real portal processes on one PostgreSQL database take 64 holds at once, half each, on a plan that stops at its
/// allocation: together they never hold more than was available, and each refusal names what was left. Then 64 quota
/// checks at once through both: each counts those holds, or says it failed open.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Kind", "Postgres")]
public sealed class TwoProcessesReservationTests(PostgresCluster cluster)
{
    [Fact]
    public async Task SixtyFourHolds_ThroughTwoProcesses_NeverHoldMoreThanIsAvailable()
    {
        var connection = await cluster.CreateDatabaseAsync();
        var env = PortalProcess.Environment(new Dictionary<string, string?> { ["Rpt:Data:Provider"] = "Postgres", ["ConnectionStrings:Rpt"] = connection });
        var started = await Task.WhenAll(PortalProcess.StartAsync(env), PortalProcess.StartAsync(env));
        await using var a = started[0];
        await using var b = started[1];
        var key = PortalProcess.Field(await PortalProcess.RunCommandAsync(env, "tenants", "create", "--name", "Holds Co", "--id", "holds", "--plan", "starter"), "api_key");

        var random = new Random(64);
        var sizes = Enumerable.Range(0, 64).Select(_ => random.Next(50, 400)).ToArray();
        var answers = await Task.WhenAll(sizes.Select((credits, i) => Task.Run(async () =>
        {
            using var http = new HttpClient { BaseAddress = (i % 2 == 0 ? a : b).Address, Timeout = TimeSpan.FromSeconds(30) };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
            var answer = await http.PostAsJsonAsync("/v1/credits/reservations", new { id = $"h{i}", credits, job_id = $"job{i}", expires_in_seconds = 600 });
            return (answer.StatusCode, Body: JsonNode.Parse(await answer.Content.ReadAsStringAsync())!);
        })));

        Assert.All(answers, x => Assert.True(x.StatusCode is HttpStatusCode.Created or HttpStatusCode.PaymentRequired, $"{(int)x.StatusCode}: {x.Body}"));
        var held = sizes.Where((_, i) => answers[i].StatusCode == HttpStatusCode.Created).Sum();
        Assert.True(held <= 5_000, $"{held} credits held of the 5,000 available");
        Assert.Contains(answers, x => x.StatusCode == HttpStatusCode.PaymentRequired); // 64 holds of 50–400 cannot all fit
        foreach (var (_, body) in answers.Where(x => x.StatusCode == HttpStatusCode.PaymentRequired))
            Assert.True((long)body["available_credits"]! < 400, $"refused with {body["available_credits"]} available");
        using var reader = new HttpClient { BaseAddress = b.Address };
        reader.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        var credits = JsonNode.Parse(await reader.GetStringAsync("/v1/credits/balance"))!["credits"]!;
        Assert.Equal(((long)held, 5_000L - held), ((long)credits["reserved"]!, (long)credits["available"]!));

        // 64 jobs then ask at once, through both processes, whether they may start. Each answer counts the holds of both
        // processes (what is available fits, one credit more does not) or says that it failed open, the documented answer
        // of a ledger that did not answer within the check's limit (on a busy test machine, a few may).
        var available = 5_000L - held;
        var checks = await Task.WhenAll(Enumerable.Range(0, 64).Select(i => Task.Run(async () =>
        {
            using var http = new HttpClient { BaseAddress = (i % 2 == 0 ? a : b).Address, Timeout = TimeSpan.FromSeconds(30) };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
            var estimate = i / 2 % 2 == 0 ? available : available + 1;
            var answer = await http.PostAsJsonAsync("/v1/quota/check", new { estimated_credits = estimate });
            return (Fits: estimate == available, answer.StatusCode, Body: JsonNode.Parse(await answer.Content.ReadAsStringAsync())!);
        })));
        Assert.All(checks, c => Assert.True(c.StatusCode == HttpStatusCode.OK && ((bool)c.Body["fail_open"]! ? (bool)c.Body["allowed"]! : (bool)c.Body["allowed"]! == c.Fits),
            $"{(int)c.StatusCode}, estimate {(c.Fits ? "" : "one more than ")}the {available} available: {c.Body.ToJsonString()}"));
        var exact = checks.Where(c => !(bool)c.Body["fail_open"]!).ToList();
        Assert.Contains(exact, c => c.Fits);
        Assert.Contains(exact, c => !c.Fits);
        await File.WriteAllTextAsync(Browser.BrowserFixture.Artifact("two-processes-holds.txt"),
            $"64 holds of 50-400 credits through two processes on one PostgreSQL database, starter plan (5,000 credits): {answers.Count(x => x.StatusCode == HttpStatusCode.Created)} held ({held} credits), {answers.Count(x => x.StatusCode == HttpStatusCode.PaymentRequired)} refused with 402; balance reserved {credits["reserved"]}, available {credits["available"]}; then 64 quota checks at once: {exact.Count} exact, {64 - exact.Count} failed open\n");
    }
}
