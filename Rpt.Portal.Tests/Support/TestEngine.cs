using Npgsql;

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

    public static string NewPostgresDatabase()
    {
        var admin = new NpgsqlConnectionStringBuilder(Admin.Value) { Pooling = false };
        var name = "rpt_" + Guid.NewGuid().ToString("N")[..12];
        using (var c = new NpgsqlConnection(admin.ConnectionString))
        {
            c.Open();
            using var cmd = new NpgsqlCommand($"CREATE DATABASE {name}", c);
            cmd.ExecuteNonQuery();
        }
        return new NpgsqlConnectionStringBuilder(admin.ConnectionString) { Database = name, Pooling = true }.ConnectionString;
    }
}
