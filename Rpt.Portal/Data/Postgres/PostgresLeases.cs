using System.Collections.Concurrent;
using Medallion.Threading.Postgres;

namespace Rpt.Portal.Data.Postgres;

/// <summary>
/// Leases on PostgreSQL: a session-level advisory lock per kind of work, each on a connection of its own, taken with
/// the DistributedLock library (which keeps the connection alive and tells when it is lost). The holder keeps it until
/// its process stops or its connection dies; PostgreSQL then frees the lock (kill -9 closes the socket; the backend,
/// often inside the library's keepalive sleep, checks its client every 2 s: PostgresDatabase.LeaseDataSource), and
/// the next instance to ask takes it at its own next tick. A lease found lost is let go and asked for again.
/// </summary>
public sealed class PostgresLeases(PostgresDatabase database, ILogger<PostgresLeases> logger) : IWorkLeases, IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, PostgresDistributedLockHandle> _held = new(StringComparer.Ordinal);

    public async ValueTask<bool> HoldAsync(string work, CancellationToken cancellationToken = default)
    {
        if (_held.TryGetValue(work, out var handle))
        {
            if (!handle.HandleLostToken.IsCancellationRequested) return true;
            _held.TryRemove(work, out _);
            logger.LogWarning("The lease of {Work} was lost with its database connection; it is asked for again", work);
            await ReleaseAsync(handle);
        }
        var @lock = new PostgresDistributedLock(new PostgresAdvisoryLockKey("rpt-lease:" + work, allowHashing: true), database.LeaseDataSource,
            o => o.UseMultiplexing(false).KeepaliveCadence(TimeSpan.FromSeconds(10)));
        var taken = await @lock.TryAcquireAsync(TimeSpan.Zero, cancellationToken);
        if (taken is null) return false;
        _held[work] = taken;
        logger.LogInformation("This instance holds the lease of {Work}", work);
        return true;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var handle in _held.Values) await ReleaseAsync(handle);
        _held.Clear();
    }

    /// <summary>Lets a lease go; one whose connection is already gone has nothing left to release.</summary>
    private static async ValueTask ReleaseAsync(PostgresDistributedLockHandle handle)
    {
        try { await handle.DisposeAsync(); }
        catch (Exception ex) when (ex is System.Data.Common.DbException or InvalidOperationException or IOException) { }
    }
}
