using System.Net;
using System.Net.Http.Json;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Rpt.Portal.Observability;

namespace Rpt.Portal.Tests.Api;

/// <summary>
/// An operator's view: the portal counts what it did (exactly, read from this instance's instruments) and serves it
/// with the libraries' metrics as Prometheus text at /metrics, over real HTTP, to the allowed networks only.
/// </summary>
[Trait("Kind", "Http")]
public sealed class MetricsTests
{
    private static object Event(string id, string model = "gpt-4o-mini") =>
        new { id, occurred_at = DateTimeOffset.UtcNow, model, input_tokens = 1000, output_tokens = 100, job_id = "j" };

    [Fact]
    public async Task WhatHappened_IsCounted_AndServedAtMetrics_ToLoopback()
    {
        await using var app = new ApiFactory(fakeClock: false);
        app.UseKestrel(0);
        app.StartServer();
        var metrics = app.Get<PortalMetrics>();
        using var accepted = new MetricCollector<long>(metrics.EventsAccepted);
        using var duplicate = new MetricCollector<long>(metrics.EventsDuplicate);
        using var rejected = new MetricCollector<long>(metrics.EventsRejected);
        using var quota = new MetricCollector<long>(metrics.QuotaChecks);
        using var flushed = new MetricCollector<long>(metrics.FlushedEvents);
        using var batch = new MetricCollector<double>(metrics.BatchDuration);
        var (_, client) = await app.TenantAsync("acme");

        var body = "{\"events\":[" + string.Join(",", new[] { Event("a"), Event("b"), Event("a"), Event("c", "gpt-9") }.Select(e => System.Text.Json.JsonSerializer.Serialize(e)))
            + ",{\"id\":\"d\",\"input_tokens\":\"many\"}]}";
        var response = await client.PostAsync("/v1/usage/events", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        (await client.PostAsJsonAsync("/v1/quota/check", new { estimated_credits = 5 })).EnsureSuccessStatusCode();
        await app.FlushAsync();

        Assert.Equal(2, accepted.GetMeasurementSnapshot().EvaluateAsCounter());
        Assert.Equal(1, duplicate.GetMeasurementSnapshot().EvaluateAsCounter());
        var reasons = rejected.GetMeasurementSnapshot().GroupBy(m => (string?)m.Tags["reason"]).ToDictionary(g => g.Key!, g => g.Sum(m => m.Value));
        Assert.Equal(new Dictionary<string, long> { ["unpriced"] = 1, ["malformed"] = 1 }, reasons);
        Assert.Equal("allowed", Assert.Single(quota.GetMeasurementSnapshot()).Tags["outcome"]);
        Assert.Equal(2, flushed.GetMeasurementSnapshot().EvaluateAsCounter());
        Assert.Single(batch.GetMeasurementSnapshot());

        using var scraper = new HttpClient { BaseAddress = client.BaseAddress };
        var page = await scraper.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        var text = await page.Content.ReadAsStringAsync();
        foreach (var series in new[]
                 {
                     "rpt_events_accepted_total", "rpt_events_duplicate_total", "rpt_events_rejected_total{", "reason=\"unpriced\"",
                     "rpt_ingest_batch_duration_seconds_bucket", "rpt_events_balance_latency_seconds_bucket", "rpt_flush_duration_seconds_bucket",
                     "rpt_flush_unflushed_events", "rpt_flush_lagging_tenants", "rpt_quota_checks_total{", "outcome=\"allowed\"",
                     "http_server_request_duration_seconds_bucket", "dotnet_gc_collections_total",
                 })
            Assert.Contains(series, text);
        Assert.DoesNotContain("acme", text); // no tenant in any label
    }

    [Fact]
    public async Task OutsideTheAllowedNetworks_MetricsIsNotThere()
    {
        await using var app = new ApiFactory(new Dictionary<string, string?> { ["Rpt:Metrics:AllowedNetworks:0"] = "10.0.0.0/8" }, fakeClock: false);
        app.UseKestrel(0);
        app.StartServer();
        using var scraper = new HttpClient { BaseAddress = app.ClientWithKey(null).BaseAddress };
        var page = await scraper.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.NotFound, page.StatusCode);
        Assert.DoesNotContain("rpt_events", await page.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task AnAllowedNetworkThatIsNotOne_StopsTheStart_NamingTheSetting()
    {
        await using var app = new ApiFactory(new Dictionary<string, string?> { ["Rpt:Metrics:AllowedNetworks:0"] = "everyone" });
        var error = Assert.ThrowsAny<Exception>(() => app.CreateClient());
        Assert.Contains("Rpt:Metrics:AllowedNetworks", error.ToString());
    }
}
