using System.Text.Json.Nodes;
using Microsoft.Kiota.Abstractions.Authentication;
using Microsoft.Kiota.Http.HttpClientLibrary;
using Rpt.Portal.Tests.Generated.CreditsApi;
using Rpt.Portal.Tests.Generated.CreditsApi.Models;

namespace Rpt.Portal.Tests.Api;

/// <summary>
/// A C# client generated from the Credits API's document (Kiota: <c>dotnet kiota generate</c>, the command in
/// Generated/README.md) works against the real server: it sends events, reads the balance, pages consumption and reads
/// a validation problem, every answer also checked against the document.
/// </summary>
[Trait("Kind", "Http")]
public sealed class GeneratedClientTests : IAsyncLifetime
{
    private readonly ApiFactory _app = new();
    public Task InitializeAsync() => Task.CompletedTask;
    public async Task DisposeAsync() => await _app.DisposeAsync();

    /// <summary>The client was generated from the document the server serves today; when the contract changes, regenerate it.</summary>
    [Fact]
    public async Task TheGeneratedClient_WasGeneratedFromTheDocumentServedToday()
    {
        var served = JsonNode.Parse(await _app.CreateClient().GetStringAsync("/openapi/v1.json"));
        var snapshot = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(Browser.BrowserFixture.RepositoryRoot(), "Rpt.Portal.Tests", "Generated", "openapi-v1.json")));
        Assert.True(JsonNode.DeepEquals(served, snapshot),
            "The served OpenAPI document differs from Rpt.Portal.Tests/Generated/openapi-v1.json: regenerate the client as Rpt.Portal.Tests/Generated/README.md says.");
    }

    [Fact]
    public async Task TheGeneratedClient_PostsEvents_ReadsTheBalance_AndPagesConsumption()
    {
        _app.Contract = new OpenApiContract(await _app.CreateClient().GetStringAsync("/openapi/v1.json"));
        var (_, http) = await _app.TenantAsync("acme");
        var api = new CreditsApiClient(new HttpClientRequestAdapter(new AnonymousAuthenticationProvider(), httpClient: http) { BaseUrl = http.BaseAddress!.ToString().TrimEnd('/') });
        var now = _app.Time.GetUtcNow();

        long tokens = 0;
        for (var i = 0; i < 3; i++)
        {
            var sent = await api.V1.Usage.Events.PostAsync(new UsageBatchInput
            {
                Events =
                [
                    new UsageEventInput { Id = $"k{i}", OccurredAt = now, Model = "gpt-4o-mini", InputTokens = 3200 + i, OutputTokens = 740, JobId = $"job_{i}" },
                    new UsageEventInput { Id = $"k{i}", OccurredAt = now, Model = "gpt-4o-mini", InputTokens = 3200 + i, OutputTokens = 740, JobId = $"job_{i}" },
                ],
            });
            Assert.Equal((1, 1, 0), (sent!.Accepted, sent.Duplicates, sent.Rejected));
            Assert.Equal(["accepted", "duplicate"], sent.Results!.Select(r => r.Status));
            tokens += 3200 + i + 740;
            await _app.FlushAsync();
        }

        var balance = await api.V1.Credits.Balance.GetAsync();
        Assert.Equal("professional", balance!.Plan);
        Assert.Equal(25_000, balance.Credits!.Allocated);
        Assert.Equal(tokens, balance.Tokens!.Total);
        Assert.Equal(0, balance.Ledger!.UnflushedMicroCredits);

        var first = await api.V1.Credits.Consumption.GetAsync(q => q.QueryParameters.PageSize = 2);
        Assert.Equal(2, first!.Items!.Count);
        Assert.True(first.HasMore);
        var next = await api.V1.Credits.Consumption.GetAsync(q => { q.QueryParameters.PageSize = 2; q.QueryParameters.Cursor = first.NextCursor; });
        Assert.Single(next!.Items!);
        Assert.False(next.HasMore);
        Assert.Equal(3, first.Items.Concat(next.Items!).Select(r => r.Seq).Distinct().Count());

        var problem = await Assert.ThrowsAsync<HttpValidationProblemDetails>(() => api.V1.Credits.Consumption.GetAsync(q => q.QueryParameters.Days = 0));
        Assert.Equal(400, problem.ResponseStatusCode);
        Assert.True(_app.Contract.Violations.IsEmpty, string.Join("\n", _app.Contract.Violations));
    }
}
