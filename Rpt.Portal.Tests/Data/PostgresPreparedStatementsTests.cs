using Npgsql;
using Rpt.Portal.Data.Postgres;

namespace Rpt.Portal.Tests.Data;

/// <summary>
/// The statements a portal sends many times a second are prepared on their connection after a few uses (the server then
/// skips parsing and planning them); an operator's connection string that sets Max Auto Prepare keeps its own value.
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
