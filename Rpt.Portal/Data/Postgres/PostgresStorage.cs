using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Npgsql;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Data.Postgres;

/// <summary>Registers the PostgreSQL engine: one data source, EF Core over it (<see cref="PostgresDbContext"/>, its own migrations), its usage store.</summary>
public static class PostgresStorage
{
    /// <returns>No directory: the data-protection keys are kept in the database, shared by every instance.</returns>
    public static string? Add(IHostApplicationBuilder builder, string connectionString)
    {
        PostgresDatabase database;
        try
        {
            var csb = new NpgsqlConnectionStringBuilder(connectionString);
            if (string.IsNullOrWhiteSpace(csb.Host)) throw new ArgumentException("it names no Host");
            database = new PostgresDatabase(connectionString);
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException or KeyNotFoundException or NotSupportedException)
        {
            throw new StorageSettingException($"ConnectionStrings:Rpt is not a PostgreSQL connection string (Rpt:Data:Provider is Postgres): {ex.Message}", ex);
        }
        // Registered by factory, so that the container disposes the data source (and closes its pooled connections) with the host.
        builder.Services.AddSingleton(_ => database);
        builder.Services.AddSingleton<PortalDatabase>(sp => sp.GetRequiredService<PostgresDatabase>());
        builder.Services.AddSingleton<IUsageStore, PostgresUsageStore>();
        // Several instances may share this database: background work takes leases, and changes reach every instance.
        builder.Services.AddSingleton<IWorkLeases, PostgresLeases>();
        builder.Services.AddSingleton<PostgresChangeRelay>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<PostgresChangeRelay>());
        builder.Services.AddDbContextFactory<PostgresDbContext>(o => PostgresDbContext.Configure(o, database.DataSource));
        builder.Services.AddSingleton<IDbContextFactory<ApplicationDbContext>>(sp => new AsApplication(sp.GetRequiredService<IDbContextFactory<PostgresDbContext>>()));
        if (string.IsNullOrEmpty(builder.Configuration["Rpt:Data:KeysDirectory"]))
            builder.Services.AddDataProtection().PersistKeysToDbContext<PostgresDbContext>();
        return null;
    }

    /// <summary>The features ask for <see cref="ApplicationDbContext"/>; on PostgreSQL it is the context with PostgreSQL's migrations.</summary>
    private sealed class AsApplication(IDbContextFactory<PostgresDbContext> inner) : IDbContextFactory<ApplicationDbContext>
    {
        public ApplicationDbContext CreateDbContext() => inner.CreateDbContext();
        public async Task<ApplicationDbContext> CreateDbContextAsync(CancellationToken cancellationToken = default) => await inner.CreateDbContextAsync(cancellationToken);
    }
}
