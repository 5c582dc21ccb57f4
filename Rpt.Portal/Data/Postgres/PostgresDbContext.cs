using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace Rpt.Portal.Data.Postgres;

/// <summary>
/// The same model on PostgreSQL. A context type of its own, because EF Core keeps one migration history per context
/// and the two engines' migrations differ (types, identity columns, triggers): SQLite's are in Data/Migrations,
/// PostgreSQL's in Data/Postgres/Migrations, and each is checked against the model by the tests.
/// </summary>
public sealed class PostgresDbContext(DbContextOptions<PostgresDbContext> options) : ApplicationDbContext(options)
{
    public static DbContextOptionsBuilder<PostgresDbContext> Configure(DbContextOptionsBuilder<PostgresDbContext> builder, string connectionString) =>
        builder.UseNpgsql(connectionString, o => o.MigrationsHistoryTable("__ef_migrations_history"))
            .UseSnakeCaseNamingConvention();
}

/// <summary>For <c>dotnet ef migrations add … --context PostgresDbContext</c>: adding a migration needs no server.</summary>
public sealed class PostgresDesignTimeFactory : IDesignTimeDbContextFactory<PostgresDbContext>
{
    public PostgresDbContext CreateDbContext(string[] args)
    {
        // Identity's options decide its tables (schema version 3 has passkeys), as they do in the portal.
        var services = new ServiceCollection()
            .Configure<Microsoft.AspNetCore.Identity.IdentityOptions>(o => o.Stores.SchemaVersion = Microsoft.AspNetCore.Identity.IdentitySchemaVersions.Version3)
            .BuildServiceProvider();
        return new(PostgresDbContext.Configure(new DbContextOptionsBuilder<PostgresDbContext>(), "Host=localhost;Database=rpt_design_time")
            .UseApplicationServiceProvider(services).Options);
    }
}
