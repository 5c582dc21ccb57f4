using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Rpt.Portal.Api;

namespace Rpt.Portal.Tests.Api;

/// <summary>
/// A hostile client in CI: thousands of generated requests over every /v1 endpoint (wrong types, overflowing and negative
/// numbers, megabyte strings, odd Unicode, invalid UTF-8, duplicate ids in a batch, wrong content types, oversized and
/// malformed bodies). No answer is a 5xx; every rejection is an RFC 7807 problem that names what was wrong; every
/// answer is what the OpenAPI document says; the good events of a batch are kept; and afterwards every total is exact.
/// The generator is seeded: a failure names its seed and the request, so it can be replayed.
/// </summary>
[Trait("Kind", "Http")]
public sealed class HostileInputTests : IAsyncLifetime
{
    public const int Requests = 2_000;

    private readonly ApiFactory _app = new(new Dictionary<string, string?>
    {
        ["Rpt:Api:RequestsPerSecond"] = "1000000", ["Rpt:Api:Burst"] = "1000000", ["Rpt:Webhooks:AllowPrivateNetworks"] = "true",
    });
    public Task InitializeAsync() => Task.CompletedTask;
    public async Task DisposeAsync() => await _app.DisposeAsync();

    private static readonly string[] HostileStrings =
    [
        "", " ", "-1", "0", "1e308", "NaN", "Infinity", "9223372036854775808", "-9223372036854775809", "99999999999999999999999",
        "0x10", "1.5", "true", "null", "[]", "{}", "%00", "\u0000", "\ud800", "\uffff", "‮evil", "😀😀😀", "e\u0301\u0301\u0301",
        "' OR 1=1 --", "../../etc/passwd", "<script>alert(1)</script>", "2026-02-30", "2026-13-01", "9999-12-31", "0001-01-01T00:00:00Z",
        "all", "current", "model", "feature", "day", new string('x', 100_000), string.Concat(Enumerable.Repeat("😀", 20_000)),
    ];

    private static readonly string[] Models = ["gpt-4o-mini", "gpt-4o", "claude-sonnet-4", "gemini-2.5-pro"];

    [Fact]
    public async Task TwoThousandHostileRequests_NoServerError_EveryRejectionNamesTheField_GoodItemsKept_TotalsExact()
    {
        var seed = Environment.GetEnvironmentVariable("RPT_HOSTILE_SEED") is { } s ? int.Parse(s) : 20261205;
        var random = new Random(seed);
        var contract = new OpenApiContract(await _app.CreateClient().GetStringAsync("/openapi/v1.json"));
        _app.Contract = contract;
        var (tenant, client) = await _app.TenantAsync("acme", "enterprise"); // unlimited: no limit cuts a good event off
        var admin = _app.ClientWithKey(await _app.Get<ApiKeyService>().CreateAsync(tenant, "admin", ApiScopes.Admin));
        var now = _app.Time.GetUtcNow();
        var failures = new List<string>();
        var accepted = new Dictionary<string, long>(); // event id → its tokens
        var sent = 0;

        async Task Send(HttpClient c, HttpMethod method, string url, HttpContent? content, string what, Func<JsonNode?, string?>? check = null)
        {
            sent++;
            using var request = new HttpRequestMessage(method, url) { Content = content };
            using var response = await c.SendAsync(request);
            var body = await response.Content.ReadAsStringAsync();
            var status = (int)response.StatusCode;
            var where = $"seed {seed}, request {sent} ({what}): {method} {Clip(url)} answered {status}";
            if (status >= 500) { failures.Add($"{where}: {Clip(body)}"); return; }
            JsonNode? json = null;
            try { json = body.Length > 0 && response.Content.Headers.ContentType?.MediaType?.Contains("json") == true ? JsonNode.Parse(body) : null; }
            catch (JsonException) { failures.Add($"{where}: the body is not JSON"); return; }
            if (status >= 400)
            {
                if (response.Content.Headers.ContentType?.MediaType != "application/problem+json") failures.Add($"{where}: not a problem document");
                else if (!NamesWhatWasWrong(json)) failures.Add($"{where}: the problem names nothing: {Clip(body)}");
            }
            if (check?.Invoke(json) is { } problem) failures.Add($"{where}: {problem}");
        }

        for (var i = 0; sent < Requests; i++)
        {
            switch (random.Next(10))
            {
                case < 5: // a batch of events, some hostile, in one of many hostile envelopes
                {
                    var count = random.Next(1, 12);
                    var items = new List<Item>();
                    string? lastGoodId = null;
                    for (var k = 0; k < count; k++)
                    {
                        var id = $"ev-{i}-{k}";
                        long input = random.Next(0, 50_000), output = random.Next(0, 5_000);
                        var fields = new Dictionary<string, string>
                        {
                            ["id"] = Str(id), ["occurred_at"] = Str(now.ToString("O")), ["model"] = Str(Models[random.Next(Models.Length)]),
                            ["input_tokens"] = input.ToString(), ["output_tokens"] = output.ToString(), ["job_id"] = Str($"job-{i % 40}"),
                        };
                        if (random.Next(3) == 0)
                        {
                            items.Add(new(Encoding.UTF8.GetBytes(Object(fields)), Expect.Accept, id, input + output));
                            lastGoodId = id;
                            continue;
                        }
                        var field = fields.Keys.ElementAt(random.Next(fields.Count));
                        var tokens = field is "input_tokens" or "output_tokens";
                        var item = random.Next(7) switch
                        {
                            // A hostile text where text belongs may well be a valid value; in a token count it never is.
                            0 => Mutated(fields, field, Str(HostileStrings[random.Next(HostileStrings.Length)]), tokens ? Expect.Reject : Expect.Either),
                            1 => HostileNumber(random) is var n && n == "00012" ? Mutated(fields, field, n, Expect.BreaksTheBatch)
                                : Mutated(fields, field, n, tokens ? Expect.Reject : Expect.Either),
                            2 => Mutated(fields, field, random.Next(2) == 0 ? "[1,2]" : "{\"a\":1}", tokens ? Expect.Reject : Expect.Either),
                            3 => Removed(fields, field),
                            4 when lastGoodId is not null => Mutated(fields, "id", Str(lastGoodId), Expect.Duplicate),
                            5 => new Item(WithInvalidUtf8(Object(fields), random), Expect.RejectOrBreaksTheBatch, null, 0),
                            _ => Mutated(fields, field, Str(new string('y', random.Next(1_000, 1_100_000))), Expect.Reject),
                        };
                        items.Add(item with { Id = item.Id ?? id });
                    }
                    var body = new List<byte>(Encoding.UTF8.GetBytes("{\"events\":["));
                    for (var k = 0; k < items.Count; k++)
                    {
                        if (k > 0) body.Add((byte)',');
                        body.AddRange(items[k].Json);
                    }
                    body.AddRange("]}"u8.ToArray());
                    var envelope = random.Next(20);
                    var contentType = envelope == 0 ? "text/plain" : envelope == 1 ? "application/xml" : "application/json";
                    byte[] bytes = envelope switch
                    {
                        2 => body.Take(random.Next(1, body.Count)).ToArray(), // cut short
                        3 => Encoding.UTF8.GetBytes(new string('[', 5_000) + new string(']', 5_000)), // deep nesting
                        4 => Encoding.UTF8.GetBytes("[" + Encoding.UTF8.GetString(body.ToArray())[10..^1]), // an array, not an object
                        _ => body.ToArray(),
                    };
                    var whole = envelope <= 4; // the envelope itself is at fault: nothing of it may be accepted
                    var content = new ByteArrayContent(bytes);
                    content.Headers.ContentType = new(contentType);
                    var mayBreak = whole || items.Any(x => x.Expect is Expect.BreaksTheBatch or Expect.RejectOrBreaksTheBatch);
                    await Send(client, HttpMethod.Post, "/v1/usage/events", content, $"batch of {items.Count}, envelope {envelope}", json =>
                    {
                        if (json?["results"] is not JsonArray results) return mayBreak ? null : "a well-formed batch was not answered item by item";
                        if (whole) return "a batch in a broken envelope was answered item by item";
                        if (results.Count != items.Count) return $"{results.Count} results for {items.Count} items";
                        for (var k = 0; k < items.Count; k++)
                        {
                            var status = (string?)results[k]!["status"];
                            var item = items[k];
                            var wrong = item.Expect switch
                            {
                                Expect.Accept => status != "accepted",
                                Expect.Duplicate => status != "duplicate",
                                Expect.Either => status is not ("accepted" or "rejected" or "duplicate"), // a hostile id may repeat one sent before
                                _ => status != "rejected",
                            };
                            if (wrong) return $"item {k} ({item.Expect}) was {status} {results[k]!["error"]}: {Clip(Encoding.UTF8.GetString(item.Json))}";
                            if (status == "rejected" && ((string?)results[k]!["error"])?.Length is not > 5) return $"item {k} was rejected without a reason";
                            if (status == "accepted") accepted[item.Id!] = item.Tokens;
                        }
                        return null;
                    });
                    break;
                }
                case 5: // query parameters of every read endpoint
                {
                    var (path, parameter) = Reads[random.Next(Reads.Length)];
                    var value = HostileStrings[random.Next(HostileStrings.Length)];
                    await Send(client, HttpMethod.Get, $"{path}?{parameter}={Uri.EscapeDataString(value)}", null, $"{parameter}={Clip(value)}");
                    break;
                }
                case 6: // a path segment
                {
                    // %00 in a path stops the in-memory test server before the portal sees it (Kestrel answers it 400 itself).
                    var value = HostileStrings[random.Next(HostileStrings.Length)].Replace("\u0000", "nul");
                    var path = random.Next(3) switch
                    {
                        0 => "/v1/usage/jobs/",
                        1 => "/v1/alerts/rules/",
                        _ => "/v1/webhooks/endpoints/",
                    };
                    var method = path.Contains("jobs") ? HttpMethod.Get : HttpMethod.Delete;
                    await Send(path.Contains("jobs") ? client : admin, method, path + Uri.EscapeDataString(value.Length > 8_000 ? value[..8_000] : value), null, "path");
                    break;
                }
                case 7: // quota checks
                {
                    var field = new[] { "estimated_credits", "model", "input_tokens", "output_tokens", "cached_input_tokens", "provider" }[random.Next(6)];
                    var value = random.Next(2) == 0 ? HostileNumber(random) : Str(HostileStrings[random.Next(HostileStrings.Length)]);
                    var json = $"{{\"model\":\"gpt-4o\",\"input_tokens\":100,\"{field}\":{value}}}";
                    await Send(client, HttpMethod.Post, "/v1/quota/check", Json(json, random), $"quota {field}={Clip(value)}");
                    break;
                }
                case 8: // alert rules and webhook endpoints
                {
                    var value = random.Next(2) == 0 ? HostileNumber(random) : Str(HostileStrings[random.Next(HostileStrings.Length)]);
                    var json = random.Next(2) == 0
                        ? $"{{\"kind\":\"percent_consumed\",\"threshold\":{value},\"channels\":[\"email\"]}}"
                        : $"{{\"url\":{value}}}";
                    await Send(admin, HttpMethod.Post, json.Contains("url") ? "/v1/webhooks/endpoints" : "/v1/alerts/rules", Json(json, random), Clip(json));
                    break;
                }
                default: // keys and methods
                {
                    var hostile = _app.ClientWithKey(HostileStrings[random.Next(HostileStrings.Length)] is { Length: > 0 and < 500 } k && !k.Any(char.IsControl) && k.All(c => c < 128) ? k : "rpt_nope");
                    await Send(hostile, HttpMethod.Get, Reads[random.Next(Reads.Length)].Path, null, "a key that is not one");
                    break;
                }
            }
        }

        // One body past the limit, announced and not announced.
        await Send(client, HttpMethod.Post, "/v1/usage/events", new ByteArrayContent(new byte[UsageApi.MaxBodyBytes + 1]) { Headers = { ContentType = new("application/json") } }, "oversized");
        Assert.True(failures.Count == 0, $"{failures.Count} of {sent} answers broke a rule:\n" + string.Join("\n", failures.Take(30)));
        Assert.True(contract.Violations.IsEmpty, string.Join("\n", contract.Violations.Take(30)));
        Assert.True(sent >= Requests);
        Assert.True(accepted.Count > 500, $"only {accepted.Count} good events were sent");

        // Every total exact: the tokens of exactly the good events, each counted once; the ledger intact to the audit records.
        var balance = JsonNode.Parse(await client.GetStringAsync("/v1/credits/balance"))!;
        Assert.Equal(accepted.Values.Sum(), (long)balance["tokens"]!["total"]!);
        await _app.FlushAsync();
        var verify = JsonNode.Parse(await client.GetStringAsync("/v1/ledger/verify?deep=true"))!;
        Assert.True((bool)verify["intact"]!, verify.ToJsonString());
        balance = JsonNode.Parse(await client.GetStringAsync("/v1/credits/balance"))!;
        Assert.Equal(0, (long)balance["ledger"]!["unflushed_micro_credits"]!);
        using var db = _app.OpenDb();
        using var cmd = db.CreateCommand();
        cmd.CommandText = "SELECT COUNT(*) FROM usage_events WHERE tenant_id = 'acme'";
        Assert.Equal(accepted.Count, Convert.ToInt64(cmd.ExecuteScalar()));
    }

    private enum Expect { Accept, Duplicate, Reject, Either, BreaksTheBatch, RejectOrBreaksTheBatch }

    /// <summary>One event of a batch: its bytes, what the server must answer for it, and its tokens should it be accepted.</summary>
    private sealed record Item(byte[] Json, Expect Expect, string? Id, long Tokens);

    private static Item Mutated(Dictionary<string, string> fields, string field, string value, Expect expect)
    {
        var copy = new Dictionary<string, string>(fields) { [field] = value };
        return new Item(Encoding.UTF8.GetBytes(Object(copy)), expect, null, TokensOf(copy));
    }

    /// <summary>Without a field: an optional one (job, token counts) is not missed, a required one (id, model, occurred_at) is.</summary>
    private static Item Removed(Dictionary<string, string> fields, string field)
    {
        var copy = new Dictionary<string, string>(fields);
        copy.Remove(field);
        return new Item(Encoding.UTF8.GetBytes(Object(copy)), Expect.Either, null, TokensOf(copy));
    }

    /// <summary>The tokens an event of these fields counts if it is accepted (a token count left out counts 0).</summary>
    private static long TokensOf(Dictionary<string, string> fields) =>
        (long.TryParse(fields.GetValueOrDefault("input_tokens"), out var a) ? a : 0) + (long.TryParse(fields.GetValueOrDefault("output_tokens"), out var b) ? b : 0);

    private static readonly (string Path, string Parameter)[] Reads =
    [
        ("/v1/credits/balance", "x"), ("/v1/credits/consumption", "days"), ("/v1/credits/consumption", "page"), ("/v1/credits/consumption", "page_size"),
        ("/v1/credits/consumption", "cursor"), ("/v1/credits/allocations", "period"), ("/v1/credits/grants", "x"), ("/v1/ledger/verify", "deep"),
        ("/v1/ledger/verify", "expect_head"), ("/v1/ledger/statement", "period"), ("/v1/ledger/statement/records", "entry"),
        ("/v1/credits/conversion", "at"), ("/v1/plans", "x"), ("/v1/usage/tokens", "group_by"), ("/v1/usage/tokens", "from"), ("/v1/usage/tokens", "to"),
        ("/v1/usage/tokens", "page"), ("/v1/usage/tokens", "page_size"), ("/v1/usage/tokens", "cursor"), ("/v1/usage/daily", "group_by"),
    ];

    /// <summary>A problem names what was wrong: the field in its errors, or a JSON path, a parameter or the request part in its detail.</summary>
    private static bool NamesWhatWasWrong(JsonNode? problem) =>
        problem?["errors"] is JsonObject { Count: > 0 }
        || problem?["detail"] is JsonValue detail && ((string?)detail)?.Length > 10;

    private static string HostileNumber(Random random) => random.Next(8) switch
    {
        0 => "-1",
        1 => "1e400",
        2 => "9223372036854775808",
        3 => "-9223372036854775809",
        4 => "1.0000000000000000000000001",
        5 => "\"12\"",
        6 => "00012",
        _ => "1" + new string('0', random.Next(20, 5_000)),
    };

    private static ByteArrayContent Json(string json, Random random)
    {
        var bytes = Encoding.UTF8.GetBytes(json);
        if (random.Next(6) == 0) bytes = WithInvalidUtf8(json, random);
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new(random.Next(15) == 0 ? "text/plain" : "application/json");
        return content;
    }

    private static byte[] WithInvalidUtf8(string json, Random random)
    {
        var bytes = Encoding.UTF8.GetBytes(json).ToList();
        var quote = bytes.IndexOf((byte)'"', random.Next(bytes.Count / 2));
        bytes.Insert(quote < 0 ? bytes.Count / 2 : quote + 1, new byte[] { 0xff, 0xfe, 0xc3, 0xc0, 0xed, 0x80 }[random.Next(6)]);
        return bytes.ToArray();
    }

    private static string Object(Dictionary<string, string> fields) => "{" + string.Join(",", fields.Select(f => $"\"{f.Key}\":{f.Value}")) + "}";
    private static string Str(string s) => JsonSerializer.Serialize(s);
    private static string Clip(string s) => s.Length > 200 ? s[..200] + "…" : s;
}
