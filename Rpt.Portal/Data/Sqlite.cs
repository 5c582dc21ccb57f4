using System.Data.Common;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace Rpt.Portal.Data;

/// <summary>
/// The one place that knows how Rpt Portal opens its SQLite database: WAL journal, synchronous=FULL
/// (an acknowledged event survives a power cut, not only a killed process) and a busy timeout so that
/// the server and the operator command line can write to the same file at once.
/// </summary>
public sealed class SqliteDatabase
{
    public SqliteDatabase(string connectionString, string contentRoot)
    {
        var csb = new SqliteConnectionStringBuilder(connectionString);
        if (!Path.IsPathRooted(csb.DataSource) && csb.DataSource != ":memory:")
        {
            csb.DataSource = Path.GetFullPath(Path.Combine(contentRoot, csb.DataSource));
        }
        var dir = Path.GetDirectoryName(csb.DataSource);
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        csb.Pooling = true;
        ConnectionString = csb.ToString();
        FilePath = csb.DataSource;
    }

    public string ConnectionString { get; }
    public string FilePath { get; }

    public SqliteConnection Open()
    {
        var connection = new SqliteConnection(ConnectionString);
        connection.Open();
        ApplyPragmas(connection);
        return connection;
    }

    public static void ApplyPragmas(DbConnection connection)
    {
        using var cmd = connection.CreateCommand();
        cmd.CommandText = "PRAGMA synchronous=FULL; PRAGMA busy_timeout=15000; PRAGMA foreign_keys=ON;";
        cmd.ExecuteNonQuery();
    }

    /// <summary>
    /// Copies committed WAL pages back into the database file without waiting for readers or writers.
    /// The ingestion writer does not checkpoint on its commits, so this keeps the WAL from growing.
    /// </summary>
    public void Checkpoint()
    {
        using var connection = Open();
        using var cmd = connection.CreateCommand();
        cmd.CommandText = "PRAGMA wal_checkpoint(PASSIVE);";
        cmd.ExecuteNonQuery();
    }

    /// <summary>WAL is a property of the file; it is set once when the database is prepared.</summary>
    public void EnableWal()
    {
        using var connection = Open();
        using var cmd = connection.CreateCommand();
        cmd.CommandText = "PRAGMA journal_mode=WAL;";
        var mode = (string?)cmd.ExecuteScalar();
        if (!string.Equals(mode, "wal", StringComparison.OrdinalIgnoreCase))
            throw new InvalidOperationException($"SQLite refused WAL mode for {FilePath} (journal_mode={mode}).");
    }
}

public static class SqliteCommands
{
    /// <summary>The single integer a query answers (a count, a sum, a maximum), inside the caller's transaction.</summary>
    public static long ScalarLong(this SqliteConnection connection, SqliteTransaction transaction, string sql)
    {
        using var cmd = connection.CreateCommand();
        cmd.Transaction = transaction;
        cmd.CommandText = sql;
        return Convert.ToInt64(cmd.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }
}

/// <summary>Applies the same pragmas to every connection EF Core opens.</summary>
public sealed class SqlitePragmaInterceptor : DbConnectionInterceptor
{
    public override void ConnectionOpened(DbConnection connection, ConnectionEndEventData eventData)
        => SqliteDatabase.ApplyPragmas(connection);

    public override Task ConnectionOpenedAsync(DbConnection connection, ConnectionEndEventData eventData, CancellationToken cancellationToken = default)
    {
        SqliteDatabase.ApplyPragmas(connection);
        return Task.CompletedTask;
    }
}
