using Microsoft.EntityFrameworkCore;
using Npgsql;
using Rpt.Portal.Data.Postgres;

namespace Rpt.Portal.Tests.Data;

/// <summary>
/// The PostgreSQL schema, on a real cluster: the committed migrations hold every change of the model, a migrated
/// database equals the model, and the database itself refuses to change an audit record, a ledger entry, a flush
/// run or a price version, as SQLite's triggers do.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Kind", "Postgres")]
public sealed class PostgresSchemaTests(PostgresCluster cluster) : IAsyncLifetime
{
    private PortalHarness _app = default!;

    public async Task InitializeAsync() => _app = await PortalHarness.StartAsync();
    public async Task DisposeAsync() => await _app.DisposeAsync();

    /// <summary>The application's own model (its Identity options decide Identity's tables) on a PostgreSQL database.</summary>
    private PostgresDbContext Context(string connectionString) =>
        new(PostgresDbContext.Configure(new DbContextOptionsBuilder<PostgresDbContext>(), connectionString).UseApplicationServiceProvider(_app.Services).Options);

    [Fact]
    public async Task Model_HasNoChangeThatNoPostgresMigrationHolds()
    {
        await using var db = Context(await cluster.CreateDatabaseAsync());
        Assert.False(db.Database.HasPendingModelChanges(), "the model has changes no PostgreSQL migration holds: add one with --context PostgresDbContext");
    }

    [Fact]
    public async Task Migrations_CreateExactlyTheSchemaTheModelDescribes()
    {
        var migrated = await cluster.CreateDatabaseAsync();
        var created = await cluster.CreateDatabaseAsync();
        await using (var db = Context(migrated)) await db.Database.MigrateAsync();
        await using (var db = Context(created)) await db.Database.EnsureCreatedAsync();
        var a = await SchemaAsync(migrated);
        var b = await SchemaAsync(created);
        Assert.True(b.Count > 30, $"only {b.Count} tables");
        Assert.Equal(b.Keys.Order(), a.Keys.Order());
        foreach (var table in b.Keys) Assert.Equal(b[table], a[table]);
    }

    /// <summary>
    /// The quota check and holds are planned from the statistics of the holds and budgets; a migrated database has autovacuum
    /// analyze those two after a few hundred changed rows, not after a tenth of the table, which a large table reaches late.
    /// </summary>
    [Fact]
    public async Task HoldsAndBudgets_AreAnalyzedAfterAFewHundredChangedRows_HoweverLargeTheTables()
    {
        var database = await cluster.CreateDatabaseAsync();
        await using (var db = Context(database)) await db.Database.MigrateAsync();
        await using var c = new NpgsqlConnection(database);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand(
            "SELECT relname, array_to_string(reloptions, ',') FROM pg_class WHERE relname IN ('credit_reservations', 'budgets') ORDER BY relname", c);
        await using var r = await cmd.ExecuteReaderAsync();
        var options = new List<string>();
        while (await r.ReadAsync()) options.Add($"{r.GetString(0)}: {r.GetString(1)}");
        Assert.Equal(["budgets: autovacuum_analyze_scale_factor=0,autovacuum_analyze_threshold=50",
            "credit_reservations: autovacuum_analyze_scale_factor=0,autovacuum_analyze_threshold=200"], options);
    }

    [Theory]
    [InlineData("usage_events")]
    [InlineData("ledger_entries")]
    [InlineData("flush_runs")]
    [InlineData("prices")]
    public async Task AppendOnlyTables_RefuseUpdateDeleteAndTruncate_NamingTheTable(string table)
    {
        var database = await cluster.CreateDatabaseAsync();
        await using (var db = Context(database)) await db.Database.MigrateAsync();
        await using var c = new NpgsqlConnection(database);
        await c.OpenAsync();
        await ExecAsync(c, table switch
        {
            "usage_events" => """
                INSERT INTO usage_events (tenant_id, event_id, occurred_at, received_at, period_start, provider, model, input_tokens, output_tokens,
                  cached_input_tokens, status, internal, billable, price_id, rule_id, cost_usd, micro_credits)
                VALUES ('acme', 'a', 1, 1, '2026-04-01', 'openai', 'gpt-4o', 1, 2, 3, 'succeeded', false, true, 1, 1, 0.001, 1200)
                """,
            "ledger_entries" => """
                INSERT INTO ledger_entries (tenant_id, seq, kind, source, amount_micro_credits, period_start, idempotency_key, created_at, prev_hash, hash)
                VALUES ('acme', 1, 'allocation', 'signup', 1000000, '2026-04-01', 'signup:acme', 1, 'x', 'y')
                """,
            "flush_runs" => "INSERT INTO flush_runs (through_seq, entries, flushed_at) VALUES (1, 1, 1)",
            _ => "INSERT INTO prices (provider, model, input_per_mtok, output_per_mtok, currency, effective_from) VALUES ('openai', 'gpt-4o', 2.5, 10, 'USD', 1)",
        });
        var column = table == "prices" ? "provider" : table == "flush_runs" ? "entries" : "tenant_id";
        var value = table == "flush_runs" ? "2" : "'other'";
        foreach (var change in new[] { $"UPDATE {table} SET {column} = {value}", $"DELETE FROM {table}", $"TRUNCATE {table}" })
        {
            var refused = await Assert.ThrowsAsync<PostgresException>(() => ExecAsync(c, change));
            Assert.Contains($"{table} is append-only", refused.MessageText);
        }
        await using var count = new NpgsqlCommand($"SELECT COUNT(*) FROM {table}", c);
        Assert.Equal(1L, await count.ExecuteScalarAsync());
    }

    private static async Task ExecAsync(NpgsqlConnection c, string sql)
    {
        await using var cmd = new NpgsqlCommand(sql, c);
        await cmd.ExecuteNonQueryAsync();
    }

    /// <summary>Every table's columns (name, type, nullability, default) and indexes, as PostgreSQL describes them.</summary>
    private static async Task<Dictionary<string, string>> SchemaAsync(string connectionString)
    {
        var schema = new Dictionary<string, List<string>>();
        await using var c = new NpgsqlConnection(connectionString);
        await c.OpenAsync();
        await using (var cmd = new NpgsqlCommand("""
            SELECT table_name, column_name || ' ' || data_type || ' ' || is_nullable || ' ' || COALESCE(character_maximum_length::text, '') || ' ' || COALESCE(column_default, '')
            FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> '__ef_migrations_history'
            UNION ALL
            SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename <> '__ef_migrations_history'
            UNION ALL
            SELECT conrelid::regclass::text, conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = 'public'::regnamespace
              AND conrelid::regclass::text <> '__ef_migrations_history'
            """, c))
        await using (var r = await cmd.ExecuteReaderAsync())
            while (await r.ReadAsync())
            {
                if (!schema.TryGetValue(r.GetString(0), out var list)) schema[r.GetString(0)] = list = [];
                list.Add(r.GetString(1));
            }
        return schema.ToDictionary(kv => kv.Key, kv => string.Join("\n", kv.Value.Order(StringComparer.Ordinal)));
    }
}
