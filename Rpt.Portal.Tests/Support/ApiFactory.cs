using Rpt.Portal.Billing;
using System.Net.Http.Headers;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Rpt.Portal.Api;
using Rpt.Portal.Ledger;
using Rpt.Portal.Tenants;
using Rpt.Portal.Plans;

namespace Rpt.Portal.Tests.Support;

/// <summary>The whole server in process, over a real SQLite file, with a fake clock.</summary>
public sealed class ApiFactory : WebApplicationFactory<Program>
{
    private readonly Dictionary<string, string?> _settings;

    private readonly Dictionary<string, string?> _database;
    private readonly bool _fakeClock;
    private readonly string _environment;

    /// <param name="fakeClock">False for browser tests: live pages refresh on the real clock.</param>
    /// <param name="environment">Testing by default; Development for the browser walk, which confirms its account
    /// with the link that Development shows the visitor who registered.</param>
    public ApiFactory(Dictionary<string, string?>? settings = null, bool fakeClock = true, string environment = "Testing",
        Action<IServiceCollection>? services = null)
    {
        _services = services;
        _environment = environment;
        Directory = PortalHarness.NewDirectory();
        _settings = settings ?? [];
        _database = TestEngine.DatabaseSettings(Directory);
        _fakeClock = fakeClock;
    }

    public string Directory { get; }
    public FakeTimeProvider Time { get; } = new(DateTimeOffset.UtcNow);

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment(_environment);
        builder.UseSetting("Rpt:Demo:Enabled", "false");
        // Test mode is Development's default; the Testing environment asks for it, as an operator would, unless Stripe is set.
        if (_environment == "Testing" && !_settings.ContainsKey("Rpt:Stripe:SecretKey")) builder.UseSetting("Rpt:Stripe:TestMode", "true");
        // Serve wwwroot and package assets (MudBlazor) from the build's manifest, as Development does.
        builder.UseStaticWebAssets();
        foreach (var (key, value) in _database) builder.UseSetting(key, value);
        foreach (var (key, value) in _settings) builder.UseSetting(key, value);
        builder.ConfigureLogging(l => l.ClearProviders());
        if (_fakeClock) builder.ConfigureServices(s => s.AddSingleton<TimeProvider>(Time));
        if (_services is not null) builder.ConfigureServices(_services);
    }

    private readonly Action<IServiceCollection>? _services;

    public T Get<T>() where T : notnull => Services.GetRequiredService<T>();

    /// <summary>A connection of the test's own to the database, from outside the server, whichever the engine.</summary>
    public System.Data.Common.DbConnection OpenDb() => TestEngine.Open(_database);

    /// <summary>A tenant and an HTTP client that carries a key with the given scopes.</summary>
    public async Task<(string TenantId, HttpClient Client)> TenantAsync(string id, string plan = "professional",
        ApiScopes scopes = ApiScopes.Read | ApiScopes.Ingest)
    {
        var created = await Get<CreateTenant>().ExecuteAsync(id, plan, id);
        Assert.Null(created.Error);
        return (id, ClientWithKey(await Get<ApiKeyService>().CreateAsync(id, "test", scopes)));
    }

    public async Task<HttpClient> PlatformClientAsync() => ClientWithKey(await Get<ApiKeyService>().CreateAsync(null, "platform", ApiScopes.PlatformIngest));

    /// <summary>When set, every client this factory gives out checks each /v1 answer against the served document.</summary>
    public OpenApiContract? Contract { get; set; }

    public HttpClient ClientWithKey(string? key)
    {
        var client = Contract is null ? CreateClient() : CreateDefaultClient(Contract.Checking());
        if (key is null) return client;
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }

    public Task FlushAsync() => Get<FlushUsage>().ExecuteAsync();

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        SqliteConnection.ClearAllPools();
        try { System.IO.Directory.Delete(Directory, true); } catch (IOException) { }
    }
}
