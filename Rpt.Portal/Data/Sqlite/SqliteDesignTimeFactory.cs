using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace Rpt.Portal.Data.Sqlite;

/// <summary>
/// For <c>dotnet ef migrations add … --context ApplicationDbContext -o Data/Migrations</c>: without it the tools take the
/// PostgreSQL factory for the base context too (PostgresDbContext is an ApplicationDbContext) and write a PostgreSQL
/// migration into the SQLite folder. Adding a migration needs no file.
/// </summary>
public sealed class SqliteDesignTimeFactory : IDesignTimeDbContextFactory<ApplicationDbContext>
{
    public ApplicationDbContext CreateDbContext(string[] args)
    {
        // Identity's options decide its tables (schema version 3 has passkeys), as they do in the portal.
        var services = new ServiceCollection()
            .Configure<Microsoft.AspNetCore.Identity.IdentityOptions>(o => o.Stores.SchemaVersion = Microsoft.AspNetCore.Identity.IdentitySchemaVersions.Version3)
            .BuildServiceProvider();
        return new(new DbContextOptionsBuilder<ApplicationDbContext>().UseSqlite("Data Source=:memory:").UseSnakeCaseNamingConvention()
            .UseApplicationServiceProvider(services).Options);
    }
}
