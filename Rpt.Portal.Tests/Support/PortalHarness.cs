using Rpt.Portal.Billing;
using Microsoft.AspNetCore.Builder;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Rpt.Portal.Data;
using Rpt.Portal.Ledger;
using Rpt.Portal.Metering;
using Rpt.Portal.Tenants;
using Rpt.Portal.Plans;

namespace Rpt.Portal.Tests.Support;

/// <summary>
/// Rpt Portal's real services over a real SQLite file in a temporary folder, with a fake clock. Hosted
/// services (flusher, renewals) are not started unless a test starts them, so flushes happen when a
/// test says so.
/// </summary>
public sealed class PortalHarness : IAsyncDisposable
{
    public static readonly DateTimeOffset DefaultStart = new(2026, 4, 1, 8, 0, 0, TimeSpan.Zero);

    private PortalHarness(WebApplication app, FakeTimeProvider time, string directory, bool ownsDirectory)
    {
        App = app;
        Time = time;
        Directory = directory;
        _ownsDirectory = ownsDirectory;
    }

    private readonly bool _ownsDirectory;
    public WebApplication App { get; }
    public IServiceProvider Services => App.Services;
    public FakeTimeProvider Time { get; }
    public string Directory { get; }
    public string DatabasePath => Path.Combine(Directory, "rpt.db");

    public static async Task<PortalHarness> StartAsync(IDictionary<string, string?>? settings = null, DateTimeOffset? start = null,
        string? directory = null, Action<IServiceCollection>? services = null)
    {
        var ownsDirectory = directory is null;
        directory ??= NewDirectory();
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [], EnvironmentName = "Testing", ContentRootPath = directory });
        builder.Logging.ClearProviders();
        var database = TestEngine.DatabaseSettings(directory);
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>(database)
        {
            // Test mode is Development's default; the Testing environment asks for it, as an operator would, unless Stripe is set.
            ["Rpt:Stripe:TestMode"] = settings?.ContainsKey("Rpt:Stripe:SecretKey") == true ? null : "true",
        });
        if (settings is not null) builder.Configuration.AddInMemoryCollection(settings);
        var time = new FakeTimeProvider(start ?? DefaultStart);
        builder.Services.AddSingleton<TimeProvider>(time);
        builder.AddPortal();
        services?.Invoke(builder.Services);
        var app = builder.Build();
        await app.Services.PrepareDatabaseAsync();
        return new PortalHarness(app, time, directory, ownsDirectory);
    }

    public static string NewDirectory()
    {
        var dir = Path.Combine(Path.GetTempPath(), "rpt-tests", Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(dir);
        return dir;
    }

    public T Get<T>() where T : notnull => Services.GetRequiredService<T>();

    public async Task<Tenant> CreateTenantAsync(string id, string plan = "professional")
    {
        var result = await Get<CreateTenant>().ExecuteAsync(id, plan, id);
        Assert.Null(result.Error);
        return result.Tenant!;
    }

    public Task<IngestResult> IngestAsync(string tenantId, params UsageEventInput[] events) =>
        Get<UsageIngestor>().IngestAsync(events, tenantId);

    public Task<FlushOutcome> FlushAsync() => Get<FlushUsage>().ExecuteAsync();

    public Balance Balance(string tenantId) => Get<GetBalance>().Execute(tenantId)!;

    /// <summary>A connection of the test's own, as an auditor with the database file would open it.</summary>
    public SqliteConnection OpenRaw()
    {
        if (TestEngine.IsPostgres) throw new InvalidOperationException("OpenRaw opens the SQLite file: this test checks SQLite and carries [Trait(\"Engine\", \"Sqlite\")].");
        var c = new SqliteConnection($"Data Source={DatabasePath};Pooling=False");
        c.Open();
        return c;
    }

    /// <summary>A connection to the database under test, whichever the engine.</summary>
    public System.Data.Common.DbConnection OpenDb() => Get<Rpt.Portal.Data.PortalDatabase>().Open();

    public long Scalar(string sql)
    {
        using var c = OpenDb();
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        return Convert.ToInt64(cmd.ExecuteScalar());
    }

    public void Execute(string sql)
    {
        using var c = OpenDb();
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    /// <summary>Lifts the append-only guard of <paramref name="tables"/>, as someone with the database's owner rights could: for tests of tampering.</summary>
    public void AllowChanges(params string[] tables) => Execute(string.Concat(tables.Select(t => TestEngine.IsPostgres
        ? $"ALTER TABLE {t} DISABLE TRIGGER USER;"
        : $"DROP TRIGGER IF EXISTS {t}_no_update; DROP TRIGGER IF EXISTS {t}_no_delete;")));

    /// <summary>Makes inserts into <paramref name="table"/> fail where <paramref name="when"/> (over NEW) holds: a disk that says no.</summary>
    public void FailInserts(string table, string when) => Execute(TestEngine.IsPostgres
        ? $$"""
            CREATE OR REPLACE FUNCTION rpt_test_fault() RETURNS trigger LANGUAGE plpgsql AS $f$
            BEGIN IF {{when}} THEN RAISE EXCEPTION 'disk says no'; END IF; RETURN NEW; END $f$;
            CREATE TRIGGER fault BEFORE INSERT ON {{table}} FOR EACH ROW EXECUTE FUNCTION rpt_test_fault();
            """
        : $"CREATE TRIGGER fault BEFORE INSERT ON {table} WHEN {when} BEGIN SELECT RAISE(ABORT, 'disk says no'); END;");

    /// <summary>Ends <see cref="FailInserts"/>.</summary>
    public void StopFailingInserts(string table) => Execute(TestEngine.IsPostgres ? $"DROP TRIGGER fault ON {table};" : "DROP TRIGGER fault;");

    public async ValueTask DisposeAsync()
    {
        await App.DisposeAsync();
        SqliteConnection.ClearAllPools();
        if (_ownsDirectory)
        {
            try { System.IO.Directory.Delete(Directory, recursive: true); } catch (IOException) { }
        }
    }
}

/// <summary>Usage events as a platform would send them.</summary>
public static class Events
{
    public static UsageEventInput Call(string id, string model = "gpt-4o-mini", long input = 3200, long output = 740, long cached = 0,
        DateTimeOffset? at = null, string? provider = null, string status = "succeeded", bool @internal = false,
        string? job = "job_1", string? feature = "document_summary", string? tenant = null) => new()
        {
            Id = id,
            TenantId = tenant,
            OccurredAt = at ?? PortalHarness.DefaultStart,
            Provider = provider,
            Model = model,
            InputTokens = input,
            OutputTokens = output,
            CachedInputTokens = cached,
            Feature = feature,
            JobId = job,
            UserId = "u_42",
            Status = status,
            Internal = @internal,
        };

    public static UsageEventInput Meter(string id, string meter, decimal quantity, string provider = "openai", DateTimeOffset? at = null,
        string? job = "job_1") => new()
        {
            Id = id,
            OccurredAt = at ?? PortalHarness.DefaultStart,
            Provider = provider,
            Meter = meter,
            Quantity = quantity,
            JobId = job,
            Feature = "image_generation",
        };
}
