using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Rpt.Portal.Ledger;
using Rpt.Portal.Metering;
using Rpt.Portal.Plans;

namespace Rpt.Portal.Data;

public static class DataExtensions
{
    /// <summary>The SQLite database (ConnectionStrings:Rpt, relative paths under the content root) and EF Core over it.</summary>
    public static IHostApplicationBuilder AddPortalData(this IHostApplicationBuilder builder)
    {
        var connectionString = builder.Configuration.GetConnectionString("Rpt")
            ?? throw new InvalidOperationException("ConnectionStrings:Rpt is not set; it names the SQLite database file, e.g. \"Data Source=App_Data/rpt.db\".");
        var database = new SqliteDatabase(connectionString, builder.Environment.ContentRootPath);
        builder.Services.AddSingleton(database);
        builder.Services.AddOptions<DataOptions>().BindConfiguration("Rpt:Data").ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddHostedService<WalCheckpointer>();
        // Keys that protect sign-in cookies live beside the database, so a restart (or a new container on
        // the same volume) does not sign everybody out.
        builder.Services.AddDataProtection()
            .SetApplicationName("Rpt.Portal")
            .PersistKeysToFileSystem(new DirectoryInfo(Path.Combine(Path.GetDirectoryName(database.FilePath)!, "keys")));
        builder.Services.TryAddTimeProvider();
        builder.Services.AddDbContextFactory<ApplicationDbContext>(o => o
            .UseSqlite(database.ConnectionString)
            .UseSnakeCaseNamingConvention()
            .AddInterceptors(new SqlitePragmaInterceptor()));
        return builder;
    }

    private static void TryAddTimeProvider(this IServiceCollection services)
    {
        if (services.All(s => s.ServiceType != typeof(TimeProvider))) services.AddSingleton(TimeProvider.System);
    }

    /// <summary>
    /// Migrates the database, turns on WAL, seeds the plan catalog and the price book on first start,
    /// and records the configured conversion rule as a new version when it differs from the last one.
    /// </summary>
    public static async Task PrepareDatabaseAsync(this IServiceProvider services, CancellationToken cancellationToken = default)
    {
        var database = services.GetRequiredService<SqliteDatabase>();
        await using (var db = await services.GetRequiredService<IDbContextFactory<ApplicationDbContext>>().CreateDbContextAsync(cancellationToken))
        {
            await db.Database.MigrateAsync(cancellationToken);
            database.EnableWal();
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
