using Rpt.Portal.Data.Sqlite;
using Microsoft.Extensions.Options;
using Rpt.Portal.Data;

namespace Rpt.Portal.Tests.Data;

/// <summary>
/// What an operator watches on disk: under ingestion that never pauses, with readers always coming and going (the
/// flusher, dashboards), the WAL file stays bounded. A passive checkpoint alone never meets the moment SQLite needs to
/// start the WAL over, and the file grew by every byte ever written (13 GB after 20M events).
/// </summary>
[Trait("Kind", "Sqlite")]
[Trait("Engine", "Sqlite")] // the WAL is SQLite's
public class WalCheckpointTests
{
    private const long RestartAbove = 2L * 1024 * 1024;

    [Fact]
    public async Task SustainedIngestionWithOverlappingReaders_KeepsTheWalBounded_AndLosesNothing()
    {
        var (walMax, databaseBytes, stored, accepted, attempts, restarts) = await RunAsync(RestartAbove);
        Assert.Equal(accepted, stored);
        // The load pushed at least 120 MiB through the WAL into the database, while the WAL file never held more than 32 MiB:
        // the limit plus what about a second of this load writes while a restart waits its turn (a checkpoint tick, the
        // back-off after an attempt that readers held up). With passive checkpoints alone it grew with the data (67 MiB by 48 MiB).
        Assert.True(databaseBytes >= 120L << 20, $"the load wrote only {databaseBytes >> 20} MiB; it must be heavy enough to show growth");
        Assert.True(walMax <= 32L << 20, $"the WAL file reached {walMax >> 20} MiB under a restart limit of {RestartAbove >> 20} MiB ({attempts} restarts asked for; done, held up, passed over: {restarts})");
    }

    [Fact]
    public async Task AWalPastItsLimit_IsStartedOverByTheWriterBetweenCommits_AndTheDatabaseReadsTheSame()
    {
        await using var app = await PortalHarness.StartAsync();
        await app.CreateTenantAsync("acme");
        var events = Enumerable.Range(0, 2_000).Select(_ => Events.Call(Guid.NewGuid().ToString())).ToArray();
        Assert.Equal(2_000, (await app.IngestAsync("acme", events)).Accepted);
        var database = app.Get<SqliteDatabase>();
        var result = database.Checkpoint(restartAboveBytes: 0);
        Assert.False(result.Busy);
        Assert.Equal(result.LogFrames, result.CopiedFrames);
        Assert.True(result.RestartRequested && database.WalRestartDue);

        // The writer starts the WAL over after its next commit; the commit after that writes from the file's start.
        Assert.Equal(1, (await app.IngestAsync("acme", Events.Call("after-1"))).Accepted);
        for (var wait = 0; wait < 100 && database.WalRestartDue; wait++) await Task.Delay(20); // it does so right after answering
        Assert.False(database.WalRestartDue);
        Assert.Equal(1, (await app.IngestAsync("acme", Events.Call("after-2"))).Accepted);
        var after = database.Checkpoint();
        Assert.True(after.LogFrames < result.LogFrames / 10, $"the WAL holds {after.LogFrames} frames after the restart, {result.LogFrames} before");
        Assert.Equal(2_002, app.Scalar("SELECT COUNT(*) FROM usage_events"));
        Assert.Equal("ok", Text(app, "PRAGMA integrity_check"));
    }

    [Theory]
    [InlineData("0")]
    [InlineData("8")]
    [InlineData("-1")]
    [InlineData("70000")]
    public async Task Startup_AWalLimitOutOfRange_StopsWithAMessageNamingTheSettingAndItsRange(string value)
    {
        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => StartWithAsync(value));
        Assert.Contains("Rpt:Data:WalRestartMiB must be between 16 and 65536.", ex.Message);
    }

    [Fact]
    public async Task Startup_AWalLimitThatIsNotANumber_StopsWithAMessageNamingTheSetting()
    {
        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => StartWithAsync("lots"));
        Assert.Contains("'Rpt:Data:WalRestartMiB'", ex.Message);
    }

    private static async Task StartWithAsync(string walRestartMiB)
    {
        await using var h = await PortalHarness.StartAsync(new Dictionary<string, string?> { ["Rpt:Data:WalRestartMiB"] = walRestartMiB });
        await h.App.StartAsync();
    }

    private static string Text(PortalHarness app, string sql)
    {
        using var c = app.OpenRaw();
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        return (string)cmd.ExecuteScalar()!;
    }

    private static async Task<(long WalMax, long DatabaseBytes, long Stored, long Accepted, int Attempts, (long, long, long) Restarts)> RunAsync(long restartAbove)
    {
        await using var app = await PortalHarness.StartAsync();
        await app.CreateTenantAsync("acme");
        var database = app.Get<SqliteDatabase>();
        var wal = database.FilePath + "-wal";
        using var stop = new CancellationTokenSource();
        long accepted = 0, walMax = 0;
        var attempts = 0;

        // Four clients that never pause, with random ids and random jobs, as real clients send them.
        var clients = Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var job = Guid.NewGuid().ToString();
                var batch = Enumerable.Range(0, 500).Select(_ => Events.Call(Guid.NewGuid().ToString(), job: job)).ToArray();
                Interlocked.Add(ref accepted, (await app.IngestAsync("acme", batch)).Accepted);
            }
        })).ToArray();
        // Readers that overlap, so that one always holds a snapshot, as open dashboards do; the flusher runs as well.
        var readers = Enumerable.Range(0, 2).Select(r => Task.Run(async () =>
        {
            await Task.Delay(r * 5);
            while (!stop.IsCancellationRequested)
            {
                using var connection = database.OpenSqlite();
                using var tx = connection.BeginTransaction(deferred: true);
                using var cmd = connection.CreateCommand();
                cmd.Transaction = tx;
                cmd.CommandText = "SELECT COUNT(*) FROM usage_totals";
                cmd.ExecuteScalar();
                await Task.Delay(10); // a heavy dashboard read; the flusher's longer reads run too
                tx.Commit();
            }
        })).ToArray();
        var checkpointer = Task.Run(async () =>
        {
            var real = System.Diagnostics.Stopwatch.StartNew();
            while (!stop.IsCancellationRequested)
            {
                var result = database.Checkpoint(restartAbove);
                if (result.RestartRequested) attempts++;
                await Task.Delay(100);
                // The portal's clock (the writer's back-off, the flusher) moves as the real one does.
                app.Time.Advance(real.Elapsed);
                real.Restart();
            }
        });
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(90) && new FileInfo(database.FilePath).Length < 128L << 20)
        {
            if (File.Exists(wal)) walMax = Math.Max(walMax, new FileInfo(wal).Length);
            await Task.Delay(10);
        }
        stop.Cancel();
        await Task.WhenAll([.. clients, .. readers, checkpointer]);
        return (walMax, new FileInfo(database.FilePath).Length, app.Scalar("SELECT COUNT(*) FROM usage_events"), Interlocked.Read(ref accepted), attempts, database.WalRestarts);
    }
}
