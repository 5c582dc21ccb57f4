using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Amazon.Runtime;
using Amazon.Runtime.Internal;
using Amazon.Runtime.Internal.Auth;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Rpt.Portal.Tests.Support;

/// <summary>
/// A stand-in for the AWS Marketplace Metering Service on loopback, speaking its AWS JSON 1.1 wire format
/// (ResolveCustomer, BatchMeterUsage) and refusing any request whose Signature Version 4 does not verify: it signs
/// what it received with AWSSDK.Core's signer and the secret of the access key named, and compares. It keeps every
/// record it accepted, answers an identical record again with DuplicateRecord (as AWS de-duplicates), refuses
/// records more than six hours old, and can be told to throttle, to leave records unprocessed, or to stop the
/// world between storing a call's records and answering it.
/// </summary>
public sealed class AwsMeteringServer : IAsyncDisposable
{
    public const string AccessKey = "AKIDRPTTESTMETERING";
    public const string SecretKey = "rpt-test-secret-not-a-real-one";
    public const string Region = "us-east-1";

    private readonly WebApplication _app;
    private readonly TimeProvider _time;

    private AwsMeteringServer(WebApplication app, TimeProvider time)
    {
        _app = app;
        _time = time;
    }

    public Uri Address { get; private set; } = null!;

    /// <summary>Registration tokens AWS would resolve: token → (customer identifier, AWS account id, product code).</summary>
    public ConcurrentDictionary<string, (string Customer, string Account, string Product)> Tokens { get; } = new();

    /// <summary>Every record accepted, by (account, dimension, timestamp): what AWS bills.</summary>
    public ConcurrentDictionary<(string Account, string Dimension, long Timestamp), long> Accepted { get; } = new();

    /// <summary>Every call as it was answered, for the test's account of what happened.</summary>
    public ConcurrentQueue<string> Calls { get; } = new();

    /// <summary>Accounts that are not subscribed: their records are answered CustomerNotSubscribed.</summary>
    public ConcurrentDictionary<string, byte> NotSubscribed { get; } = new();

    /// <summary>The next N BatchMeterUsage calls are answered 400 ThrottlingException.</summary>
    public int ThrottleNext;
    /// <summary>The next N BatchMeterUsage calls leave every record in UnprocessedRecords.</summary>
    public int LeaveUnprocessedNext;
    /// <summary>Calls refused because their signature did not verify.</summary>
    public int BadSignatures;
    /// <summary>Run after a call's records are stored and before it is answered (the crash test kills the portal here).</summary>
    public Func<Task>? BeforeAnswer;

    /// <summary>What a portal under test signs with: this server's key, or another secret to be refused.</summary>
    public static Rpt.Portal.Billing.Marketplace.AwsCredentialSource Credentials(string secret = SecretKey) => new FixedCredentials(secret);

    private sealed class FixedCredentials(string secret) : Rpt.Portal.Billing.Marketplace.AwsCredentialSource
    {
        public override AWSCredentials Resolve() => new BasicAWSCredentials(AccessKey, secret);
    }

    public long Total(string account) => Accepted.Where(kv => kv.Key.Account == account).Sum(kv => kv.Value);

    public static async Task<AwsMeteringServer> StartAsync(TimeProvider? time = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var server = new AwsMeteringServer(app, time ?? TimeProvider.System);
        app.MapPost("/", server.HandleAsync);
        await app.StartAsync();
        server.Address = new Uri(app.Urls.First() + "/");
        return server;
    }

    private async Task HandleAsync(HttpContext context)
    {
        using var buffer = new MemoryStream();
        await context.Request.Body.CopyToAsync(buffer);
        var body = buffer.ToArray();
        var target = context.Request.Headers["X-Amz-Target"].ToString();
        if (!SignatureVerifies(context.Request, target, body))
        {
            Interlocked.Increment(ref BadSignatures);
            await ErrorAsync(context, 403, "InvalidSignatureException", "The request signature we calculated does not match the signature you provided.");
            return;
        }
        if (context.Request.ContentType != "application/x-amz-json-1.1")
        {
            await ErrorAsync(context, 400, "SerializationException", "Content-Type must be application/x-amz-json-1.1.");
            return;
        }
        var json = JsonNode.Parse(body)!;
        switch (target)
        {
            case "AWSMPMeteringService.ResolveCustomer":
                var token = (string?)json["RegistrationToken"] ?? "";
                if (!Tokens.TryGetValue(token, out var customer))
                {
                    Calls.Enqueue("ResolveCustomer → InvalidTokenException");
                    await ErrorAsync(context, 400, "InvalidTokenException", "Registration token is invalid.");
                    return;
                }
                Calls.Enqueue($"ResolveCustomer → {customer.Account} ({customer.Product})");
                await AnswerAsync(context, new JsonObject { ["CustomerIdentifier"] = customer.Customer, ["CustomerAWSAccountId"] = customer.Account, ["ProductCode"] = customer.Product });
                return;
            case "AWSMPMeteringService.BatchMeterUsage":
                await BatchMeterUsageAsync(context, json);
                return;
            default:
                await ErrorAsync(context, 400, "UnknownOperationException", $"Unknown operation '{target}'.");
                return;
        }
    }

    private async Task BatchMeterUsageAsync(HttpContext context, JsonNode json)
    {
        var records = (json["UsageRecords"] as JsonArray ?? []).Select(n => n!).ToList();
        if (records.Count is 0 or > 25)
        {
            await ErrorAsync(context, 400, "ValidationException", "UsageRecords must have 1 to 25 records.");
            return;
        }
        if (ThrottleNext > 0 && Interlocked.Decrement(ref ThrottleNext) >= 0)
        {
            Calls.Enqueue($"BatchMeterUsage({records.Count}) → ThrottlingException");
            await ErrorAsync(context, 400, "ThrottlingException", "Rate exceeded.");
            return;
        }
        var now = _time.GetUtcNow().ToUnixTimeSeconds();
        foreach (var r in records)
        {
            var ts = (long)r["Timestamp"]!.GetValue<double>();
            var quantity = r["Quantity"]!.GetValue<long>();
            if (ts < now - 6 * 3600 || ts > now + 3600 || quantity < 0 || r["CustomerIdentifier"] is not null)
            {
                Calls.Enqueue($"BatchMeterUsage({records.Count}) → TimestampOutOfBoundsException");
                await ErrorAsync(context, 400, "TimestampOutOfBoundsException", "The timestamp value passed in the UsageRecord is out of allowed range.");
                return;
            }
        }
        var results = new JsonArray();
        var unprocessed = new JsonArray();
        var unprocess = LeaveUnprocessedNext > 0 && Interlocked.Decrement(ref LeaveUnprocessedNext) >= 0;
        var said = new List<string>();
        foreach (var r in records)
        {
            var account = (string)r["CustomerAWSAccountId"]!;
            var key = (account, (string)r["Dimension"]!, (long)r["Timestamp"]!.GetValue<double>());
            var quantity = r["Quantity"]!.GetValue<long>();
            if (unprocess)
            {
                unprocessed.Add(r.DeepClone());
                said.Add($"{quantity} unprocessed");
                continue;
            }
            string status;
            if (NotSubscribed.ContainsKey(account)) status = "CustomerNotSubscribed";
            else if (Accepted.TryAdd(key, quantity)) status = "Success";
            else status = Accepted[key] == quantity ? "DuplicateRecord" : "Success"; // another quantity at the same instant would be a second record
            said.Add($"{quantity} at {DateTimeOffset.FromUnixTimeSeconds(key.Item3):u} {status}");
            results.Add(new JsonObject { ["UsageRecord"] = r.DeepClone(), ["MeteringRecordId"] = $"mr-{account}-{key.Item3}", ["Status"] = status });
        }
        Calls.Enqueue($"BatchMeterUsage({records.Count}): {string.Join("; ", said)}");
        if (BeforeAnswer is { } before) await before();
        await AnswerAsync(context, new JsonObject { ["Results"] = results, ["UnprocessedRecords"] = unprocessed });
    }

    /// <summary>Signs what arrived with AWSSDK.Core's signer and the access key's secret, and compares with what was sent.</summary>
    private static bool SignatureVerifies(HttpRequest request, string target, byte[] body)
    {
        var authorization = request.Headers.Authorization.ToString();
        var parts = authorization.Replace("AWS4-HMAC-SHA256 ", "").Split(',', StringSplitOptions.TrimEntries)
            .Select(p => p.Split('=', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1]);
        if (!parts.TryGetValue("Credential", out var credential) || !parts.TryGetValue("SignedHeaders", out var signedHeaders)) return false;
        var scope = credential.Split('/');
        // AKID/date/region/service/aws4_request: signed by our key, for the metering service, in its region.
        if (scope is not [AccessKey, _, Region, "aws-marketplace", "aws4_request"]) return false;
        if (!DateTime.TryParseExact(request.Headers["X-Amz-Date"].ToString(), "yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture,
                DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var signedAt)) return false;
        var again = new DefaultRequest(new Probe(), "AWSMarketplaceMetering")
        {
            HttpMethod = request.Method,
            Endpoint = new Uri($"http://{request.Host}"),
            ResourcePath = request.Path.Value ?? "/",
            Content = body,
            OverrideSigningServiceName = "aws-marketplace",
            AuthenticationRegion = Region,
        };
        foreach (var name in signedHeaders.Split(';'))
            if (name is not ("host" or "x-amz-date" or "x-amz-content-sha256")) again.Headers[name] = request.Headers[name].ToString();
        if (target.Length == 0 || !again.Headers.ContainsKey("x-amz-target")) return false;
        var expected = new AWS4Signer().SignRequest(again, new Amazon.SQS.AmazonSQSConfig { AuthenticationRegion = Region, AuthenticationServiceName = "aws-marketplace" },
            null, AccessKey, SecretKey, signedAt);
        return expected.ForAuthorizationHeader == authorization;
    }

    private sealed class Probe : AmazonWebServiceRequest;

    private static Task AnswerAsync(HttpContext context, JsonObject answer)
    {
        context.Response.ContentType = "application/x-amz-json-1.1";
        return context.Response.WriteAsync(answer.ToJsonString(), Encoding.UTF8);
    }

    private static Task ErrorAsync(HttpContext context, int status, string type, string message)
    {
        context.Response.StatusCode = status;
        context.Response.Headers["x-amzn-ErrorType"] = type;
        context.Response.ContentType = "application/x-amz-json-1.1";
        return context.Response.WriteAsync(new JsonObject { ["__type"] = "com.amazonaws.awsmpmeteringservice#" + type, ["message"] = message }.ToJsonString(), Encoding.UTF8);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
