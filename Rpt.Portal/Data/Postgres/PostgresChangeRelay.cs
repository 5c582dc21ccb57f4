using System.Text.Json;
using System.Threading.Channels;
using Npgsql;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Data.Postgres;

/// <summary>
/// Carries <see cref="TenantChanges"/> between the instances on one PostgreSQL database: what is published on one is
/// sent with <c>NOTIFY rpt_changes</c>, and every instance <c>LISTEN</c>s on a connection of its own and hands what
/// others sent to its open pages. A notification is a hint to read again, never data: the pages read the database,
/// so one lost while a connection is down costs a page a refresh at most. The sender never blocks the publisher (the
/// ingestion writer): changes wait in a bounded queue, oldest dropped first when the database is away.
/// </summary>
public sealed class PostgresChangeRelay(PostgresDatabase database, TenantChanges changes, ILogger<PostgresChangeRelay> logger)
    : BackgroundService, ITenantChangeRelay
{
    public const string ChannelName = "rpt_changes";

    /// <summary>A notification's payload stays under PostgreSQL's 8,000 bytes: tenants beyond are sent in further ones.</summary>
    private const int MaxPayloadBytes = 7_000;

    private readonly string _instance = Guid.NewGuid().ToString("N")[..16];
    private readonly Channel<(TenantChange Change, IReadOnlyCollection<string> Tenants)> _outbox =
        Channel.CreateBounded<(TenantChange, IReadOnlyCollection<string>)>(new BoundedChannelOptions(10_000) { FullMode = BoundedChannelFullMode.DropOldest });

    public void Send(TenantChange change, IReadOnlyCollection<string> tenantIds) => _outbox.Writer.TryWrite((change, tenantIds.ToArray()));

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        changes.RelayThrough(this);
        return base.StartAsync(cancellationToken);
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken) => Task.WhenAll(SendAsync(stoppingToken), ListenAsync(stoppingToken));

    private sealed record Message(string I, string C, string[] T);

    private async Task SendAsync(CancellationToken ct)
    {
        try
        {
            while (await _outbox.Reader.WaitToReadAsync(ct))
            {
                try
                {
                    await using var connection = await database.DataSource.OpenConnectionAsync(ct);
                    while (_outbox.Reader.TryRead(out var item))
                        foreach (var payload in Payloads(item.Change, item.Tenants))
                        {
                            await using var cmd = new NpgsqlCommand("SELECT pg_notify(@c, @p)", connection);
                            cmd.Parameters.AddWithValue("c", ChannelName);
                            cmd.Parameters.AddWithValue("p", payload);
                            await cmd.ExecuteNonQueryAsync(ct);
                        }
                }
                catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException or TimeoutException)
                {
                    logger.LogWarning("Changes could not be sent to the other instances ({Error}); their pages refresh at the next change", ex.GetBaseException().Message);
                    await Task.Delay(TimeSpan.FromSeconds(1), ct);
                }
            }
        }
        catch (OperationCanceledException) { }
    }

    private IEnumerable<string> Payloads(TenantChange change, IReadOnlyCollection<string> tenants)
    {
        var batch = new List<string>();
        var bytes = 0;
        foreach (var tenant in tenants)
        {
            if (batch.Count > 0 && bytes + tenant.Length * 3 + 3 > MaxPayloadBytes)
            {
                yield return JsonSerializer.Serialize(new Message(_instance, change.ToString(), batch.ToArray()));
                batch.Clear();
                bytes = 0;
            }
            batch.Add(tenant);
            bytes += tenant.Length * 3 + 3;
        }
        if (batch.Count > 0) yield return JsonSerializer.Serialize(new Message(_instance, change.ToString(), batch.ToArray()));
    }

    private async Task ListenAsync(CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                // From the pool of connections that are not shared (PostgresDatabase.LeaseDataSource), which resets a
                // connection it takes back: the main pool does not, and a connection that still listens must not be handed out.
                await using var connection = await database.LeaseDataSource.OpenConnectionAsync(ct);
                connection.Notification += (_, e) => Receive(e.Payload);
                await using (var listen = new NpgsqlCommand($"LISTEN {ChannelName}", connection)) await listen.ExecuteNonQueryAsync(ct);
                while (!ct.IsCancellationRequested) await connection.WaitAsync(ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException or TimeoutException or IOException)
            {
                logger.LogWarning("Listening for the other instances' changes stopped ({Error}); listening again in 1 s", ex.GetBaseException().Message);
                try { await Task.Delay(TimeSpan.FromSeconds(1), ct); } catch (OperationCanceledException) { return; }
            }
        }
    }

    private void Receive(string payload)
    {
        try
        {
            var message = JsonSerializer.Deserialize<Message>(payload);
            if (message is null || message.I == _instance || !Enum.TryParse<TenantChange>(message.C, out var change)) return;
            changes.PublishFromAnotherInstance(change, message.T);
        }
        catch (JsonException)
        {
            logger.LogWarning("A notification on {Channel} was not one of ours: {Payload}", ChannelName, payload.Length > 200 ? payload[..200] : payload);
        }
    }
}
