using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Amazon.Runtime;
using Amazon.Runtime.Credentials;
using Amazon.Runtime.Internal;
using Amazon.Runtime.Internal.Auth;
using Amazon.Util;
using Microsoft.Extensions.Options;

namespace Rpt.Portal.Billing.Marketplace;

public sealed record ResolvedCustomer(string CustomerIdentifier, string CustomerAwsAccountId, string ProductCode);

/// <summary>One usage record of BatchMeterUsage: whole credits of one customer at one instant (whole seconds).</summary>
public sealed record MeterRecord(DateTimeOffset Timestamp, string CustomerAwsAccountId, string Dimension, long Quantity);

/// <summary>AWS's verdict on a record: Success, CustomerNotSubscribed or DuplicateRecord.</summary>
public sealed record MeterResult(MeterRecord Record, string Status, string? MeteringRecordId);

public sealed record BatchMeterAnswer(IReadOnlyList<MeterResult> Results, IReadOnlyList<MeterRecord> Unprocessed);

/// <summary>An error the metering service answered (its <c>__type</c>, e.g. InvalidTokenException, ThrottlingException).</summary>
public sealed class AwsServiceException(string type, string message, int status) : Exception($"{type}: {message} (HTTP {status})")
{
    public string Type { get; } = type;
    public int Status { get; } = status;
    /// <summary>Whether the same request may succeed later (throttled, the service's own failure).</summary>
    public bool Retryable => Status >= 500 || Type is "ThrottlingException" or "InternalServiceErrorException" or "ServiceUnavailableException";
}

/// <summary>The credentials calls are signed with: the standard AWS chain (environment, profile, instance role).</summary>
public class AwsCredentialSource
{
    public virtual AWSCredentials Resolve() => DefaultAWSCredentialsIdentityResolver.GetCredentials(null)
        ?? throw new InvalidOperationException("No AWS credentials were found (environment, profile or instance role).");

    public async Task<ImmutableCredentials> GetAsync(CancellationToken cancellationToken) => await Resolve().GetCredentialsAsync();
}

/// <summary>
/// The AWS Marketplace Metering Service over its documented AWS JSON 1.1 protocol (<c>X-Amz-Target:
/// AWSMPMeteringService.*</c>), each request signed with Signature Version 4 by AWSSDK.Core's signer. There is no
/// AWSSDK.MarketplaceMetering package on the registry this project builds from (tried once: NU1101).
/// </summary>
public sealed class AwsMeteringClient(HttpClient http, IOptions<AwsMarketplaceOptions> options, AwsCredentialSource credentials, TimeProvider time)
{
    /// <summary>The name the metering service signs under.</summary>
    public const string SigningService = "aws-marketplace";

    public async Task<ResolvedCustomer> ResolveCustomerAsync(string registrationToken, CancellationToken cancellationToken)
    {
        var answer = await CallAsync("ResolveCustomer", new JsonObject { ["RegistrationToken"] = registrationToken }, cancellationToken);
        return new ResolvedCustomer((string?)answer["CustomerIdentifier"] ?? "", (string?)answer["CustomerAWSAccountId"] ?? "", (string?)answer["ProductCode"] ?? "");
    }

    public async Task<BatchMeterAnswer> BatchMeterUsageAsync(string productCode, IReadOnlyList<MeterRecord> records, CancellationToken cancellationToken)
    {
        if (records.Count is 0 or > 25) throw new ArgumentOutOfRangeException(nameof(records), "BatchMeterUsage takes 1 to 25 records.");
        var body = new JsonObject
        {
            ["ProductCode"] = productCode,
            ["UsageRecords"] = new JsonArray(records.Select(r => (JsonNode)Record(r)).ToArray()),
        };
        var answer = await CallAsync("BatchMeterUsage", body, cancellationToken);
        var results = (answer["Results"] as JsonArray ?? []).Select(n => new MeterResult(Parse(n!["UsageRecord"]!), (string?)n["Status"] ?? "",
            (string?)n["MeteringRecordId"])).ToList();
        var unprocessed = (answer["UnprocessedRecords"] as JsonArray ?? []).Select(n => Parse(n!)).ToList();
        return new BatchMeterAnswer(results, unprocessed);
    }

    public static JsonObject Record(MeterRecord r) => new()
    {
        ["Timestamp"] = r.Timestamp.ToUnixTimeSeconds(),
        ["CustomerAWSAccountId"] = r.CustomerAwsAccountId,
        ["Dimension"] = r.Dimension,
        ["Quantity"] = r.Quantity,
    };

    public static MeterRecord Parse(JsonNode n) => new(
        DateTimeOffset.FromUnixTimeSeconds((long)Math.Floor(n["Timestamp"]!.GetValue<double>())),
        (string?)n["CustomerAWSAccountId"] ?? "", (string?)n["Dimension"] ?? "", (long?)n["Quantity"] ?? 0);

    private async Task<JsonNode> CallAsync(string operation, JsonObject body, CancellationToken cancellationToken)
    {
        var o = options.Value;
        var endpoint = o.Endpoint;
        var content = Encoding.UTF8.GetBytes(body.ToJsonString());
        var signedAt = time.GetUtcNow().UtcDateTime;
        var creds = await credentials.GetAsync(cancellationToken);

        using var request = new HttpRequestMessage(HttpMethod.Post, endpoint) { Content = new ByteArrayContent(content) };
        request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(ContentType);
        foreach (var (k, v) in Sign(endpoint, "AWSMPMeteringService." + operation, content, creds, o.Region, signedAt))
            if (!k.Equals("Host", StringComparison.OrdinalIgnoreCase) && !k.Equals("Content-Type", StringComparison.OrdinalIgnoreCase)
                && !k.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
                request.Headers.TryAddWithoutValidation(k, v);

        using var response = await http.SendAsync(request, cancellationToken);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        JsonNode? json = null;
        try { json = text.Length == 0 ? null : JsonNode.Parse(text); } catch (System.Text.Json.JsonException) { }
        if (response.IsSuccessStatusCode && json is not null) return json;
        var type = (string?)json?["__type"] ?? (response.Headers.TryGetValues("x-amzn-ErrorType", out var t) ? t.First() : "UnknownError");
        type = type[(type.LastIndexOf('#') + 1)..].Split(':')[0];
        var message = (string?)json?["message"] ?? (string?)json?["Message"] ?? (text.Length > 200 ? text[..200] : text);
        throw new AwsServiceException(type, message, (int)response.StatusCode);
    }

    public const string ContentType = "application/x-amz-json-1.1";

    /// <summary>
    /// The headers of a signed request (Host, X-Amz-Date, X-Amz-Target, the session token when there is one, and
    /// Authorization), signed with Signature Version 4 by AWSSDK.Core's own signer. The tests' metering server checks a
    /// request by signing what it received the same way and comparing.
    /// </summary>
    public static IDictionary<string, string> Sign(Uri endpoint, string target, byte[] content, ImmutableCredentials creds, string region, DateTime signedAt)
    {
        var request = new DefaultRequest(new MeteringRequest(), "AWSMarketplaceMetering")
        {
            HttpMethod = "POST",
            Endpoint = new Uri(endpoint.GetLeftPart(UriPartial.Authority)),
            ResourcePath = endpoint.AbsolutePath,
            Content = content,
            OverrideSigningServiceName = SigningService,
            AuthenticationRegion = region,
        };
        request.Headers["Content-Type"] = ContentType;
        request.Headers["X-Amz-Target"] = target;
        if (creds.UseToken) request.Headers["X-Amz-Security-Token"] = creds.Token;
        // The signer reads the region and service to sign for from a client configuration; SQS's is the one at hand.
        var config = new Amazon.SQS.AmazonSQSConfig { AuthenticationRegion = region, AuthenticationServiceName = SigningService };
        request.Headers["Authorization"] = new AWS4Signer().SignRequest(request, config, null, creds.AccessKey, creds.SecretKey, signedAt).ForAuthorizationHeader;
        return request.Headers;
    }

    private sealed class MeteringRequest : AmazonWebServiceRequest;
}
