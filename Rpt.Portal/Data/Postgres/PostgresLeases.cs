using Medallion.Threading.Postgres;
using Npgsql;

namespace Rpt.Portal.Data.Postgres;

/// <summary>
/// Leases on PostgreSQL: a session-level advisory lock per kind of work, each on a connection of its own, taken with
/// the DistributedLock library on a connection this class opens and keeps. The holder keeps it until its process stops
/// or its connection dies; PostgreSQL then frees the lock (kill -9 closes the socket, which the idle backend sees at
/// once), and the next instance to ask takes it at its own next tick.
/// <para>
/// Each tick of the work asks again, and the lease's connection answers a <c>SELECT 1</c>: a connection that cannot is
/// lost, and the lease is let go and asked for again. The library could watch the connection itself (its handle's
/// lost token), but it does so with a query that sleeps for a minute at a time, and a running query holds back
/// PostgreSQL's horizon for removing dead rows: the rows ingestion updates many times a second (running totals,
/// each key's, project's and end user's use) then grew a minute of dead versions that neither vacuum nor page pruning
/// could remove, and every read of them walked those versions (docs/PERFORMANCE.md).
/// </para>
/// </summary>
public sealed class PostgresLeases(PostgresDatabase database, ILogger<PostgresLeases> logger) : IWorkLeases, IAsyncDisposable
{
    private readonly Dictionary<string, (NpgsqlConnection Connection, PostgresDistributedLockHandle Handle)> _held = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _gate = new(1, 1);

    public async ValueTask<bool> HoldAsync(string work, CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (_held.TryGetValue(work, out var held))
            {
                if (await AliveAsync(held.Connection, cancellationToken)) return true;
                _held.Remove(work);
                logger.LogWarning("The lease of {Work} was lost with its database connection; it is asked for again", work);
                await ReleaseAsync(held);
            }
            var connection = await database.LeaseDataSource.OpenConnectionAsync(cancellationToken);
            try
            {
                var taken = await new PostgresDistributedLock(new PostgresAdvisoryLockKey("rpt-lease:" + work, allowHashing: true), connection)
                    .TryAcquireAsync(TimeSpan.Zero, cancellationToken);
                if (taken is null)
                {
                    await connection.DisposeAsync();
                    return false;
                }
                _held[work] = (connection, taken);
            }
            catch
            {
                await connection.DisposeAsync();
                throw;
            }
            logger.LogInformation("This instance holds the lease of {Work}", work);
            return true;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Whether the lease's connection still answers: a query that ends at once, so it holds back nothing.</summary>
    private static async Task<bool> AliveAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        try
        {
            await using var ping = new NpgsqlCommand("SELECT 1", connection);
            await ping.ExecuteScalarAsync(cancellationToken);
            return true;
        }
        catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException or IOException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _gate.WaitAsync();
        try
        {
            foreach (var held in _held.Values) await ReleaseAsync(held);
            _held.Clear();
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Lets a lease go, then its connection; one whose connection is already gone has nothing left to release.</summary>
    private static async ValueTask ReleaseAsync((NpgsqlConnection Connection, PostgresDistributedLockHandle Handle) held)
    {
        try { await held.Handle.DisposeAsync(); }
        catch (Exception ex) when (ex is System.Data.Common.DbException or InvalidOperationException or IOException) { }
        await held.Connection.DisposeAsync();
    }
}
