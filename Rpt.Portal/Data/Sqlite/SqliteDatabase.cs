using System.Data.Common;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace Rpt.Portal.Data.Sqlite;

/// <summary>
/// The one place that knows how Rpt Portal opens its SQLite database: WAL journal, synchronous=FULL
/// (an acknowledged event survives a power cut, not only a killed process) and a busy timeout so that
/// the server and the operator command line can write to the same file at once.
/// </summary>
public sealed class SqliteDatabase : PortalDatabase
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

    public override StorageEngine Engine => StorageEngine.Sqlite;

    public override DbConnection Open() => OpenSqlite();

    /// <summary>A deferred transaction: it takes no lock until it reads, and reads one snapshot (WAL) until it ends.</summary>
    public override DbTransaction BeginRead(DbConnection connection) => ((SqliteConnection)connection).BeginTransaction(deferred: true);

    public override string Describe() => FilePath;

    /// <summary>Turns at the write lock among this process's writers: the ingestion writer takes one per commit, holds and
    /// their releases one per transaction. A waiting hold is served when the current commit ends (waiters on the
    /// synchronous side, the writer, are served before a second asynchronous one), so neither starves the other.</summary>
    internal SemaphoreSlim WriteTurn { get; } = new(1, 1);

    public override async ValueTask<IDisposable?> TakeWriteTurnAsync(CancellationToken cancellationToken)
    {
        await WriteTurn.WaitAsync(cancellationToken);
        return new Turn(WriteTurn);
    }

    private sealed class Turn(SemaphoreSlim gate) : IDisposable
    {
        private int _released;
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0) gate.Release();
        }
    }

    /// <summary>Busy or locked past the busy timeout, a read-only file, an I/O error, a full disk, a file that cannot be opened.</summary>
    protected override bool IsEngineUnavailable(Exception exception) =>
        exception is SqliteException { SqliteErrorCode: 5 or 6 or 8 or 10 or 13 or 14 };

    public override string? CannotWrite(DbConnection connection)
    {
        using var cmd = connection.CreateCommand();
        cmd.CommandText = "PRAGMA query_only";
        if (Convert.ToInt64(cmd.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) != 0) return "the database is open read-only";
        return File.Exists(FilePath) && new FileInfo(FilePath).IsReadOnly ? $"the database file {FilePath} is read-only" : null;
    }

    public override string? FileDirectory => Path.GetDirectoryName(FilePath);

    public override void AfterMigrate() => EnableWal();

    public SqliteConnection OpenSqlite()
    {
        var connection = new SqliteConnection(ConnectionString);
        connection.Open();
        ApplyPragmas(connection);
        return connection;
    }

    public static void ApplyPragmas(DbConnection connection)
    {
        using var cmd = connection.CreateCommand();
        cmd.CommandText = $"PRAGMA synchronous=FULL; PRAGMA busy_timeout=15000; PRAGMA foreign_keys=ON; PRAGMA journal_size_limit={WalFileLimitBytes};";
        cmd.ExecuteNonQuery();
    }

    /// <summary>What a restarted WAL file is cut back to (SQLite's journal_size_limit), on every connection.</summary>
    public const long WalFileLimitBytes = 64L * 1024 * 1024;

    /// <summary>How long a restart of the WAL waits for readers to leave it before the next commit goes on.</summary>
    public const int RestartWaitMilliseconds = 100;

    private int _walRestartDue;
    private long _restarts, _restartsHeldUp, _restartsPassedOver;

    /// <summary>Since start: WAL restarts done, held up by readers or another writer past the wait, and passed over while this process's checkpointer copied.</summary>
    public (long Done, long HeldUp, long PassedOver) WalRestarts => (Interlocked.Read(ref _restarts), Interlocked.Read(ref _restartsHeldUp), Interlocked.Read(ref _restartsPassedOver));

    /// <summary>Whether the WAL has passed its limit and should be started over between two commits of the ingestion writer.</summary>
    public bool WalRestartDue => Volatile.Read(ref _walRestartDue) == 1;

    /// <summary>
    /// Copies committed WAL pages back into the database file without waiting for readers or writers, a few times
    /// while what is left shrinks. Once the WAL holds more than <paramref name="restartAboveBytes"/> it asks for the
    /// WAL to be started over (<see cref="WalRestartDue"/>): SQLite reuses the file from its start only when every
    /// frame was copied back and no reader still reads one, a moment a passive checkpoint never meets while ingestion
    /// commits back to back. Nor can this service wait for it: SQLite's locks are not fair, and a writer that commits
    /// back to back takes the write lock again before a waiting checkpoint does (in a test, 9 of 10 such attempts
    /// failed). Only the
    /// writer has that moment, between its own commits: it calls <see cref="RestartWal"/> there.
    /// </summary>
    public WalCheckpointResult Checkpoint(long restartAboveBytes = long.MaxValue)
    {
        WalCheckpointResult result;
        lock (_copying) result = CopyBack();
        if (result.LogFrames * (_pageSize + WalFrameHeaderBytes) <= restartAboveBytes) return result;
        Volatile.Write(ref _walRestartDue, 1);
        return result with { RestartRequested = true };
    }

    /// <summary>Held while this process copies the WAL back, so that the writer's restart does not queue behind it.</summary>
    private readonly object _copying = new();
    private long _pageSize;

    private WalCheckpointResult CopyBack()
    {
        using var connection = OpenSqlite();
        var result = Checkpoint(connection, "PASSIVE");
        for (var pass = 0; pass < 3; pass++)
        {
            var left = result.LogFrames - result.CopiedFrames;
            if (left == 0) break;
            var next = Checkpoint(connection, "PASSIVE");
            var shrank = next.LogFrames - next.CopiedFrames < left;
            result = next;
            if (!shrank) break; // a reader holds older frames; the next tick tries again
        }
        if (_pageSize == 0) // a property of the file, read once
        {
            using var size = connection.CreateCommand();
            size.CommandText = "PRAGMA page_size;";
            _pageSize = Convert.ToInt64(size.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
        }
        return result;
    }

    /// <summary>
    /// Starts the WAL over from <paramref name="db"/>, a connection of the one writer that holds no transaction: copies
    /// what is left (the passive checkpoints left little) and waits at most <see cref="RestartWaitMilliseconds"/> for
    /// readers to leave the WAL; the next commit then writes from the file's start and cuts it back to
    /// <see cref="WalFileLimitBytes"/>. Readers that began after the copy read the database file and do not hold it up.
    /// While this process's checkpointer is copying it returns at once.
    /// </summary>
    /// <returns>Whether it was started over, held up (it waited, in vain), or passed over at no cost; if not done, a later commit tries again.</returns>
    public WalRestart RestartWal(SQLitePCL.sqlite3 db, int busyTimeoutAfter)
    {
        // While the checkpointer copies, SQLite's checkpoint lock is taken: rather than wait for it, the writer goes on
        // and tries again after a later commit.
        if (!Monitor.TryEnter(_copying))
        {
            Interlocked.Increment(ref _restartsPassedOver);
            return WalRestart.PassedOver;
        }
        SQLitePCL.raw.sqlite3_busy_timeout(db, RestartWaitMilliseconds);
        try
        {
            var rc = SQLitePCL.raw.sqlite3_wal_checkpoint_v2(db, "main", SQLitePCL.raw.SQLITE_CHECKPOINT_RESTART, out _, out _);
            if (rc != SQLitePCL.raw.SQLITE_OK)
            {
                Interlocked.Increment(ref _restartsHeldUp);
                return WalRestart.HeldUp;
            }
            Interlocked.Increment(ref _restarts);
            Volatile.Write(ref _walRestartDue, 0);
            return WalRestart.Done;
        }
        finally
        {
            SQLitePCL.raw.sqlite3_busy_timeout(db, busyTimeoutAfter);
            Monitor.Exit(_copying);
        }
    }

    private const int WalFrameHeaderBytes = 24;

    private static WalCheckpointResult Checkpoint(SqliteConnection connection, string mode)
    {
        using var cmd = connection.CreateCommand();
        cmd.CommandText = $"PRAGMA wal_checkpoint({mode});";
        using var r = cmd.ExecuteReader();
        r.Read();
        return new WalCheckpointResult(r.GetInt64(0) != 0, r.GetInt64(1), r.GetInt64(2), false);
    }

    /// <summary>WAL is a property of the file; it is set once when the database is prepared.</summary>
    public void EnableWal()
    {
        using var connection = OpenSqlite();
        using var cmd = connection.CreateCommand();
        cmd.CommandText = "PRAGMA journal_mode=WAL;";
        var mode = (string?)cmd.ExecuteScalar();
        if (!string.Equals(mode, "wal", StringComparison.OrdinalIgnoreCase))
            throw new InvalidOperationException($"SQLite refused WAL mode for {FilePath} (journal_mode={mode}).");
    }
}

/// <summary>What an attempt to start the WAL over came to.</summary>
public enum WalRestart { Done, HeldUp, PassedOver }

/// <summary>What one checkpoint did: SQLite's answer (busy, frames in the WAL, frames copied back) and whether it asked for the WAL to be started over.</summary>
public sealed record WalCheckpointResult(bool Busy, long LogFrames, long CopiedFrames, bool RestartRequested);

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
