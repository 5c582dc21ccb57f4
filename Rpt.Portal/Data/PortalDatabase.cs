using System.Data;
using System.Data.Common;
using System.Globalization;

namespace Rpt.Portal.Data;

/// <summary>The engines Rpt Portal stores its data in (Rpt:Data:Provider).</summary>
public enum StorageEngine { Sqlite, Postgres }

/// <summary>
/// The database as the features see it: connections of the abstract ADO.NET types, for SQL that both engines run
/// (named <c>@</c> parameters, <c>TRUE</c>/<c>FALSE</c>, dates bound as <see cref="DateOnly"/>). What differs between the
/// engines (the ingestion writer, query plans, the recomputation SQL, locks) lives in <c>Data/Sqlite</c> and
/// <c>Data/Postgres</c> behind the interfaces the features own (<see cref="Metering.IUsageStore"/>); no type outside
/// those two folders names an engine's client library (DependencyTests).
/// </summary>
public abstract class PortalDatabase
{
    public abstract StorageEngine Engine { get; }

    /// <summary>An open connection; the caller disposes it.</summary>
    public abstract DbConnection Open();

    /// <summary>The same, awaited where the engine is a server (a connection it must make waits without a thread).</summary>
    public virtual ValueTask<DbConnection> OpenAsync(CancellationToken cancellationToken) => ValueTask.FromResult(Open());

    /// <summary>A transaction that reads one snapshot across several statements and writes nothing.</summary>
    public abstract DbTransaction BeginRead(DbConnection connection);

    /// <summary>
    /// Statements that read one snapshot, sent as one command. PostgreSQL begins and commits the read-only transaction in
    /// the command's own text, so the read is one round trip (a transaction object costs one more, for its end); SQLite,
    /// in process, reads in a deferred transaction that ends when the read is disposed. Read every result the statements
    /// answer before disposing.
    /// </summary>
    public virtual SnapshotRead ReadOneSnapshot(DbConnection connection, string sql)
    {
        var tx = BeginRead(connection);
        return new SnapshotRead(connection.Command(sql, tx), tx);
    }

    /// <summary>
    /// The last statement of a write transaction, its one value, and the commit. PostgreSQL sends the COMMIT in the
    /// statement's own command, so the commit costs no round trip of its own (it still waits for the WAL flush before it
    /// answers); the transaction object is then complete, and disposing it does nothing. An error in the statement leaves
    /// the COMMIT unrun and the transaction to be rolled back, as before. SQLite, in process, commits with the transaction
    /// object once the statement is done.
    /// </summary>
    public virtual async Task<object?> ScalarThenCommitAsync(DbCommand command, DbTransaction transaction, CancellationToken cancellationToken)
    {
        var value = await command.ExecuteScalarAsync(cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return value;
    }

    /// <summary>The directory of the database file (SQLite), where files that belong with the data are kept; null for a server.</summary>
    public virtual string? FileDirectory => null;

    /// <summary>What the engine needs once the schema is migrated (SQLite: WAL, a property of the file).</summary>
    public virtual void AfterMigrate() { }

    /// <summary>
    /// Held while an instance migrates and seeds the database at start-up, so that instances started together
    /// (a deployment) migrate it once, one after the other: the second finds nothing left to do. SQLite: nothing
    /// to hold (one machine; its migrations lock the file themselves).
    /// </summary>
    public virtual ValueTask<IAsyncDisposable> HoldStartupLockAsync(CancellationToken cancellationToken) => ValueTask.FromResult<IAsyncDisposable>(NothingHeld.Instance);

    /// <summary>Where this database is, for messages: a file, or a host and database (never a password).</summary>
    /// <summary>
    /// A turn at the engine's write lock for a short interactive write (a hold placed, released or extended), taken before
    /// its transaction begins. SQLite has one write lock per file, which the ingestion writer takes commit after commit: a
    /// caller that only polled for it (the busy timeout) could wait for seconds; with a turn it waits for one commit at
    /// most. PostgreSQL locks rows: nothing to wait for here.
    /// </summary>
    public virtual ValueTask<IDisposable?> TakeWriteTurnAsync(CancellationToken cancellationToken) => ValueTask.FromResult<IDisposable?>(null);

    public abstract string Describe();

    /// <summary>Why this instance cannot write to the database now (a standby, a read-only file), or null when it can.</summary>
    public abstract string? CannotWrite(DbConnection connection);

    /// <summary>
    /// Whether <paramref name="exception"/> (or one it wraps) says the database is away for now, as during a failover,
    /// a restart or a network cut, rather than that the request was wrong: the caller answers "unavailable, retry".
    /// </summary>
    public bool IsUnavailable(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            // An I/O error on the way to the database (a socket reset as it opened) says the same, whoever raised it.
            if (e is TimeoutException or System.Net.Sockets.SocketException or IOException || IsEngineUnavailable(e)) return true;
            if (e is AggregateException aggregate && aggregate.InnerExceptions.Any(IsUnavailable)) return true;
        }
        return false;
    }

    /// <summary>The engine's own errors that mean "away for now" (an exception, not what it wraps).</summary>
    protected abstract bool IsEngineUnavailable(Exception exception);
}

/// <summary>A command that reads one snapshot (<see cref="PortalDatabase.ReadOneSnapshot"/>), with the transaction, if any, that it ends with.</summary>
public sealed class SnapshotRead(DbCommand command, DbTransaction? transaction) : IDisposable
{
    public DbCommand Command => command;

    public void Dispose()
    {
        command.Dispose();
        transaction?.Dispose();
    }
}

/// <summary>
/// Statements of one feature that ride in another's read, in its snapshot and round trip (the quota check's budgets in
/// the balance's batch): their text, their parameters (named apart from the host's), and the reading of their results.
/// </summary>
public interface IBatchedRead
{
    string Sql { get; }
    void Bind(DbCommand command);
    /// <summary>Reads the statements' results; the reader is at the first of them.</summary>
    void Read(DbDataReader reader);
}

/// <summary>What a lock that an engine does not need hands back (SQLite: one process owns the file).</summary>
internal sealed class NothingHeld : IAsyncDisposable
{
    public static readonly NothingHeld Instance = new();
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

/// <summary>Small helpers for portable ADO.NET commands.</summary>
public static class PortableSql
{
    public static DbCommand Command(this DbConnection connection, string sql, DbTransaction? tx = null)
    {
        var cmd = connection.CreateCommand();
        cmd.CommandText = sql;
        cmd.Transaction = tx;
        return cmd;
    }

    /// <summary>Adds <c>@name</c>; a <see cref="DateOnly"/> binds as a date on PostgreSQL and as yyyy-MM-dd text on SQLite, as EF Core stores it.</summary>
    public static DbCommand With(this DbCommand cmd, string name, object? value)
    {
        var p = cmd.CreateParameter();
        p.ParameterName = "@" + name;
        p.Value = value ?? DBNull.Value;
        cmd.Parameters.Add(p);
        return cmd;
    }

    /// <summary>The single integer a query answers (a count, a sum, a maximum); 0 for no row.</summary>
    public static long ScalarLong(this DbCommand cmd) => cmd.ExecuteScalar() is { } v and not DBNull ? Convert.ToInt64(v, CultureInfo.InvariantCulture) : 0;

    /// <summary>The single integer a query answers, inside the caller's transaction.</summary>
    public static long ScalarLong(this DbConnection connection, DbTransaction? tx, string sql)
    {
        using var cmd = connection.Command(sql, tx);
        return cmd.ScalarLong();
    }

    /// <summary>A date column (EF Core's DateOnly: text on SQLite, date on PostgreSQL) as yyyy-MM-dd.</summary>
    public static string GetDay(this DbDataReader r, int ordinal) =>
        r.GetFieldValue<DateOnly>(ordinal).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    public static DateOnly GetDate(this DbDataReader r, int ordinal) => r.GetFieldValue<DateOnly>(ordinal);

    public static DateOnly ParseDay(string day) => DateOnly.ParseExact(day, "yyyy-MM-dd", CultureInfo.InvariantCulture);
}
