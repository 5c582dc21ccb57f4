using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;

namespace Rpt.Portal.Tests.Api;

/// <summary>
/// Every non-2xx answer under /v1 is an RFC 7807 problem naming what was wrong, in Production too, and no
/// input makes the server answer 5xx. Each case here answered with HTML, an empty body or a 500 before.
/// </summary>
[Trait("Kind", "Http")]
public class ApiProblemsTests : IAsyncLifetime
{
    private readonly ApiFactory _app = new(environment: "Production");
    public Task InitializeAsync() => Task.CompletedTask;
    public async Task DisposeAsync() => await _app.DisposeAsync();

    private static async Task<JsonObject> Problem(HttpResponseMessage r, HttpStatusCode status)
    {
        Assert.Equal(status, r.StatusCode);
        Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
        var body = JsonNode.Parse(await r.Content.ReadAsStringAsync())!.AsObject();
        Assert.Equal((int)status, (int)body["status"]!);
        return body;
    }

    [Theory]
    [InlineData("text/plain")]
    [InlineData("application/xml")]
    [InlineData("application/x-www-form-urlencoded")]
    [InlineData("multipart/form-data; boundary=x")]
    public async Task Post_WrongContentType_Is415ProblemNamingTheHeader(string contentType)
    {
        var (_, client) = await _app.TenantAsync("acme");
        foreach (var path in new[] { "/v1/quota/check", "/v1/usage/events" })
        {
            var content = new StringContent("estimated_credits=5", Encoding.UTF8);
            content.Headers.ContentType = System.Net.Http.Headers.MediaTypeHeaderValue.Parse(contentType);
            var problem = await Problem(await client.PostAsync(path, content), HttpStatusCode.UnsupportedMediaType);
            Assert.Contains("Content-Type", (string?)problem["detail"]);
        }
    }

    [Fact]
    public async Task Get_QueryParameterOfTheWrongType_Is400ProblemNamingTheParameter()
    {
        var (_, client) = await _app.TenantAsync("acme");
        var problem = await Problem(await client.GetAsync("/v1/credits/consumption?page=abc"), HttpStatusCode.BadRequest);
        Assert.Contains("page", (string?)problem["detail"]);
        Assert.Contains("abc", (string?)problem["detail"]);
    }

    [Fact]
    public async Task Post_JsonValueOfTheWrongType_Is400ProblemNamingItsPath()
    {
        var (_, client) = await _app.TenantAsync("acme");
        var problem = await Problem(await client.PostAsync("/v1/quota/check", new StringContent("""{"estimated_credits":"x"}""", Encoding.UTF8, "application/json")),
            HttpStatusCode.BadRequest);
        Assert.Equal("$.estimated_credits", (string?)problem["path"]);
    }

    [Fact]
    public async Task UnknownRouteAndWrongMethod_Are404And405Problems()
    {
        var (_, client) = await _app.TenantAsync("acme");
        var notFound = await Problem(await client.GetAsync("/v1/no/such/thing"), HttpStatusCode.NotFound);
        Assert.Contains("/v1/no/such/thing", (string?)notFound["detail"]);
        var wrongMethod = await Problem(await client.DeleteAsync("/v1/credits/balance"), HttpStatusCode.MethodNotAllowed);
        Assert.Contains("GET", (string?)wrongMethod["detail"]);
    }

    [Fact]
    public async Task ServerError_IsA500ProblemWithATraceIdAndNoStackTrace()
    {
        var (_, client) = await _app.TenantAsync("acme");
        using (var c = _app.OpenDb()) c.Command("ALTER TABLE ledger_entries RENAME TO ledger_entries_gone").ExecuteNonQuery();
        var problem = await Problem(await client.GetAsync("/v1/credits/consumption"), HttpStatusCode.InternalServerError);
        Assert.False(string.IsNullOrEmpty((string?)problem["trace_id"]));
        Assert.DoesNotContain(" at Rpt.", (string?)problem["detail"]);
        Assert.DoesNotContain("SQLite", (string?)problem["detail"]);
    }

    [Theory]
    [InlineData("""{"estimated_credits":1e20}""", "estimated_credits")]
    [InlineData("""{"model":"gpt-4o","input_tokens":9223372036854775807}""", "input_tokens")]
    [InlineData("""{"model":"claude-opus-4","output_tokens":1000000000001}""", "output_tokens")]
    [InlineData("""{"model":"claude-opus-4","input_tokens":-1}""", "input_tokens")]
    public async Task QuotaCheck_EstimatePastEveryLimit_Is400NamingTheField(string body, string field)
    {
        var (_, client) = await _app.TenantAsync("acme");
        var response = await client.PostAsync("/v1/quota/check", new StringContent(body, Encoding.UTF8, "application/json"));
        var problem = await Problem(response, HttpStatusCode.BadRequest);
        Assert.NotNull(problem["errors"]![field]);
    }

    [Fact]
    public async Task PostEvents_OneItemOfTheWrongJsonType_IsRejectedAloneNamingItsPath_TheOthersAreAccepted()
    {
        var (_, client) = await _app.TenantAsync("acme");
        var at = _app.Time.GetUtcNow().ToString("O");
        var items = Enumerable.Range(0, 1_000).Select(i => i == 3
            ? $$"""{"id":"e{{i}}","occurred_at":"{{at}}","model":"gpt-4o-mini","input_tokens":"12"}"""
            : $$"""{"id":"e{{i}}","occurred_at":"{{at}}","model":"gpt-4o-mini","input_tokens":12}""");
        var response = await client.PostAsync("/v1/usage/events", new StringContent($$"""{"events":[{{string.Join(",", items)}}]}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal(999, (int)body["accepted"]!);
        Assert.Equal(1, (int)body["rejected"]!);
        var rejected = body["results"]![3]!;
        Assert.Equal(("e3", "rejected"), ((string?)rejected["id"], (string?)rejected["status"]));
        Assert.StartsWith("$.events[3].input_tokens", (string?)rejected["error"]);
    }
}
