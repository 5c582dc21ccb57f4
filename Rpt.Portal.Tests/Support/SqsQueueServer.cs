using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Rpt.Portal.Tests.Support;

/// <summary>
/// A stand-in for one Amazon SQS queue on loopback, speaking the AWS JSON 1.0 protocol AWSSDK.SQS uses
/// (AmazonSQS.ReceiveMessage, AmazonSQS.DeleteMessage), with the MD5 of each body the SDK checks. A message stays
/// in the queue, and is delivered again, until it is deleted (SQS delivers at least once).
/// </summary>
public sealed class SqsQueueServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, (string MessageId, string Body, long Order)> _messages = new();
    private long _order;

    private SqsQueueServer(WebApplication app) => _app = app;

    public Uri QueueUrl { get; private set; } = null!;
    public int Deleted;
    public int Count => _messages.Count;

    public static async Task<SqsQueueServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var server = new SqsQueueServer(app);
        app.MapPost("/", server.HandleAsync);
        await app.StartAsync();
        server.QueueUrl = new Uri(app.Urls.First() + "/123456789012/rpt-marketplace-notifications");
        return server;
    }

    /// <summary>Puts a marketplace notification in the queue as SNS delivers it (the envelope with the message inside).</summary>
    public void Publish(string snsMessageId, string action, string customer, string product, DateTimeOffset sentAt)
    {
        var message = new JsonObject { ["action"] = action, ["customer-identifier"] = customer, ["product-code"] = product, ["offer-identifier"] = "offer-1" };
        var envelope = new JsonObject
        {
            ["Type"] = "Notification",
            ["MessageId"] = snsMessageId,
            ["TopicArn"] = "arn:aws:sns:us-east-1:287250355862:aws-mp-subscription-notification-rpt",
            ["Message"] = message.ToJsonString(),
            ["Timestamp"] = sentAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture),
            ["SignatureVersion"] = "1",
        };
        PublishRaw(envelope.ToJsonString());
    }

    public void PublishRaw(string body) => _messages[Guid.NewGuid().ToString()] = (Guid.NewGuid().ToString(), body, Interlocked.Increment(ref _order));

    private async Task HandleAsync(HttpContext context)
    {
        var target = context.Request.Headers["X-Amz-Target"].ToString();
        var json = (await JsonNode.ParseAsync(context.Request.Body))!;
        context.Response.ContentType = "application/x-amz-json-1.0";
        context.Response.Headers["x-amzn-RequestId"] = Guid.NewGuid().ToString();
        if ((string?)json["QueueUrl"] != QueueUrl.ToString())
        {
            context.Response.StatusCode = 400;
            await context.Response.WriteAsync(new JsonObject { ["__type"] = "com.amazonaws.sqs#QueueDoesNotExist", ["message"] = "The specified queue does not exist." }.ToJsonString());
            return;
        }
        switch (target)
        {
            case "AmazonSQS.ReceiveMessage":
                var max = (int?)json["MaxNumberOfMessages"] ?? 1;
                var batch = _messages.OrderBy(kv => kv.Value.Order).Take(Math.Clamp(max, 1, 10)).Select(kv => (JsonNode)new JsonObject
                {
                    ["MessageId"] = kv.Value.MessageId,
                    ["ReceiptHandle"] = kv.Key,
                    ["MD5OfBody"] = Convert.ToHexStringLower(MD5.HashData(Encoding.UTF8.GetBytes(kv.Value.Body))),
                    ["Body"] = kv.Value.Body,
                }).ToArray();
                await context.Response.WriteAsync(batch.Length == 0 ? "{}" : new JsonObject { ["Messages"] = new JsonArray(batch) }.ToJsonString());
                return;
            case "AmazonSQS.DeleteMessage":
                if (_messages.TryRemove((string?)json["ReceiptHandle"] ?? "", out _)) Interlocked.Increment(ref Deleted);
                await context.Response.WriteAsync("{}");
                return;
            default:
                context.Response.StatusCode = 400;
                await context.Response.WriteAsync(new JsonObject { ["__type"] = "com.amazonaws.sqs#UnsupportedOperation", ["message"] = target }.ToJsonString());
                return;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
