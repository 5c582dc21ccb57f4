using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Rpt.Portal.Data.Postgres;
using Rpt.Portal.Data.Sqlite;
using Rpt.Portal.Ledger;
using Rpt.Portal.Metering;
using Rpt.Portal.Plans;

namespace Rpt.Portal.Data;

public static class DataExtensions
{
    /// <summary>
    /// The database named by ConnectionStrings:Rpt, in the engine Rpt:Data:Provider names (Sqlite, the default, or
    /// Postgres), and EF Core over it. A setting that cannot work stops start-up with a <see cref="StorageSettingException"/>.
    /// </summary>
    public static IHostApplicationBuilder AddPortalData(this IHostApplicationBuilder builder)
    {
        var engine = ProviderOf(builder.Configuration);
        var connectionString = builder.Configuration.GetConnectionString("Rpt");
        if (string.IsNullOrWhiteSpace(connectionString))
            throw new StorageSettingException(engine == StorageEngine.Sqlite
                ? "ConnectionStrings:Rpt is not set: it names the SQLite database file, e.g. \"Data Source=App_Data/rpt.db\"."
                : "ConnectionStrings:Rpt is not set: with Rpt:Data:Provider=Postgres it is an Npgsql connection string, e.g. \"Host=db;Database=rpt;Username=rpt\".");
        builder.Services.AddOptions<DataOptions>().BindConfiguration("Rpt:Data").ValidateDataAnnotations().ValidateOnStart();
        builder.Services.TryAddTimeProvider();
        var keys = engine == StorageEngine.Sqlite
            ? SqliteStorage.Add(builder, connectionString)
            : PostgresStorage.Add(builder, connectionString);
        // Keys that protect sign-in cookies outlive a restart (or a new container on the same volume), so nobody is signed
        // out: files beside the SQLite database; on PostgreSQL, a table every instance shares (the engine registers it),
        // unless Rpt:Data:KeysDirectory names a directory (one shared volume, say).
        var protection = builder.Services.AddDataProtection().SetApplicationName("Rpt.Portal");
        if (builder.Configuration["Rpt:Data:KeysDirectory"] is { Length: > 0 } dir)
            protection.PersistKeysToFileSystem(new DirectoryInfo(Path.GetFullPath(Path.Combine(builder.Environment.ContentRootPath, dir))));
        else if (keys is not null)
            protection.PersistKeysToFileSystem(new DirectoryInfo(keys));
        // At rest, the keys are encrypted with a certificate when one is given (a PFX file and its password).
        if (builder.Configuration["Rpt:Data:KeysCertificate"] is { Length: > 0 } pfx)
        {
            try
            {
                protection.ProtectKeysWithCertificate(System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadPkcs12FromFile(
                    Path.GetFullPath(Path.Combine(builder.Environment.ContentRootPath, pfx)), builder.Configuration["Rpt:Data:KeysCertificatePassword"]));
            }
            // Whatever the loader throws means the file cannot be used: a file of random bytes has made it throw more than
            // CryptographicException (the process then died of the unhandled exception, exit code 134, in a CI run).
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                throw new StorageSettingException($"Rpt:Data:KeysCertificate ({pfx}) cannot be read as a PKCS#12 certificate with Rpt:Data:KeysCertificatePassword: {ex.Message}", ex);
            }
        }
        return builder;
    }

    /// <summary>Rpt:Data:Provider: Sqlite when unset.</summary>
    public static StorageEngine ProviderOf(IConfiguration configuration)
    {
        var name = configuration["Rpt:Data:Provider"];
        if (string.IsNullOrWhiteSpace(name)) return StorageEngine.Sqlite;
        return name.Trim().ToLowerInvariant() switch
        {
            "sqlite" => StorageEngine.Sqlite,
            "postgres" or "postgresql" or "npgsql" => StorageEngine.Postgres,
            _ => throw new StorageSettingException($"Rpt:Data:Provider is '{name}': it must be Sqlite (the default) or Postgres."),
        };
    }

    private static void TryAddTimeProvider(this IServiceCollection services)
    {
        if (services.All(s => s.ServiceType != typeof(TimeProvider))) services.AddSingleton(TimeProvider.System);
    }

    /// <summary>
    /// Migrates the database, seeds the plan catalog and the price book on first start, and records the configured
    /// conversion rule as a new version when it differs from the last one. A database that cannot be reached stops
    /// start-up with a <see cref="StorageSettingException"/>.
    /// </summary>
    public static async Task PrepareDatabaseAsync(this IServiceProvider services, CancellationToken cancellationToken = default)
    {
        var database = services.GetRequiredService<PortalDatabase>();
        try
        {
            using (database.Open()) { }
        }
        catch (Exception ex) when (ex is System.Data.Common.DbException or System.Net.Sockets.SocketException or TimeoutException or IOException)
        {
            throw new StorageSettingException($"ConnectionStrings:Rpt: the {database.Engine} database at {database.Describe()} cannot be opened: {ex.GetBaseException().Message.ReplaceLineEndings(" ")}", ex);
        }
        await using (await database.HoldStartupLockAsync(cancellationToken))
        await using (var db = await services.GetRequiredService<IDbContextFactory<ApplicationDbContext>>().CreateDbContextAsync(cancellationToken))
        {
            await db.Database.MigrateAsync(cancellationToken);
            database.AfterMigrate();
            if (!await db.Plans.AnyAsync(cancellationToken)) db.Plans.AddRange(PlanCatalog.Seed());
            foreach (var role in Tenants.PortalRoles.All)
            {
                if (!await db.Roles.AnyAsync(r => r.Name == role, cancellationToken))
                    db.Roles.Add(new Microsoft.AspNetCore.Identity.IdentityRole(role) { NormalizedName = role.ToUpperInvariant() });
            }
            if (!await db.Prices.AnyAsync(cancellationToken)) db.Prices.AddRange(PriceBookSeed.Prices());

            var credits = services.GetRequiredService<IOptions<CreditsOptions>>().Value;
            var last = await db.ConversionRules.OrderByDescending(r => r.EffectiveFrom).ThenByDescending(r => r.Id).FirstOrDefaultAsync(cancellationToken);
            if (last is null)
                db.ConversionRules.Add(new ConversionRule(credits.UsdPerCredit, credits.Overhead, PriceBookSeed.EffectiveFrom));
            else if (last.UsdPerCredit != credits.UsdPerCredit || last.Overhead != credits.Overhead)
                db.ConversionRules.Add(new ConversionRule(credits.UsdPerCredit, credits.Overhead, services.GetRequiredService<TimeProvider>().GetUtcNow()));
            await db.SaveChangesAsync(cancellationToken);
        }
        services.GetRequiredService<PriceBookProvider>().Reload();
    }
}
