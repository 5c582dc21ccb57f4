using Rpt.Portal.Billing;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Api;
using Rpt.Portal.Ledger;
using Rpt.Portal.Metering;
using Rpt.Portal.Tenants;
using Rpt.Portal.Plans;

namespace Rpt.Portal.Data;

/// <summary>
/// The demo tenant of a Development run: a Professional account that started 40 days ago with a few
/// weeks of realistic usage across models, features and jobs, a sign-in and an API key. Seeded once;
/// the credentials are kept beside the database (never committed) so every start can print them.
/// </summary>
public static class DemoData
{
    public const string TenantId = "demo";
    public const string Email = "demo@rpt.local";

    public static async Task<(string Email, string Password, string ApiKey)> EnsureAsync(IServiceProvider services, CancellationToken cancellationToken = default)
    {
        var database = services.GetRequiredService<PortalDatabase>();
        var directory = database.FileDirectory ?? Path.Combine(services.GetRequiredService<IHostEnvironment>().ContentRootPath, "App_Data");
        Directory.CreateDirectory(directory);
        var credentialsFile = Path.Combine(directory, "demo-credentials.txt");
        var dbFactory = services.GetRequiredService<IDbContextFactory<ApplicationDbContext>>();
        await using (var db = await dbFactory.CreateDbContextAsync(cancellationToken))
        {
            if (await db.Tenants.AnyAsync(t => t.Id == TenantId, cancellationToken) && File.Exists(credentialsFile))
            {
                var lines = await File.ReadAllLinesAsync(credentialsFile, cancellationToken);
                return (lines[0], lines[1], lines[2]);
            }
        }

        var time = services.GetRequiredService<TimeProvider>();
        var now = time.GetUtcNow();
        var start = new DateTimeOffset(now.UtcDateTime.Date.AddDays(-40), TimeSpan.Zero);
        var created = await services.GetRequiredService<CreateTenant>().ExecuteAsync("Demo Analytics", "professional", TenantId, start, cancellationToken);
        if (created.Error is not null) throw new InvalidOperationException($"Seeding the demo tenant failed: {created.Error}");

        var apiKey = await services.GetRequiredService<ApiKeyService>().CreateAsync(TenantId, "Demo key", ApiScopes.Read | ApiScopes.Ingest, cancellationToken);
        var password = "Demo-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6)) + "!";
        using (var scope = services.CreateScope())
        {
            var users = scope.ServiceProvider.GetService<UserManager<ApplicationUser>>();
            if (users is not null)
            {
                var user = new ApplicationUser { UserName = Email, Email = Email, EmailConfirmed = true, TenantId = TenantId };
                var result = await users.CreateAsync(user, password);
                if (!result.Succeeded) throw new InvalidOperationException("Seeding the demo user failed: " + string.Join("; ", result.Errors.Select(e => e.Description)));
                await users.AddToRoleAsync(user, Tenants.PortalRoles.Owner);
            }
        }

        var ingestor = services.GetRequiredService<UsageIngestor>();
        foreach (var chunk in Usage(start, now).Chunk(1_000))
            await ingestor.IngestAsync(chunk, TenantId, cancellationToken);
        await services.GetRequiredService<RenewPeriods>().ExecuteAsync(cancellationToken);
        await services.GetRequiredService<FlushUsage>().ExecuteAsync(cancellationToken);

        await File.WriteAllLinesAsync(credentialsFile, [Email, password, apiKey], cancellationToken);
        return (Email, password, apiKey);
    }

    private static readonly (string Provider, string Model, int Weight, int InMin, int InMax, int OutMin, int OutMax)[] Models =
    [
        ("openai", "gpt-4o-mini", 40, 800, 6_000, 100, 900),
        ("openai", "gpt-4o", 12, 1_500, 12_000, 200, 1_500),
        ("google", "gemini-1.5-flash", 22, 2_000, 30_000, 100, 800),
        ("anthropic", "claude-sonnet-4", 8, 2_000, 20_000, 300, 2_500),
        ("anthropic", "claude-3-5-haiku", 10, 500, 4_000, 50, 600),
        ("google", "gemini-2.5-pro", 3, 5_000, 60_000, 500, 3_000),
    ];

    private static readonly string[] Features = ["document_summary", "classification", "extraction", "qa_chat", "benchmarking"];

    private static IEnumerable<UsageEventInput> Usage(DateTimeOffset start, DateTimeOffset now)
    {
        var random = new Random(20261123);
        var totalWeight = Models.Sum(m => m.Weight);
        var n = 0;
        for (var day = start; day < now; day = day.AddDays(1))
        {
            var weekend = day.DayOfWeek is DayOfWeek.Saturday or DayOfWeek.Sunday;
            var growth = 1 + (day - start).TotalDays / 60;
            var jobs = (int)(random.Next(weekend ? 25 : 90, weekend ? 50 : 150) * growth);
            for (var j = 0; j < jobs; j++)
            {
                var feature = Features[random.Next(Features.Length)];
                var jobId = $"job_{day:MMdd}_{j:D3}";
                var at = day.AddMinutes(random.Next(7 * 60, 20 * 60));
                var calls = random.Next(1, 6);
                for (var c = 0; c < calls; c++, n++)
                {
                    at = at.AddSeconds(random.Next(1, 40));
                    if (at > now) yield break;
                    if (feature == "benchmarking" && c == 0 && random.Next(4) == 0)
                    {
                        yield return new UsageEventInput { Id = $"demo_{n}", OccurredAt = at, Provider = "openai", Meter = "image_generation",
                            Quantity = random.Next(1, 4), Feature = feature, JobId = jobId, UserId = $"u_{random.Next(1, 9)}" };
                        continue;
                    }
                    var pick = random.Next(totalWeight);
                    var m = Models.First(x => (pick -= x.Weight) < 0);
                    yield return new UsageEventInput
                    {
                        Id = $"demo_{n}",
                        OccurredAt = at,
                        Provider = m.Provider,
                        Model = m.Model,
                        InputTokens = random.Next(m.InMin, m.InMax),
                        OutputTokens = random.Next(m.OutMin, m.OutMax),
                        CachedInputTokens = random.Next(3) == 0 ? random.Next(0, m.InMin) : 0,
                        Feature = feature,
                        JobId = jobId,
                        UserId = $"u_{random.Next(1, 9)}",
                        Status = random.Next(60) == 0 ? "failed" : "succeeded",
                        Internal = random.Next(40) == 0,
                    };
                }
            }
        }
    }
}
