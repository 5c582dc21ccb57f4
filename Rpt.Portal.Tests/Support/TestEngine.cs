using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Rpt.Portal.Data.Postgres;

namespace Rpt.Portal.Tests.Support;

/// <summary>
/// The engine the storage tests run on: SQLite by default; PostgreSQL when RPT_TEST_ENGINE=postgres (test.sh runs every
/// test that touches storage once per engine). On PostgreSQL each harness gets a database of its own in one cluster per
/// test run: the one RPT_TEST_POSTGRES names (its maintenance database's connection string, as test.sh starts it), or
/// one started here on first use and stopped when the test process ends.
/// Tests that check what only one engine has (SQLite's WAL and file, its first release's SQL) carry [Trait("Engine", "Sqlite")].
/// </summary>
public static class TestEngine
{
    public static bool IsPostgres => string.Equals(Environment.GetEnvironmentVariable("RPT_TEST_ENGINE"), "postgres", StringComparison.OrdinalIgnoreCase);

    /// <summary>The settings of a fresh, empty database of the engine under test.</summary>
    /// <remarks>A directory stands for one database: a second harness on the same directory (a restart, a second process)
    /// opens the same database, as it opens the same SQLite file.</remarks>
    public static Dictionary<string, string?> DatabaseSettings(string directory) => IsPostgres
        ? new() { ["Rpt:Data:Provider"] = "Postgres", ["ConnectionStrings:Rpt"] = Databases.GetOrAdd(Path.GetFullPath(directory), _ => NewPostgresDatabase()) }
        : new() { ["ConnectionStrings:Rpt"] = $"Data Source={Path.Combine(directory, "rpt.db")}" };

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> Databases = new();

    /// <summary>A connection of the test's own to the database <paramref name="settings"/> name, as an auditor would open it.</summary>
    public static System.Data.Common.DbConnection Open(IReadOnlyDictionary<string, string?> settings)
    {
        System.Data.Common.DbConnection c = settings.ContainsKey("Rpt:Data:Provider")
            ? new NpgsqlConnection(new NpgsqlConnectionStringBuilder(settings["ConnectionStrings:Rpt"]) { Pooling = false }.ConnectionString)
            : new Microsoft.Data.Sqlite.SqliteConnection(settings["ConnectionStrings:Rpt"] + ";Pooling=False");
        c.Open();
        return c;
    }

    /// <summary>The name artifacts of the engine under test carry: "" on SQLite, "-postgres" on PostgreSQL.</summary>
    public static string Suffix => IsPostgres ? "-postgres" : "";

    private static readonly Lazy<string> Admin = new(StartCluster, LazyThreadSafetyMode.ExecutionAndPublication);
    private static PostgresCluster? _cluster;

    private static string StartCluster()
    {
        if (Environment.GetEnvironmentVariable("RPT_TEST_POSTGRES") is { Length: > 0 } given) return given;
        _cluster = new PostgresCluster();
        _cluster.InitializeAsync().GetAwaiter().GetResult();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => _cluster.DisposeAsync().GetAwaiter().GetResult();
        return _cluster.AdminConnectionString;
    }

    /// <summary>
    /// A fresh database, made from a template that the committed migrations were applied to once per test run: every
    /// harness then starts as the portal does on a database it migrated before (the migrations' history says so, and its
    /// own start-up seeds the catalog with the test's clock). Migrating a database for each harness cost about as much as
    /// the test itself on this pass.
    /// </summary>
    public static string NewPostgresDatabase()
    {
        var admin = new NpgsqlConnectionStringBuilder(Admin.Value) { Pooling = false };
        var name = "rpt_" + Guid.NewGuid().ToString("N")[..12];
        using (var c = new NpgsqlConnection(admin.ConnectionString))
        {
            c.Open();
            using var cmd = new NpgsqlCommand($"CREATE DATABASE {name} TEMPLATE {Template.Value}", c);
            cmd.ExecuteNonQuery();
        }
        return new NpgsqlConnectionStringBuilder(admin.ConnectionString) { Database = name, Pooling = true }.ConnectionString;
    }

    private static readonly Lazy<string> Template = new(CreateTemplate, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Applies the committed migrations to a database of their own, through the portal's context as the portal configures it.</summary>
    private static string CreateTemplate()
    {
        var admin = new NpgsqlConnectionStringBuilder(Admin.Value) { Pooling = false };
        var name = "rpt_template_" + Guid.NewGuid().ToString("N")[..12];
        using (var c = new NpgsqlConnection(admin.ConnectionString))
        {
            c.Open();
            using var cmd = new NpgsqlCommand($"CREATE DATABASE {name}", c);
            cmd.ExecuteNonQuery();
        }
        // Unpooled, so that no connection stays open to it: a database is copied only while nobody is connected to it.
        var target = new NpgsqlConnectionStringBuilder(admin.ConnectionString) { Database = name }.ConnectionString;
        // Identity's options decide its tables, as they do in the portal.
        using var services = new ServiceCollection()
            .Configure<IdentityOptions>(o => o.Stores.SchemaVersion = IdentitySchemaVersions.Version3)
            .BuildServiceProvider();
        using (var db = new PostgresDbContext(PostgresDbContext.Configure(new DbContextOptionsBuilder<PostgresDbContext>(), target)
                   .UseApplicationServiceProvider(services).Options))
            db.Database.Migrate();
        return name;
    }
}
