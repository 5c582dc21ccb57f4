using Microsoft.AspNetCore.DataProtection.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace Rpt.Portal.Data.Postgres;

/// <summary>
/// The same model on PostgreSQL. A context type of its own, because EF Core keeps one migration history per context
/// and the two engines' migrations differ (types, identity columns, triggers): SQLite's are in Data/Migrations,
/// PostgreSQL's in Data/Postgres/Migrations, and each is checked against the model by the tests.
/// </summary>
public sealed class PostgresDbContext(DbContextOptions<PostgresDbContext> options) : ApplicationDbContext(options), IDataProtectionKeyContext
{
    /// <summary>
    /// The keys that protect sign-in cookies and antiforgery tokens, shared by every instance on the database, so a
    /// cookie issued by one is honoured by the others (SQLite, one machine, keeps them as files beside the database).
    /// </summary>
    public DbSet<DataProtectionKey> DataProtectionKeys => Set<DataProtectionKey>();

    public static DbContextOptionsBuilder<PostgresDbContext> Configure(DbContextOptionsBuilder<PostgresDbContext> builder, string connectionString) =>
        builder.UseNpgsql(connectionString, o => o.MigrationsHistoryTable("__ef_migrations_history"))
            .UseSnakeCaseNamingConvention();

    public static DbContextOptionsBuilder Configure(DbContextOptionsBuilder builder, Npgsql.NpgsqlDataSource dataSource) =>
        builder.UseNpgsql(dataSource, o => o.MigrationsHistoryTable("__ef_migrations_history"))
            .UseSnakeCaseNamingConvention();

    /// <summary>
    /// What PostgreSQL needs beyond the shared model. Exactly-once for all time across any number of writers: a unique
    /// index on (tenant_id, event_id) (SQLite's one writer keeps an in-memory index instead, cheaper than a B-tree write
    /// per event). And the job rollups get a <c>rowid</c> column, the stable key SQLite gives every row, which the calls
    /// reference (job_ref) and job pages page by.
    /// </summary>
    /// <summary>
    /// A decimal is written as SQLite's provider writes it (text "0.0###…": no trailing zeros past the first place), so that
    /// a value reads back the same on both engines: numeric keeps the scale it is given, and 0.20 would read back as 0.20
    /// here and 0.2 there. Raw writers (the usage store) write the canonical text of the value on both.
    /// </summary>
    protected override void ConfigureConventions(ModelConfigurationBuilder configurationBuilder)
    {
        base.ConfigureConventions(configurationBuilder);
        configurationBuilder.Properties<decimal>().HaveConversion<SqliteScaleConverter>();
    }

    private sealed class SqliteScaleConverter() : Microsoft.EntityFrameworkCore.Storage.ValueConversion.ValueConverter<decimal, decimal>(
        v => decimal.Parse(v.ToString("0.0###########################", System.Globalization.CultureInfo.InvariantCulture), System.Globalization.CultureInfo.InvariantCulture),
        v => v);

    protected override void OnModelCreating(ModelBuilder builder)
    {
        base.OnModelCreating(builder);
        builder.Entity<Metering.UsageEvent>().HasIndex(e => new { e.TenantId, e.EventId }).IsUnique().HasDatabaseName("ux_usage_events_tenant_event");
        builder.Entity<Metering.UsageJob>().Property<long>("rowid").UseIdentityByDefaultColumn();
        builder.Entity<Metering.UsageJob>().HasIndex("rowid").IsUnique().HasDatabaseName("ux_usage_jobs_rowid");
        // Holds and budgets are read on every quota check and hold, by plans that follow the planner's statistics. By default
        // autovacuum analyzes a table once a tenth of it has changed: a tenant that starts a thousand jobs under holds, or
        // sets a budget for each of its projects, is planned as if it had none until then: with a thousand holds just placed,
        // the balance summed them row by row (1.35 ms in the database; 0.20 ms once analyzed), and a hold's lookup by its key
        // and its release scanned the tenant's holds (1.2 ms; 0.03-0.08 ms). These two tables are analyzed after a few hundred
        // changed rows, at the next autovacuum round (a minute by default), however large they have grown.
        builder.Entity<Ledger.CreditReservation>().HasStorageParameter("autovacuum_analyze_scale_factor", 0).HasStorageParameter("autovacuum_analyze_threshold", 200);
        builder.Entity<Budgets.Budget>().HasStorageParameter("autovacuum_analyze_scale_factor", 0).HasStorageParameter("autovacuum_analyze_threshold", 50);
    }
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
