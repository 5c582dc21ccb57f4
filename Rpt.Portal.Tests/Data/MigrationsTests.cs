using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;
using Rpt.Portal.Data;

namespace Rpt.Portal.Tests.Data;

/// <summary>The committed migrations and the model agree: before, the initial migration still created
/// usage_events.seq with AUTOINCREMENT while the model and the docs said it was gone.</summary>
[Trait("Kind", "Sqlite")]
[Trait("Engine", "Sqlite")] // SQLite's migrations; PostgresSchemaTests check PostgreSQL's
public class MigrationsTests : IAsyncLifetime
{
    private readonly string _dir = PortalHarness.NewDirectory();
    private PortalHarness _app = default!;

    public async Task InitializeAsync() => _app = await PortalHarness.StartAsync();

    /// <summary>The application's own model (Identity's options decide its tables), over another file.</summary>
    private ApplicationDbContext Context(string file) => new(new DbContextOptionsBuilder<ApplicationDbContext>()
        .UseSqlite($"Data Source={Path.Combine(_dir, file)};Pooling=False").UseSnakeCaseNamingConvention()
        .UseApplicationServiceProvider(_app.Services).Options);

    [Fact]
    public void Model_HasNoChangeThatNoMigrationHolds()
    {
        using var db = Context("pending.db");
        Assert.False(db.Database.HasPendingModelChanges(), "the model has changes no migration holds: add a migration");
    }

    [Fact]
    public async Task Migrations_CreateExactlyTheSchemaTheModelDescribes()
    {
        await using (var migrated = Context("migrated.db")) await migrated.Database.MigrateAsync();
        await using (var created = Context("created.db")) await created.Database.EnsureCreatedAsync();
        var a = Schema("migrated.db");
        var b = Schema("created.db");
        Assert.Equal(b.Keys.Order(), a.Keys.Order());
        foreach (var table in b.Keys) Assert.Equal(b[table], a[table]);
        Assert.DoesNotContain("AUTOINCREMENT", Sql("migrated.db", "SELECT sql FROM sqlite_master WHERE name = 'usage_events'"), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task UpgradeFromTheInitialSchema_KeepsEveryAuditRecordAndItsGuards()
    {
        await using (var db = Context("upgrade.db"))
        {
            await db.GetService<IMigrator>().MigrateAsync("20261123093606_Initial");
        }
        Execute("upgrade.db", """
            INSERT INTO usage_events (tenant_id, event_id, occurred_at, received_at, period_start, provider, model, input_tokens, output_tokens,
              cached_input_tokens, status, internal, billable, price_id, rule_id, cost_usd, micro_credits)
            VALUES ('acme', 'a', 1, 1, '2026-04-01', 'openai', 'gpt-4o', 1, 2, 3, 'succeeded', 0, 1, 1, 1, '0.001', 1200),
                   ('acme', 'b', 2, 2, '2026-04-01', 'openai', 'gpt-4o', 1, 2, 3, 'succeeded', 0, 1, 1, 1, '0.001', 1200);
            """);
        Assert.Contains("AUTOINCREMENT", Sql("upgrade.db", "SELECT sql FROM sqlite_master WHERE name = 'usage_events'"), StringComparison.OrdinalIgnoreCase);

        await using (var db = Context("upgrade.db")) await db.Database.MigrateAsync();
        Assert.Equal("1,a;2,b", Sql("upgrade.db", "SELECT group_concat(seq || ',' || event_id, ';') FROM (SELECT seq, event_id FROM usage_events ORDER BY seq)"));
        Assert.DoesNotContain("AUTOINCREMENT", Sql("upgrade.db", "SELECT sql FROM sqlite_master WHERE name = 'usage_events'"), StringComparison.OrdinalIgnoreCase);
        Assert.Equal("0", Sql("upgrade.db", "SELECT COUNT(*) FROM sqlite_sequence WHERE name LIKE 'usage_events%'"));
        Assert.Throws<SqliteException>(() => Execute("upgrade.db", "UPDATE usage_events SET micro_credits = 0"));
        Assert.Throws<SqliteException>(() => Execute("upgrade.db", "DELETE FROM usage_events"));
        // A repeated id is no longer refused by a unique index (the writer's EventIdIndex keeps ids unique, and the deep
        // verifier checks it): a row missing its required values still is, by the table itself.
        Assert.Throws<SqliteException>(() => Execute("upgrade.db", "INSERT INTO usage_events (tenant_id, event_id, occurred_at, received_at, period_start, provider, input_tokens, output_tokens, cached_input_tokens, status, internal, billable, rule_id, cost_usd) VALUES ('acme', 'c', 1, 1, '2026-04-01', 'openai', 0, 0, 0, 'succeeded', 0, 1, 1, '0')"));
    }

    [Fact]
    public async Task UpgradeToPeriodSums_SumsTheEntriesAlreadyInTheLedger_ByTenantPeriodAndKind()
    {
        await using (var db = Context("sums.db"))
        {
            await db.GetService<IMigrator>().MigrateAsync("20261205205854_AwsMarketplace");
        }
        Execute("sums.db", """
            INSERT INTO ledger_entries (tenant_id, seq, kind, source, amount_micro_credits, period_start, idempotency_key, created_at, prev_hash, hash)
            VALUES ('acme', 1, 'allocation', 'signup', 5000000000, '2026-11-01', 'a1', 1, 'g', 'h1'),
                   ('acme', 2, 'consumption', 'usage', 1200, '2026-11-01', 'c1', 2, 'h1', 'h2'),
                   ('acme', 3, 'consumption', 'usage', 3400, '2026-11-01', 'c2', 3, 'h2', 'h3'),
                   ('acme', 4, 'consumption', 'usage', 700, '2026-12-01', 'c3', 4, 'h3', 'h4'),
                   ('bigco', 1, 'allocation', 'signup', 9000000, '2026-11-01', 'a1', 1, 'g', 'k1');
            """);

        await using (var db = Context("sums.db")) await db.Database.MigrateAsync();
        Assert.Equal("acme 2026-11-01 allocation 5000000000 1;acme 2026-11-01 consumption 4600 2;acme 2026-12-01 consumption 700 1;bigco 2026-11-01 allocation 9000000 1",
            Sql("sums.db", """
                SELECT group_concat(line, ';') FROM (SELECT tenant_id || ' ' || period_start || ' ' || kind || ' ' || micro_credits || ' ' || entries AS line
                FROM ledger_period_sums ORDER BY tenant_id, period_start, kind)
                """));
    }

    /// <summary>Per table: its columns (name, type, not null, key) and its indexes (name, unique, columns).</summary>
    private Dictionary<string, string> Schema(string file)
    {
        var result = new Dictionary<string, string>();
        using var c = new SqliteConnection($"Data Source={Path.Combine(_dir, file)};Pooling=False");
        c.Open();
        var tables = new List<string>();
        using (var r = new SqliteCommand("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN ('sqlite_sequence', '__EFMigrationsHistory', '__EFMigrationsLock') ORDER BY name", c).ExecuteReader())
            while (r.Read()) tables.Add(r.GetString(0));
        foreach (var t in tables)
        {
            var columns = Rows(c, $"SELECT lower(name) || ' ' || type || ' ' || \"notnull\" || ' ' || pk FROM pragma_table_info('{t}') ORDER BY lower(name)");
            var indexes = Rows(c, $"SELECT il.name || ' ' || il.\"unique\" || ' ' || (SELECT group_concat(ii.name) FROM pragma_index_info(il.name) ii) FROM pragma_index_list('{t}') il WHERE il.origin = 'c' ORDER BY il.name");
            result[t] = string.Join("\n", columns) + "\n--\n" + string.Join("\n", indexes);
        }
        return result;
    }

    private static List<string> Rows(SqliteConnection c, string sql)
    {
        var rows = new List<string>();
        using var r = new SqliteCommand(sql, c).ExecuteReader();
        while (r.Read()) rows.Add(r.GetString(0));
        return rows;
    }

    private string Sql(string file, string sql)
    {
        using var c = new SqliteConnection($"Data Source={Path.Combine(_dir, file)};Pooling=False");
        c.Open();
        return Convert.ToString(new SqliteCommand(sql, c).ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) ?? "";
    }

    private void Execute(string file, string sql)
    {
        using var c = new SqliteConnection($"Data Source={Path.Combine(_dir, file)};Pooling=False");
        c.Open();
        new SqliteCommand(sql, c).ExecuteNonQuery();
    }

    public async Task DisposeAsync()
    {
        await _app.DisposeAsync();
        SqliteConnection.ClearAllPools();
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }
}
