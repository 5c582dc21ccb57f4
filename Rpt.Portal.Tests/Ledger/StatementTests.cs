using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Rpt.Portal.Ledger;

namespace Rpt.Portal.Tests.Ledger;

/// <summary>
/// A customer downloads a period's statement and the records of its consumption entries, and recomputes the chain, the
/// balance and every digest with tools/verify-statement.py, which shares no code with the product.
/// </summary>
[Trait("Kind", "Http")]
public sealed class StatementTests : IAsyncLifetime
{
    private readonly ApiFactory _app = new();
    private readonly string _dir = Directory.CreateTempSubdirectory("rpt-statement-").FullName;
    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        await _app.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private static object Event(string id, DateTimeOffset at, string model, long input, long output, string job) =>
        new { id, occurred_at = at, model, input_tokens = input, output_tokens = output, job_id = job, feature = "summary_😀" };

    [Fact]
    public async Task TheVerifier_RecomputesChainBalanceAndDigests_AndFailsOnOneChangedByte()
    {
        var (tenant, client) = await _app.TenantAsync("acme");
        var now = _app.Time.GetUtcNow();
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsJsonAsync("/v1/usage/events", new
        {
            events = new[] { Event("call_😀_1", now, "gpt-4o-mini", 3200, 740, "job_é"), Event("call_2", now, "claude-sonnet-4", 12_000, 900, "job_é") },
        })).StatusCode);
        await _app.FlushAsync();
        await _app.Get<GrantCredits>().ExecuteAsync(tenant, EntrySource.TopUp, 5_000, "stripe:evt_1", "Top-up «5k»");
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsJsonAsync("/v1/usage/events", new
        {
            events = Enumerable.Range(0, 50).Select(i => Event($"bulk_{i}", now, "gemini-2.5-pro", 1000 + i, 100, $"job_{i % 3}")).ToArray(),
        })).StatusCode);
        await _app.FlushAsync();
        // Not yet flushed: part of the balance, not of the ledger.
        await client.PostAsJsonAsync("/v1/usage/events", new { events = new[] { Event("late", now, "gpt-4o-mini", 10, 10, "job_late") } });

        var statementText = await client.GetStringAsync($"/v1/ledger/statement?period={now:yyyy-MM-dd}");
        var statement = JsonNode.Parse(statementText)!;
        var entries = statement["entries"]!.AsArray();
        Assert.Equal(["allocation", "consumption", "allocation", "consumption"], entries.Select(e => (string?)e!["kind"]));
        Assert.Equal(0, (long)statement["opening"]!["seq"]!);
        Assert.Equal((string?)entries[^1]!["hash"], (string?)statement["closing"]!["hash"]);
        Assert.Equal((string?)statement["closing"]!["hash"], (string?)statement["chain_head"]!["hash"]);
        var balance = statement["balance"]!;
        Assert.Equal(30_000_000_000, (long)balance["allocated_micro_credits"]!);
        Assert.True((long)balance["unflushed_micro_credits"]! > 0);
        Assert.False((bool)statement["final"]!);
        var statementFile = Path.Combine(_dir, "statement.json");
        await File.WriteAllTextAsync(statementFile, statementText);

        var records = new List<string>();
        foreach (var e in entries.Where(e => (string?)e!["kind"] == "consumption"))
        {
            var response = await client.GetAsync($"/v1/ledger/statement/records?entry={(long)e!["seq"]!}");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.StartsWith("text/plain", response.Content.Headers.ContentType!.ToString());
            var file = Path.Combine(_dir, $"records-{(long)e["seq"]!}.txt");
            await File.WriteAllBytesAsync(file, await response.Content.ReadAsByteArrayAsync());
            records.Add(file);
        }

        var (code, output) = await StatementVerifier.RunAsync([statementFile, .. records]);
        Assert.True(code == 0, output);
        Assert.Contains("VERIFIED: the chain, the balance and the records agree", output);
        Assert.Contains("50 records = the entry's event_count 50", output);

        // One byte of a record: an input token count of the second batch, 1000 → 2000.
        var changed = File.ReadAllBytes(records[1]);
        var at = Encoding.UTF8.GetString(changed).IndexOf("4:1000;", StringComparison.Ordinal);
        Assert.True(at > 0);
        changed[Encoding.UTF8.GetByteCount(Encoding.UTF8.GetString(changed)[..at]) + 2] = (byte)'2';
        await File.WriteAllBytesAsync(records[1], changed);
        (code, output) = await StatementVerifier.RunAsync([statementFile, .. records]);
        Assert.Equal(1, code);
        Assert.Contains("FAIL  the file's SHA-256 is the entry's events_digest", output);

        // One byte of the statement: the first consumption entry's amount, one micro-credit more.
        var tampered = JsonNode.Parse(statementText)!;
        var first = tampered["entries"]!.AsArray()[1]!;
        first["amount_micro_credits"] = (long)first["amount_micro_credits"]! + 1;
        await File.WriteAllTextAsync(statementFile, tampered.ToJsonString());
        (code, output) = await StatementVerifier.RunAsync([statementFile]);
        Assert.Equal(1, code);
        Assert.Contains($"seq {(long)first["seq"]!}: hash", output);
        Assert.Contains("does not match its fields", output);
    }

    [Fact]
    public async Task ParametersAreChecked_AndNoTenantSeesAnothersEntries()
    {
        var (_, acme) = await _app.TenantAsync("acme");
        var (_, other) = await _app.TenantAsync("other");
        var now = _app.Time.GetUtcNow();
        await acme.PostAsJsonAsync("/v1/usage/events", new { events = new[] { Event("a", now, "gpt-4o-mini", 100, 10, "j") } });
        await _app.FlushAsync();

        async Task Problem(HttpClient client, string url, HttpStatusCode status, string says)
        {
            var response = await client.GetAsync(url);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == status, $"{url}: {(int)response.StatusCode} {body}");
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            Assert.Contains(says, body);
        }
        await Problem(acme, "/v1/ledger/statement", HttpStatusCode.BadRequest, "\"period\":[\"is required");
        await Problem(acme, "/v1/ledger/statement?period=2026-13-01", HttpStatusCode.BadRequest, "is not a day written yyyy-MM-dd");
        await Problem(acme, "/v1/ledger/statement?period=" + new string('9', 5000), HttpStatusCode.BadRequest, "is not a day written yyyy-MM-dd");
        await Problem(acme, $"/v1/ledger/statement?period={now.AddMonths(2):yyyy-MM-dd}", HttpStatusCode.BadRequest, "is after the current billing period");
        await Problem(acme, "/v1/ledger/statement/records", HttpStatusCode.BadRequest, "\"entry\":[\"is required");
        await Problem(acme, "/v1/ledger/statement/records?entry=-1", HttpStatusCode.BadRequest, "is not the seq of a ledger entry");
        await Problem(acme, "/v1/ledger/statement/records?entry=99999999999999999999", HttpStatusCode.BadRequest, "is not the seq of a ledger entry");
        await Problem(acme, "/v1/ledger/statement/records?entry=1", HttpStatusCode.BadRequest, "entry 1 is an allocation");
        await Problem(acme, "/v1/ledger/statement/records?entry=7", HttpStatusCode.NotFound, "the ledger has no entry 7");
        // acme's entry 2 is its consumption; other's ledger has no entry 2.
        Assert.Equal(HttpStatusCode.OK, (await acme.GetAsync("/v1/ledger/statement/records?entry=2")).StatusCode);
        await Problem(other, "/v1/ledger/statement/records?entry=2", HttpStatusCode.NotFound, "the ledger has no entry 2");
        var theirs = JsonNode.Parse(await other.GetStringAsync($"/v1/ledger/statement?period={now:yyyy-MM-dd}"))!;
        Assert.Equal("other", (string?)theirs["tenant_id"]);
        Assert.Equal(["allocation"], theirs["entries"]!.AsArray().Select(e => (string?)e!["kind"]));

        // A period before the subscription: no entries, the chain point before everything.
        var before = JsonNode.Parse(await acme.GetStringAsync($"/v1/ledger/statement?period={now.AddMonths(-3):yyyy-MM-dd}"))!;
        Assert.Empty(before["entries"]!.AsArray());
        Assert.Equal(0, (long)before["closing"]!["seq"]!);
    }
}
