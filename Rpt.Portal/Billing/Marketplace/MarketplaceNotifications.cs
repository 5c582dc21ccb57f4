using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json.Nodes;
using Amazon.SQS;
using Amazon.SQS.Model;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Rpt.Portal.Data;
using Rpt.Portal.Ledger;

namespace Rpt.Portal.Billing.Marketplace;

/// <summary>
/// Reads AWS Marketplace's entitlement notifications (subscribe-success, subscribe-fail, unsubscribe-pending,
/// unsubscribe-success) from the SQS queue subscribed to the product's SNS topic, with AWSSDK.SQS. Each is applied
/// once, by its SNS message id, whatever the number of deliveries; an older notification never undoes a newer one,
/// whatever the order they arrive in. A message is deleted from the queue only after it is recorded.
/// </summary>
public sealed class MarketplaceNotifications(IDbContextFactory<ApplicationDbContext> dbFactory, AwsCredentialSource credentials,
    IOptions<AwsMarketplaceOptions> options, MarketplaceEntitlements entitlements, TimeProvider time, ILogger<MarketplaceNotifications> logger) : IDisposable
{
    private AmazonSQSClient? _sqs;

    private AmazonSQSClient Sqs
    {
        get
        {
            var o = options.Value;
            return _sqs ??= new AmazonSQSClient(credentials.Resolve(), new AmazonSQSConfig
            {
                ServiceURL = o.QueueUrl!.GetLeftPart(UriPartial.Authority),
                AuthenticationRegion = o.Region,
                MaxErrorRetry = 2,
            });
        }
    }

    public static MarketplaceStatus? StatusOf(string action) => action switch
    {
        "subscribe-success" => MarketplaceStatus.Subscribed,
        "subscribe-fail" => MarketplaceStatus.SubscribeFailed,
        "unsubscribe-pending" => MarketplaceStatus.UnsubscribePending,
        "unsubscribe-success" => MarketplaceStatus.Unsubscribed,
        _ => null,
    };

    /// <summary>Receives what the queue holds now (up to <paramref name="rounds"/> × 10 messages) and applies it; the number applied.</summary>
    public async Task<int> ReadAsync(int rounds = 10, CancellationToken cancellationToken = default)
    {
        var o = options.Value;
        if (!o.Enabled || o.QueueUrl is null) return 0;
        var applied = 0;
        for (var round = 0; round < rounds; round++)
        {
            var received = await Sqs.ReceiveMessageAsync(new ReceiveMessageRequest
            {
                QueueUrl = o.QueueUrl.ToString(),
                MaxNumberOfMessages = 10,
                WaitTimeSeconds = 0,
            }, cancellationToken);
            if (received.Messages is not { Count: > 0 } messages) break;
            foreach (var message in messages)
            {
                if (await ApplyAsync(message.MessageId, message.Body, cancellationToken)) applied++;
                await Sqs.DeleteMessageAsync(new DeleteMessageRequest { QueueUrl = o.QueueUrl.ToString(), ReceiptHandle = message.ReceiptHandle }, cancellationToken);
            }
        }
        if (applied > 0) entitlements.Invalidate();
        return applied;
    }

    /// <summary>Applies one message's notification once; false when it was applied before or changes nothing.</summary>
    public async Task<bool> ApplyAsync(string sqsMessageId, string body, CancellationToken cancellationToken = default)
    {
        var now = time.GetUtcNow();
        string messageId = sqsMessageId, action = "", customer = "";
        DateTimeOffset sentAt = now;
        string? outcome = null;
        try
        {
            // The SNS envelope: its MessageId (the same on every delivery), its Timestamp, and the marketplace's message.
            var envelope = JsonNode.Parse(body)!;
            messageId = (string?)envelope["MessageId"] ?? sqsMessageId;
            if ((string?)envelope["Timestamp"] is { } ts) sentAt = DateTimeOffset.Parse(ts, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
            var inner = (string?)envelope["Message"] is { } text ? JsonNode.Parse(text)! : envelope;
            action = (string?)inner["action"] ?? "";
            customer = (string?)inner["customer-identifier"] ?? (string?)inner["customer-aws-account-id"] ?? "";
            if ((string?)inner["product-code"] is { } product && product != options.Value.ProductCode) outcome = $"for another product ({product}): ignored";
        }
        catch (Exception ex) when (ex is System.Text.Json.JsonException or FormatException or InvalidOperationException)
        {
            outcome = "unreadable: ignored";
        }
        messageId = Clip(messageId, 128);
        action = Clip(action, 64);
        customer = Clip(customer, 256);

        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        if (await db.MarketplaceNotifications.AnyAsync(n => n.MessageId == messageId, cancellationToken)) return false; // delivered again
        var changed = false;
        if (outcome is null)
        {
            var status = StatusOf(action);
            var account = await db.MarketplaceAccounts.FirstOrDefaultAsync(a => a.CustomerIdentifier == customer || a.CustomerAwsAccountId == customer, cancellationToken);
            if (status is null) outcome = $"unknown action '{action}': ignored";
            else if (account is null) outcome = "no tenant is linked to this customer yet";
            else if (!account.Apply(status.Value, sentAt)) outcome = $"older than the state applied ({EnumText.ToText(account.Status)} at {account.StatusAt:u}): kept for the record";
            else
            {
                changed = true;
                outcome = $"applied to tenant {account.TenantId}: {EnumText.ToText(status.Value)}";
            }
        }
        db.MarketplaceNotifications.Add(new MarketplaceNotification(messageId, action, customer, sentAt, outcome, now));
        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateException)
        {
            return false; // another instance recorded the same message a moment ago
        }
        logger.Log(changed ? LogLevel.Information : LogLevel.Warning, "Marketplace notification {MessageId} {Action} for {Customer}: {Outcome}", messageId, action, customer, outcome);
        return changed;
    }

    private static string Clip(string s, int max) => s.Length > max ? s[..max] : s;

    public void Dispose() => _sqs?.Dispose();
}

/// <summary>
/// Which marketplace tenants may not ingest (their subscription ended or failed), read from the database at most every
/// few seconds, so that every instance learns of a change made by another.
/// </summary>
public sealed class MarketplaceEntitlements(IDbContextFactory<ApplicationDbContext> dbFactory, TimeProvider time, ILogger<MarketplaceEntitlements> logger) : Metering.IIngestGate
{
    public static readonly TimeSpan ReadEvery = TimeSpan.FromSeconds(5);
    private volatile IReadOnlyDictionary<string, MarketplaceStatus> _ended = new Dictionary<string, MarketplaceStatus>();
    private long _readAt = long.MinValue;
    private readonly SemaphoreSlim _reading = new(1, 1);

    public void Invalidate() => Interlocked.Exchange(ref _readAt, long.MinValue);

    /// <summary>Why the tenant may not ingest, or null, from the ended subscriptions last read.</summary>
    public string? Refusal(string tenantId) => _ended.TryGetValue(tenantId, out var status)
        ? status == MarketplaceStatus.Unsubscribed
            ? "The account's AWS Marketplace subscription has ended: usage is no longer accepted. Subscribe again in AWS Marketplace to go on."
            : "The account's AWS Marketplace subscription did not go through: usage is not accepted until it does."
        : null;

    public async ValueTask RefreshAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Read(ref _readAt) != long.MinValue && time.GetElapsedTime(Interlocked.Read(ref _readAt), time.GetTimestamp()) <= ReadEvery) return;
        await _reading.WaitAsync(cancellationToken);
        try
        {
            if (Interlocked.Read(ref _readAt) != long.MinValue && time.GetElapsedTime(Interlocked.Read(ref _readAt), time.GetTimestamp()) <= ReadEvery) return;
            try
            {
                await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
                _ended = (await db.MarketplaceAccounts.AsNoTracking()
                        .Where(a => a.Status == MarketplaceStatus.Unsubscribed || a.Status == MarketplaceStatus.SubscribeFailed)
                        .Select(a => new { a.TenantId, a.Status }).ToListAsync(cancellationToken))
                    .ToDictionary(a => a.TenantId, a => a.Status);
            }
            catch (Exception ex) when (ex is System.Data.Common.DbException or InvalidOperationException or TimeoutException && !cancellationToken.IsCancellationRequested)
            {
                // The database is away (a failover, a restart): ingestion answers for itself; the last known set stands.
                logger.LogWarning("The ended marketplace subscriptions could not be read; the last known are used: {Error}", ex.Message);
            }
            Interlocked.Exchange(ref _readAt, time.GetTimestamp());
        }
        finally
        {
            _reading.Release();
        }
    }
}

/// <summary>Reads the notification queue on one instance every <c>SendInterval</c>.</summary>
public sealed class MarketplaceNotificationReader(MarketplaceNotifications notifications, IOptions<AwsMarketplaceOptions> options, TimeProvider time,
    ILogger<MarketplaceNotificationReader> logger, IWorkLeases leases) : PeriodicJob(time, logger, leases)
{
    protected override string? Lease => Data.Lease.MarketplaceNotices;
    protected override TimeSpan Interval => options.Value.SendInterval;
    protected override string FailureMessage => "Reading marketplace notifications failed";

    protected override async Task RunOnceAsync(CancellationToken cancellationToken)
    {
        if (!options.Value.Enabled || options.Value.QueueUrl is null) return;
        await notifications.ReadAsync();
    }
}
