using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Data.Sqlite;

/// <summary>Registers the SQLite engine: the database file, EF Core over it, its usage store and its WAL checkpointer.</summary>
public static class SqliteStorage
{
    /// <returns>The directory for the data-protection keys: beside the database file.</returns>
    public static string Add(IHostApplicationBuilder builder, string connectionString)
    {
        SqliteDatabase database;
        try
        {
            var csb = new SqliteConnectionStringBuilder(connectionString);
            if (string.IsNullOrWhiteSpace(csb.DataSource)) throw new ArgumentException("it names no Data Source (the database file)");
            database = new SqliteDatabase(connectionString, builder.Environment.ContentRootPath);
        }
        catch (ArgumentException ex)
        {
            throw new StorageSettingException($"ConnectionStrings:Rpt is not a SQLite connection string (Rpt:Data:Provider is Sqlite): {ex.Message}", ex);
        }
        builder.Services.AddSingleton(database);
        builder.Services.AddSingleton<PortalDatabase>(database);
        builder.Services.AddSingleton<IUsageStore, SqliteUsageStore>();
        builder.Services.AddHostedService<WalCheckpointer>();
        builder.Services.AddSingleton<IWorkLeases, SingleInstanceLeases>();
        builder.Services.AddDbContextFactory<ApplicationDbContext>(o => o
            .UseSqlite(database.ConnectionString)
            .UseSnakeCaseNamingConvention()
            .AddInterceptors(new SqlitePragmaInterceptor()));
        return Path.Combine(Path.GetDirectoryName(database.FilePath)!, "keys");
    }
}
