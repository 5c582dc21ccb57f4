using Rpt.Portal.Tenants;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Microsoft.Extensions.Options;
using Rpt.Portal.Data;
using Rpt.Portal.Ledger;
using Rpt.Portal.Plans;
using StandardWebhooks;

namespace Rpt.Portal.Alerts;

/// <summary>Rpt:Webhooks.</summary>
public sealed class WebhookOptions
{
    /// <summary>Allow endpoints on loopback and private networks (Development and tests only).</summary>
    public bool AllowPrivateNetworks { get; set; }

    /// <summary>How long one delivery attempt may take.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);
}

/// <summary>Where a tenant's webhooks go. The signing secret is kept encrypted (Data Protection) and shown once.</summary>
public sealed class WebhookEndpoint
{
    private WebhookEndpoint() { }

    public WebhookEndpoint(string tenantId, string url, string protectedSecret, DateTimeOffset at)
    {
        TenantId = tenantId;
        Url = url;
        ProtectedSecret = protectedSecret;
        Enabled = true;
        CreatedAt = at;
    }

    public long Id { get; private set; }
    public string TenantId { get; private set; } = "";
    public string Url { get; private set; } = "";
    public string ProtectedSecret { get; private set; } = "";
    public bool Enabled { get; private set; }
    public DateTimeOffset CreatedAt { get; private set; }

    public void Disable() => Enabled = false;
}

public enum WebhookMessageStatus { Pending, Delivered, Failed }

/// <summary>One logical message to one endpoint: its id is the <c>webhook-id</c> of every attempt.</summary>
public sealed class WebhookMessage
{
    private WebhookMessage() { }

    public WebhookMessage(string id, string tenantId, long endpointId, string type, string payload, DateTimeOffset at)
    {
        Id = id;
        TenantId = tenantId;
        EndpointId = endpointId;
        Type = type;
        Payload = payload;
        CreatedAt = at;
        NextAttemptAt = at;
    }

    public string Id { get; private set; } = "";
    public string TenantId { get; private set; } = "";
    public long EndpointId { get; private set; }
    public string Type { get; private set; } = "";
    public string Payload { get; private set; } = "";
    public DateTimeOffset CreatedAt { get; private set; }
    public WebhookMessageStatus Status { get; private set; }
    public int Attempts { get; private set; }
    public DateTimeOffset NextAttemptAt { get; private set; }

    /// <summary>docs/RULES.md: immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.</summary>
    public static IReadOnlyList<TimeSpan> Schedule => DeliverySchedule.Delays;

    public void Attempted(bool delivered, DateTimeOffset at)
    {
        Attempts++;
        if (delivered) Status = WebhookMessageStatus.Delivered;
        else if (DeliverySchedule.Next(Attempts, at) is { } next) NextAttemptAt = next;
        else Status = WebhookMessageStatus.Failed;
    }
}

/// <summary>When a failed delivery (a webhook message, an alert mail) is tried again, from the attempts it has had.</summary>
public static class DeliverySchedule
{
    /// <summary>docs/RULES.md: immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.</summary>
    public static readonly IReadOnlyList<TimeSpan> Delays =
    [
        TimeSpan.Zero, TimeSpan.FromSeconds(5), TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(30),
        TimeSpan.FromHours(2), TimeSpan.FromHours(5), TimeSpan.FromHours(10), TimeSpan.FromHours(10),
    ];

    /// <summary>The next attempt after <paramref name="attemptsMade"/> attempts, the last failing at <paramref name="at"/>; null when none is left.</summary>
    public static DateTimeOffset? Next(int attemptsMade, DateTimeOffset at) =>
        attemptsMade < Delays.Count ? at + Delays[attemptsMade] : null;
}

/// <summary>Every attempt, as the delivery history shows it.</summary>
public sealed class WebhookAttempt
{
    private WebhookAttempt() { }

    public WebhookAttempt(string messageId, string tenantId, string type, int number, int? statusCode, string? error, DateTimeOffset at, long durationMs)
    {
        MessageId = messageId;
        TenantId = tenantId;
        Type = type;
        Number = number;
        StatusCode = statusCode;
        Error = error is { Length: > 500 } ? error[..500] : error;
        At = at;
        DurationMs = durationMs;
    }

    public long Id { get; private set; }
    public string MessageId { get; private set; } = "";
    public string TenantId { get; private set; } = "";
    public string Type { get; private set; } = "";
    public int Number { get; private set; }
    public int? StatusCode { get; private set; }
    public string? Error { get; private set; }
    public DateTimeOffset At { get; private set; }
    public long DurationMs { get; private set; }
}

public sealed class WebhookConfiguration : IEntityTypeConfiguration<WebhookEndpoint>, IEntityTypeConfiguration<WebhookMessage>, IEntityTypeConfiguration<WebhookAttempt>
{
    public void Configure(EntityTypeBuilder<WebhookEndpoint> b)
    {
        b.ToTable("webhook_endpoints");
        b.HasKey(e => e.Id);
        b.Property(e => e.TenantId).HasMaxLength(64);
        b.Property(e => e.Url).HasMaxLength(2000);
        b.Property(e => e.ProtectedSecret).HasMaxLength(1000);
        b.HasIndex(e => e.TenantId);
    }

    public void Configure(EntityTypeBuilder<WebhookMessage> b)
    {
        b.ToTable("webhook_messages");
        b.HasKey(m => m.Id);
        b.Property(m => m.Id).HasMaxLength(64);
        b.Property(m => m.TenantId).HasMaxLength(64);
        b.Property(m => m.Type).HasMaxLength(64);
        b.Property(m => m.Status).HasConversion(EnumText.Converter<WebhookMessageStatus>()).HasMaxLength(16);
        b.HasIndex(m => new { m.Status, m.NextAttemptAt });
    }

    public void Configure(EntityTypeBuilder<WebhookAttempt> b)
    {
        b.ToTable("webhook_attempts");
        b.HasKey(a => a.Id);
        b.Property(a => a.MessageId).HasMaxLength(64);
        b.Property(a => a.TenantId).HasMaxLength(64);
        b.Property(a => a.Type).HasMaxLength(64);
        b.Property(a => a.Error).HasMaxLength(500);
        b.HasIndex(a => new { a.TenantId, a.At });
    }
}

public sealed record CreatedEndpoint(WebhookEndpoint? Endpoint, string? Secret, string? Error);

/// <summary>
/// Where a webhook's host points, asked again for every connection: a name that resolved to a public address when
/// the endpoint was added may later resolve to a private one (DNS rebinding). The delivery connects only to an
/// address it checked itself, so what was checked is what is called.
/// </summary>
public class WebhookAddresses
{
    public virtual async Task<IPAddress[]> ResolveAsync(string host, CancellationToken ct) =>
        IPAddress.TryParse(host, out var literal) ? [literal] : await Dns.GetHostAddressesAsync(host, ct);

    /// <summary>The delivery client's connection: resolve, refuse private addresses unless allowed, connect to one that passed.</summary>
    public static SocketsHttpHandler Handler(WebhookAddresses addresses, IOptions<WebhookOptions> options) => new()
    {
        AllowAutoRedirect = false,
        ConnectCallback = async (context, ct) =>
        {
            var host = context.DnsEndPoint.Host;
            var resolved = await addresses.ResolveAsync(host, ct);
            if (!options.Value.AllowPrivateNetworks && resolved.Any(Webhooks.IsPrivate))
                throw new HttpRequestException($"'{host}' now resolves to a loopback or private address; webhooks go to public endpoints only, so it was not called.");
            SocketException? last = null;
            foreach (var address in resolved)
            {
                var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    await socket.ConnectAsync(new IPEndPoint(address, context.DnsEndPoint.Port), ct);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch (SocketException ex)
                {
                    socket.Dispose();
                    last = ex;
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            }
            throw new HttpRequestException($"'{host}' could not be reached.", last);
        },
    };
}

/// <summary>
/// Webhooks per the Standard Webhooks specification, signed with the <c>StandardWebhooks</c> package: headers
/// <c>webhook-id</c>, <c>webhook-timestamp</c>, <c>webhook-signature</c> (<c>v1,</c> + base64 HMAC-SHA256 of
/// <c>{id}.{timestamp}.{body}</c>). A message is written before it is sent; each attempt is logged; a failed one
/// is retried on docs/RULES.md's schedule with the same <c>webhook-id</c>, from the row, so a restart loses nothing.
/// </summary>
public sealed class Webhooks(IDbContextFactory<ApplicationDbContext> dbFactory, IDataProtectionProvider protection, IHttpClientFactory http,
    IOptions<WebhookOptions> options, WebhookAddresses addresses, TimeProvider time, ILogger<Webhooks> logger, Observability.PortalMetrics metrics)
{
    public const int MaxEndpointsPerTenant = 10;
    public const int MaxUrlLength = 2000;
    private IDataProtector Protector => protection.CreateProtector("Rpt.Alerts.WebhookSecret");

    public async Task<CreatedEndpoint> CreateEndpointAsync(string tenantId, string? url, CancellationToken ct = default)
    {
        var error = await CheckUrlAsync(url, ct);
        if (error is not null) return new(null, null, error);
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        if (await db.WebhookEndpoints.CountAsync(e => e.TenantId == tenantId && e.Enabled, ct) >= MaxEndpointsPerTenant)
            return new(null, null, $"url: at most {MaxEndpointsPerTenant} endpoints per account; delete one first.");
        var secret = "whsec_" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        var endpoint = new WebhookEndpoint(tenantId, url!, Protector.Protect(secret), time.GetUtcNow());
        db.WebhookEndpoints.Add(endpoint);
        await db.SaveChangesAsync(ct);
        return new(endpoint, secret, null);
    }

    /// <summary>https or http only; no credentials in the URL; loopback and private networks refused unless allowed (Development).</summary>
    public async Task<string?> CheckUrlAsync(string? url, CancellationToken ct = default)
    {
        if (string.IsNullOrWhiteSpace(url)) return "url is required.";
        if (url.Length > MaxUrlLength) return $"url is longer than {MaxUrlLength} characters.";
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("https" or "http"))
            return "url must be an absolute https (or http) URL.";
        if (uri.UserInfo.Length > 0) return "url must not carry a user name or password.";
        if (options.Value.AllowPrivateNetworks) return null;
        IPAddress[] resolved;
        try
        {
            resolved = await addresses.ResolveAsync(uri.IdnHost, ct);
        }
        catch (SocketException)
        {
            return $"url: the host '{uri.Host}' does not resolve.";
        }
        return resolved.Length == 0 || resolved.Any(IsPrivate)
            ? $"url: '{uri.Host}' is a loopback or private address; webhooks go to public endpoints only."
            : null;
    }

    internal static bool IsPrivate(IPAddress ip)
    {
        if (ip.IsIPv4MappedToIPv6) ip = ip.MapToIPv4();
        if (IPAddress.IsLoopback(ip) || ip.Equals(IPAddress.Any) || ip.Equals(IPAddress.IPv6Any)) return true;
        if (ip.AddressFamily == AddressFamily.InterNetworkV6)
            return ip.IsIPv6LinkLocal || ip.IsIPv6SiteLocal || ip.IsIPv6UniqueLocal;
        var b = ip.GetAddressBytes();
        return b[0] == 10 || b[0] == 127 || b[0] == 0 || (b[0] == 172 && b[1] >= 16 && b[1] <= 31) || (b[0] == 192 && b[1] == 168)
               || (b[0] == 169 && b[1] == 254) || (b[0] == 100 && b[1] >= 64 && b[1] <= 127);
    }

    /// <summary>
    /// An account event (<c>top_up.succeeded</c>, <c>top_up.failed</c>, <c>plan.changed</c>) to the tenant's endpoints,
    /// when its plan has webhook alerts; nothing otherwise.
    /// </summary>
    public async Task EmitAsync(string tenantId, string type, object data, CancellationToken ct = default)
    {
        await using (var db = await dbFactory.CreateDbContextAsync(ct))
        {
            var plan = await db.PlanOfAsync(tenantId, ct);
            if (plan?.Allows("webhook_alerts") != true || !await db.WebhookEndpoints.AnyAsync(e => e.TenantId == tenantId && e.Enabled, ct)) return;
        }
        await EnqueueAsync(tenantId, type, data, ct);
    }

    /// <summary>A test message (<c>alert.triggered</c> with <c>test: true</c>) to one endpoint, delivered and logged like any other.</summary>
    public Task<IReadOnlyList<string>> TestEndpointAsync(string tenantId, long endpointId, CancellationToken ct = default) =>
        EnqueueAsync(tenantId, "alert.triggered", new { test = true, message = "TEST — a test message from Rpt Portal's Alerts page." }, ct, endpointId);

    /// <summary>
    /// Writes one message per enabled endpoint of the tenant, then makes the first attempts at once without waiting
    /// for them (an alert or a payment never waits for a customer's endpoint), except for a test send to one endpoint,
    /// whose result its page shows.
    /// </summary>
    public async Task<IReadOnlyList<string>> EnqueueAsync(string tenantId, string type, object data, CancellationToken ct = default, long? onlyEndpoint = null)
    {
        var now = time.GetUtcNow();
        var ids = new List<string>();
        await using (var db = await dbFactory.CreateDbContextAsync(ct))
        {
            foreach (var endpoint in await db.WebhookEndpoints.AsNoTracking()
                         .Where(e => e.TenantId == tenantId && e.Enabled && (onlyEndpoint == null || e.Id == onlyEndpoint)).ToListAsync(ct))
            {
                var id = "msg_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
                var payload = JsonSerializer.Serialize(new { type, timestamp = now, data }, JsonSerializerOptions.Web);
                db.WebhookMessages.Add(new WebhookMessage(id, tenantId, endpoint.Id, type, payload, now));
                ids.Add(id);
            }
            await db.SaveChangesAsync(ct);
        }
        if (ids.Count == 0) return ids;
        if (onlyEndpoint is not null) await DeliverDueAsync(ct);
        else _ = Task.Run(async () =>
        {
            try { await DeliverDueAsync(CancellationToken.None); }
            catch (Exception ex) { logger.LogWarning(ex, "Delivering webhooks failed; the dispatcher tries again"); }
        }, CancellationToken.None);
        return ids;
    }

    /// <summary>How long a claimed attempt is left to its claimant before another may make it (well past the timeout).</summary>
    public static readonly TimeSpan ClaimFor = TimeSpan.FromMinutes(2);

    /// <summary>At most this many endpoints are called at once by one instance.</summary>
    public const int ParallelEndpoints = 16;

    /// <summary>Endpoints this instance is calling now: a round skips them, so a slow one holds back only its own messages.</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<long, byte> _calling = new();

    /// <summary>
    /// Makes every attempt that is due. Each endpoint's messages go in order, endpoints side by side: one slow or
    /// failing endpoint delays only its own messages. Each attempt is claimed first (its next attempt is moved on by a
    /// conditional update), so two instances, or two rounds, never make the same attempt.
    /// </summary>
    public async Task<int> DeliverDueAsync(CancellationToken ct = default)
    {
        var now = time.GetUtcNow();
        List<WebhookMessage> due;
        await using (var db = await dbFactory.CreateDbContextAsync(ct))
            due = await db.WebhookMessages.AsNoTracking().Where(m => m.Status == WebhookMessageStatus.Pending && m.NextAttemptAt <= now)
                .OrderBy(m => m.NextAttemptAt).Take(200).ToListAsync(ct);
        var mine = due.GroupBy(m => m.EndpointId).Where(g => _calling.TryAdd(g.Key, 0)).ToList();
        var delivered = 0;
        await Parallel.ForEachAsync(mine, new ParallelOptions { MaxDegreeOfParallelism = ParallelEndpoints, CancellationToken = ct }, async (endpointMessages, token) =>
        {
            var endpointId = endpointMessages.Key;
            IReadOnlyList<WebhookMessage> batch = endpointMessages.ToList();
            try
            {
                // Drain the endpoint: what came due for it while it was being called is sent now, not at the next round.
                while (batch.Count > 0)
                {
                    foreach (var message in batch)
                        if (await AttemptAsync(message, token)) Interlocked.Increment(ref delivered);
                    batch = await DueForAsync(endpointId, token);
                }
            }
            finally
            {
                _calling.TryRemove(endpointId, out _);
            }
        });
        return delivered;
    }

    private async Task<IReadOnlyList<WebhookMessage>> DueForAsync(long endpointId, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        return await db.WebhookMessages.AsNoTracking()
            .Where(m => m.EndpointId == endpointId && m.Status == WebhookMessageStatus.Pending && m.NextAttemptAt <= now)
            .OrderBy(m => m.NextAttemptAt).Take(200).ToListAsync(ct);
    }

    /// <summary>One attempt at one message, if this caller claims it; whether it was delivered.</summary>
    private async Task<bool> AttemptAsync(WebhookMessage seen, CancellationToken ct)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var claimedUntil = time.GetUtcNow() + ClaimFor;
        var claimed = await db.WebhookMessages
            .Where(m => m.Id == seen.Id && m.Status == WebhookMessageStatus.Pending && m.NextAttemptAt == seen.NextAttemptAt)
            .ExecuteUpdateAsync(u => u.SetProperty(m => m.NextAttemptAt, claimedUntil), ct);
        if (claimed == 0) return false; // another instance or round made this attempt
        var message = await db.WebhookMessages.FirstAsync(m => m.Id == seen.Id, ct);
        var endpoint = await db.WebhookEndpoints.AsNoTracking().FirstOrDefaultAsync(e => e.Id == message.EndpointId, ct);
        if (endpoint is null || !endpoint.Enabled)
        {
            db.WebhookAttempts.Add(new WebhookAttempt(message.Id, message.TenantId, message.Type, message.Attempts + 1, null, "the endpoint was deleted", time.GetUtcNow(), 0));
            message.Attempted(false, time.GetUtcNow());
            await db.SaveChangesAsync(ct);
            return false;
        }
        var (status, error, ms) = await SendAsync(endpoint, message, ct);
        var ok = status is >= 200 and < 300;
        metrics.Outcome(metrics.WebhookAttempts, ok ? "delivered" : "failed");
        db.WebhookAttempts.Add(new WebhookAttempt(message.Id, message.TenantId, message.Type, message.Attempts + 1, status, error, time.GetUtcNow(), ms));
        message.Attempted(ok, time.GetUtcNow());
        if (!ok) logger.LogInformation("Webhook {Id} to {Url}: attempt {N} answered {Status} {Error}", message.Id, endpoint.Url, message.Attempts, status, error);
        await db.SaveChangesAsync(CancellationToken.None);
        return ok;
    }

    private async Task<(int? Status, string? Error, long Ms)> SendAsync(WebhookEndpoint endpoint, WebhookMessage message, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            var signer = new StandardWebhook(Protector.Unprotect(endpoint.ProtectedSecret));
            var sentAt = time.GetUtcNow();
            using var request = new HttpRequestMessage(HttpMethod.Post, endpoint.Url) { Content = new StringContent(message.Payload, Encoding.UTF8, "application/json") };
            request.Headers.Add("webhook-id", message.Id);
            request.Headers.Add("webhook-timestamp", sentAt.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture));
            request.Headers.Add("webhook-signature", signer.Sign(message.Id, sentAt, message.Payload));
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
            cts.CancelAfter(options.Value.Timeout);
            using var response = await http.CreateClient("webhooks").SendAsync(request, cts.Token);
            return ((int)response.StatusCode, null, (long)Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or CryptographicException or InvalidOperationException)
        {
            return (null, ex.Message, (long)Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }
    }
}

/// <summary>Makes the attempts that fall due (the retries of docs/RULES.md's schedule).</summary>
public sealed class WebhookDispatcher(Webhooks webhooks, TimeProvider time, ILogger<WebhookDispatcher> logger, IWorkLeases leases) : PeriodicJob(time, logger, leases)
{
    protected override string? Lease => Data.Lease.Webhooks;

    protected override TimeSpan Interval => TimeSpan.FromSeconds(1);
    protected override string FailureMessage => "Delivering webhooks failed";
    protected override Task RunOnceAsync(CancellationToken cancellationToken) => webhooks.DeliverDueAsync();
}
