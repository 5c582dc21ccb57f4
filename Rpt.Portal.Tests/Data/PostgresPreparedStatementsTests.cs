using Npgsql;
using Rpt.Portal.Data.Postgres;

namespace Rpt.Portal.Tests.Data;

/// <summary>
/// The statements a portal sends many times a second are prepared on their connection after a few uses (the server then
/// skips parsing and planning them), and a connection goes back to the pool without a reset; an operator's connection
/// string that sets Max Auto Prepare or No Reset On Close keeps its own value.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Kind", "Postgres")]
public sealed class PostgresPreparedStatementsTests(PostgresCluster cluster)
{
    [Fact]
    public async Task AStatementRunRepeatedly_IsPreparedOnItsConnection_UnlessTheConnectionStringTurnsItOff()
    {
        var connectionString = await cluster.CreateDatabaseAsync();
        Assert.Equal(1, await PreparedAfterRepeats(connectionString));
        Assert.Equal(0, await PreparedAfterRepeats(connectionString + ";Max Auto Prepare=0"));
        Assert.Equal(0, await PreparedAfterRepeats(connectionString + ";max auto prepare = 0"));
        // Tuning when a statement is prepared does not turn preparing off.
        Assert.Equal(1, await PreparedAfterRepeats(connectionString + ";Auto Prepare Min Usages=3"));
    }

    /// <summary>
    /// A connection goes back to the pool as it is: taking it again costs the server no reset (RESET ALL, DISCARD …, 0.15 ms
    /// of its time on every request), so a setting made for the session is still there. The portal makes none (its
    /// settings are transaction-local); an operator's connection string that sets No Reset On Close keeps its own value.
    /// </summary>
    [Fact]
    public async Task AConnectionTakenAgainFromThePool_IsNotReset_UnlessTheConnectionStringAsks()
    {
        var connectionString = await cluster.CreateDatabaseAsync();
        Assert.Equal("kept", await SessionSettingOnSecondUse(connectionString));
        Assert.Equal("", await SessionSettingOnSecondUse(connectionString + ";No Reset On Close=false"));
    }

    /// <summary>Sets a session setting on a pooled connection, returns it to the pool, takes it again: what the setting is then.</summary>
    private static async Task<string> SessionSettingOnSecondUse(string connectionString)
    {
        using var database = new PostgresDatabase(connectionString);
        int pid;
        await using (var first = database.OpenNpgsql())
        {
            await using var set = new NpgsqlCommand("SELECT set_config('rpt.probe', 'kept', false), pg_backend_pid()", first);
            await using var r = await set.ExecuteReaderAsync();
            await r.ReadAsync();
            pid = r.GetInt32(1);
        }
        await using var second = database.OpenNpgsql();
        await using var get = new NpgsqlCommand("SELECT COALESCE(current_setting('rpt.probe', true), ''), pg_backend_pid()", second);
        await using var r2 = await get.ExecuteReaderAsync();
        await r2.ReadAsync();
        Assert.Equal(pid, r2.GetInt32(1)); // the same connection, from the pool
        return r2.GetString(0);
    }

    /// <summary>Runs one statement ten times on one connection; how many statements of that text the server holds prepared.</summary>
    private static async Task<long> PreparedAfterRepeats(string connectionString)
    {
        using var database = new PostgresDatabase(connectionString);
        await using var connection = database.OpenNpgsql();
        for (var i = 0; i < 10; i++)
        {
            await using var cmd = new NpgsqlCommand("SELECT count(*) FROM pg_class WHERE relname = @t", connection);
            cmd.Parameters.AddWithValue("t", "no_such_relation");
            Assert.Equal(0L, await cmd.ExecuteScalarAsync());
        }
        await using var count = new NpgsqlCommand("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%FROM pg_class WHERE relname = $1%'", connection);
        return (long)(await count.ExecuteScalarAsync())!;
    }
}
