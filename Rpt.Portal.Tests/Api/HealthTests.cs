using System.Net;

namespace Rpt.Portal.Tests.Api;

/// <summary>
/// What a load balancer and an orchestrator ask: /healthz (the process lives) and /readyz (the database answers, its
/// migrations are applied, this instance can write), both without a key, in Production, outside the API's contract.
/// </summary>
[Trait("Kind", "Http")]
public class HealthTests : IAsyncLifetime
{
    private readonly ApiFactory _app = new(environment: "Production");
    public Task InitializeAsync() => Task.CompletedTask;
    public async Task DisposeAsync() => await _app.DisposeAsync();

    [Fact]
    public async Task Healthz_AndReadyz_AnswerWithoutAKey_AndReadyzNamesTheEngine()
    {
        var client = _app.CreateClient();
        var live = await client.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        Assert.Equal("Healthy", await live.Content.ReadAsStringAsync());
        var ready = await client.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.Equal($"Healthy: {(TestEngine.IsPostgres ? "Postgres" : "Sqlite")} answers and can be written", await ready.Content.ReadAsStringAsync());
        // Many probes at once stay cheap and all answer.
        var answers = await Task.WhenAll(Enumerable.Range(0, 200).Select(_ => client.GetAsync("/readyz")));
        Assert.All(answers, a => Assert.Equal(HttpStatusCode.OK, a.StatusCode));
    }

    /// <summary>SQLite's case (a file left read-only by a full or remounted disk); PostgreSQL's (a standby) is the failover test's.</summary>
    [Trait("Engine", "Sqlite")]
    [Fact]
    public async Task Readyz_IsUnavailable_WhenTheDatabaseFileCannotBeWritten_WhileHealthzStaysUp()
    {
        var client = _app.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/readyz")).StatusCode);
        var file = Path.Combine(_app.Directory, "rpt.db");
        File.SetAttributes(file, FileAttributes.ReadOnly);
        try
        {
            _app.Time.Advance(TimeSpan.FromSeconds(2)); // the readiness is read at most once a second
            var ready = await client.GetAsync("/readyz");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
            Assert.Equal($"Unhealthy: the database file {file} is read-only", await ready.Content.ReadAsStringAsync());
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/healthz")).StatusCode);
        }
        finally
        {
            File.SetAttributes(file, FileAttributes.Normal);
        }
        _app.Time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/readyz")).StatusCode); // and back by itself
    }

    [Fact]
    public async Task TheHealthEndpoints_AreNotPartOfTheApiContract()
    {
        var document = await _app.CreateClient().GetStringAsync("/openapi/v1.json");
        Assert.DoesNotContain("/healthz", document);
        Assert.DoesNotContain("/readyz", document);
        Assert.Contains("/v1/credits/balance", document);
    }
}
