using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Rpt.Portal.Api;

namespace Rpt.Portal.Tests.Api;

[Trait("Kind", "Http")]
public class AlertsApiTests
{
    [Fact]
    public async Task AdminKey_ManagesRulesAndEndpoints_EveryBadValueNamed_AndOtherScopesAreRefused()
    {
        await using var app = new ApiFactory();
        var (_, reader) = await app.TenantAsync("acme", "professional");
        var (_, admin) = await app.TenantAsync("beta", "starter", ApiScopes.Admin);
        var (_, proAdmin) = await app.TenantAsync("gamma", "professional", ApiScopes.Admin);

        Assert.Equal(HttpStatusCode.Forbidden, (await reader.GetAsync("/v1/alerts/rules")).StatusCode);

        var defaults = JsonNode.Parse(await admin.GetStringAsync("/v1/alerts/rules"))!.AsArray();
        Assert.Equal([50m, 75m, 90m], defaults.Select(r => (decimal)r!["threshold"]!));
        Assert.All(defaults, r => Assert.Equal("percent_consumed", (string)r!["kind"]!));

        var created = await admin.PostAsJsonAsync("/v1/alerts/rules", new { kind = "credits_remaining", threshold = 500, channels = new[] { "email" } });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var id = (long)JsonNode.Parse(await created.Content.ReadAsStringAsync())!["id"]!;

        async Task<string> RefusedAsync(HttpClient client, object body)
        {
            var r = await client.PostAsJsonAsync("/v1/alerts/rules", body);
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
            return await r.Content.ReadAsStringAsync();
        }
        Assert.Contains("'gold' is not one of", await RefusedAsync(admin, new { kind = "gold", threshold = 1 }));
        Assert.Contains("\"threshold\"", await RefusedAsync(admin, new { kind = "percent_consumed", threshold = 5000 }));
        Assert.Contains("\"threshold\"", await RefusedAsync(admin, new { kind = "runway_days", threshold = 0.001 }));
        Assert.Contains("'sms' is not one of", await RefusedAsync(admin, new { kind = "percent_consumed", threshold = 60, channels = new[] { "sms" } }));
        Assert.Contains("webhook alerts are not in the Starter plan", await RefusedAsync(admin, new { kind = "percent_consumed", threshold = 60, channels = new[] { "webhook" } }));
        Assert.Equal(HttpStatusCode.Created, (await proAdmin.PostAsJsonAsync("/v1/alerts/rules", new { kind = "percent_consumed", threshold = 60, channels = new[] { "webhook" } })).StatusCode);

        Assert.Equal(HttpStatusCode.NoContent, (await admin.DeleteAsync($"/v1/alerts/rules/{id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.DeleteAsync($"/v1/alerts/rules/{id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await proAdmin.DeleteAsync("/v1/alerts/rules/1")).StatusCode); // another tenant's rule
        Assert.Equal(3, JsonNode.Parse(await admin.GetStringAsync("/v1/alerts/rules"))!.AsArray().Count);

        var privateUrl = await proAdmin.PostAsJsonAsync("/v1/webhooks/endpoints", new { url = "http://127.0.0.1:8080/hook" });
        Assert.Equal(HttpStatusCode.BadRequest, privateUrl.StatusCode);
        Assert.Contains("loopback or private", await privateUrl.Content.ReadAsStringAsync());
        Assert.Empty(JsonNode.Parse(await proAdmin.GetStringAsync("/v1/webhooks/endpoints"))!.AsArray());
        Assert.Empty(JsonNode.Parse(await proAdmin.GetStringAsync("/v1/webhooks/deliveries"))!.AsArray());
    }
}
