using System.Data;
using System.Data.Common;
using Npgsql;

namespace Rpt.Portal.Data.Postgres;

/// <summary>
/// The PostgreSQL database: one pooled <see cref="NpgsqlDataSource"/> for the process (multi-host connection strings
/// allowed: <c>Host=a,b;Target Session Attributes=primary</c>). A read that spans statements is REPEATABLE READ, so it
/// sees one snapshot, as a deferred SQLite transaction does.
/// </summary>
public sealed class PostgresDatabase : PortalDatabase, IDisposable
{
    public PostgresDatabase(string connectionString)
    {
        var csb = new NpgsqlConnectionStringBuilder(connectionString);
        Host = csb.Host ?? "";
        Port = csb.Port;
        Name = csb.Database ?? csb.Username ?? "";
        // The statements sent many times a second (the balance's batch, the quota check's budget statement, a hold's) are
        // prepared on each connection after a few uses, then only bound and run: the server no longer parses and plans them
        // each time. A connection string that names Max Auto Prepare keeps its own (0 turns it off, for a pooler in
        // transaction mode that does not keep prepared statements).
        if (!Names(connectionString, "MaxAutoPrepare")) csb.MaxAutoPrepare = AutoPreparedStatements;
        // A pooled connection is not reset when it is returned: the portal leaves no session state on one (its settings are
        // transaction-local, its advisory locks transaction-scoped or released by their holder, and the change relay's
        // LISTEN is on a connection of the lease pool, which keeps its reset). The reset (RESET ALL, UNLISTEN, DISCARD …) cost PostgreSQL
        // 0.15 ms of its own time on every connection taken, as much as the rest of a quota check's statements together.
        // A connection string that names No Reset On Close keeps its own.
        if (!Names(connectionString, "NoResetOnClose")) csb.NoResetOnClose = true;
        ConnectionString = csb.ConnectionString;
        DataSource = NpgsqlDataSource.Create(csb);
        // A lease's backend is idle between its holder's pings (PostgresLeases) and sees a dead client's closed socket at
        // once; inside a statement it would not notice until the statement ends, so PostgreSQL is asked to check the
        // client's socket every 2 s during a query too.
        var leases = new NpgsqlConnectionStringBuilder(csb.ConnectionString);
        leases.Options = $"{leases.Options} -c client_connection_check_interval={ClientCheckMilliseconds}".Trim();
        LeaseDataSource = NpgsqlDataSource.Create(leases);
    }

    /// <summary>Whether the connection string itself sets <paramref name="key"/>, e.g. Max Auto Prepare (its keys as written, in
    /// any case and spacing; the driver's builder answers its default for a key that was not set, so it cannot tell). Auto
    /// Prepare Min Usages does not count for Max Auto Prepare: it tunes preparing, it does not turn it off.</summary>
    private static bool Names(string connectionString, string key) =>
        new DbConnectionStringBuilder { ConnectionString = connectionString }.Keys.Cast<string>()
            .Any(k => string.Equals(k.Replace(" ", ""), key, StringComparison.OrdinalIgnoreCase));

    /// <summary>Statements kept prepared per connection unless the connection string says otherwise.</summary>
    public const int AutoPreparedStatements = 64;

    /// <summary>How often a lease's backend checks that its client still lives (PostgreSQL's client_connection_check_interval).</summary>
    public const int ClientCheckMilliseconds = 2_000;

    /// <summary>Connections for the leases' session locks (<see cref="PostgresLeases"/>), which must die with their instance, and
    /// the change relay's LISTEN: connections not shared, reset when they go back (the main pool does not reset).</summary>
    public NpgsqlDataSource LeaseDataSource { get; }

    public NpgsqlDataSource DataSource { get; }
    public string ConnectionString { get; }
    public string Host { get; }
    public int Port { get; }
    public string Name { get; }

    public override StorageEngine Engine => StorageEngine.Postgres;

    public override DbConnection Open() => DataSource.OpenConnection();

    public override async ValueTask<DbConnection> OpenAsync(CancellationToken cancellationToken) => await DataSource.OpenConnectionAsync(cancellationToken);

    public override string? CannotWrite(DbConnection connection)
    {
        using var cmd = new NpgsqlCommand("SELECT pg_is_in_recovery()", (NpgsqlConnection)connection);
        return (bool)cmd.ExecuteScalar()! ? "the database answering is a standby (in recovery): it cannot be written" : null;
    }

    public NpgsqlConnection OpenNpgsql() => DataSource.OpenConnection();

    /// <summary>
    /// A connection that failed or broke (Npgsql calls it transient), a server shutting down or starting (57P01–57P03),
    /// too many connections (53300), a connection error (class 08), or a write sent to a standby (25006: the primary
    /// was lost and this host is not promoted yet).
    /// </summary>
    protected override bool IsEngineUnavailable(Exception exception) => exception switch
    {
        PostgresException p => p.SqlState is "57P01" or "57P02" or "57P03" or "53300" or "25006" || p.SqlState.StartsWith("08", StringComparison.Ordinal),
        NpgsqlException n => n.IsTransient,
        _ => false,
    };

    /// <summary>A session advisory lock (DistributedLock.Postgres) on a connection of its own, waited for up to 10 minutes.</summary>
    public override async ValueTask<IAsyncDisposable> HoldStartupLockAsync(CancellationToken cancellationToken) =>
        await new Medallion.Threading.Postgres.PostgresDistributedLock(
                new Medallion.Threading.Postgres.PostgresAdvisoryLockKey("rpt-startup:migrate", allowHashing: true), DataSource, o => o.UseMultiplexing(false))
            .AcquireAsync(TimeSpan.FromMinutes(10), cancellationToken);

    public override DbTransaction BeginRead(DbConnection connection) => connection.BeginTransaction(IsolationLevel.RepeatableRead);

    /// <summary>
    /// BEGIN and COMMIT in the command's text: one round trip. A statement that fails, or a reader disposed before the
    /// COMMIT, leaves the transaction open or failed; Npgsql rolls it back before the connection goes back to its pool.
    /// </summary>
    public override SnapshotRead ReadOneSnapshot(DbConnection connection, string sql) =>
        new(connection.Command(ThenCommit($"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\n{sql}")), null);

    public override async Task<object?> ScalarThenCommitAsync(DbCommand command, DbTransaction transaction, CancellationToken cancellationToken)
    {
        command.CommandText = ThenCommit(command.CommandText);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var value = await reader.ReadAsync(cancellationToken) ? reader.GetValue(0) : null;
        // The COMMIT's own answer, and its error if it failed, come with the next result.
        while (await reader.NextResultAsync(cancellationToken)) { }
        return value;
    }

    /// <summary>The statements, then the COMMIT of the transaction they are in, as one command's text.</summary>
    private static string ThenCommit(string sql) => sql.TrimEnd().TrimEnd(';') + ";\nCOMMIT";

    public override string Describe() => $"{Host}:{Port}/{Name}";

    public void Dispose()
    {
        DataSource.Dispose();
        LeaseDataSource.Dispose();
    }
}
