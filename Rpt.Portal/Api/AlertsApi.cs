using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Alerts;
using Rpt.Portal.Data;
using Rpt.Portal.Ledger;

namespace Rpt.Portal.Api;

public sealed record AlertRuleRequest(string? Kind, decimal? Threshold, IReadOnlyList<string>? Channels);
public sealed record AlertRuleDto(long Id, string Kind, decimal Threshold, IReadOnlyList<string> Channels, bool Enabled, DateTimeOffset CreatedAt)
{
    public static AlertRuleDto Of(AlertRule r) => new(r.Id, EnumText.ToText(r.Kind), r.Threshold,
        new[] { (AlertChannels.Email, "email"), (AlertChannels.Webhook, "webhook") }.Where(c => r.Channels.HasFlag(c.Item1)).Select(c => c.Item2).ToList(),
        r.Enabled, r.CreatedAt);
}
public sealed record EndpointRequest(string? Url);
/// <param name="Secret">The signing secret: in the answer that creates the endpoint, and never again.</param>
public sealed record EndpointDto(long Id, string Url, bool Enabled, DateTimeOffset CreatedAt, string? Secret = null);
public sealed record DeliveryDto(string MessageId, string Type, int Attempt, int? StatusCode, string? Error, DateTimeOffset At, long DurationMs);

/// <summary>Alert rules and webhook endpoints (key scope <c>admin</c>), as DOMAIN.md's "Alerts" section gives them.</summary>
public static class AlertsApi
{
    public const int MaxRulesPerTenant = 50;

    public static void MapAlertsApi(this IEndpointRouteBuilder app)
    {
        var admin = app.MapGroup("/v1").WithTags("Alerts").RequireApiKey(ApiScopes.Admin).RequireRateLimiting(ApiExtensions.PerKeyPolicy);
        admin.MapGet("/alerts/rules", ListRules).WithName("ListAlertRules").WithSummary("The account's alert rules");
        admin.MapPost("/alerts/rules", CreateRule).WithName("CreateAlertRule").WithSummary("Add an alert rule")
            .WithDescription("kind: percent_consumed (threshold 1–1000 %), credits_remaining, credits_consumed (0–10^12 credits), runway_days (1–366); channels: email, webhook (webhook needs a plan with webhook alerts). A rule fires at most once per billing period.");
        admin.MapDelete("/alerts/rules/{id:long}", DeleteRule).WithName("DeleteAlertRule").WithSummary("Disable an alert rule");
        admin.MapGet("/webhooks/endpoints", ListEndpoints).WithName("ListWebhookEndpoints").WithSummary("The account's webhook endpoints");
        admin.MapPost("/webhooks/endpoints", CreateEndpoint).WithName("CreateWebhookEndpoint").WithSummary("Add a webhook endpoint")
            .WithDescription("The answer holds the endpoint's signing secret (whsec_…), this once. Messages follow the Standard Webhooks specification.");
        admin.MapDelete("/webhooks/endpoints/{id:long}", DeleteEndpoint).WithName("DeleteWebhookEndpoint").WithSummary("Disable a webhook endpoint");
        admin.MapGet("/webhooks/deliveries", ListDeliveries).WithName("ListWebhookDeliveries").WithSummary("Every delivery attempt, newest first (at most 200)");
    }

    private static async Task<Ok<IReadOnlyList<AlertRuleDto>>> ListRules(HttpContext http, EvaluateAlerts alerts) =>
        TypedResults.Ok<IReadOnlyList<AlertRuleDto>>((await alerts.RulesAsync(http.Caller().TenantId!)).Where(r => r.Enabled).Select(AlertRuleDto.Of).ToList());

    private static async Task<Results<Created<AlertRuleDto>, ValidationProblem>> CreateRule(HttpContext http, AlertRuleRequest request,
        EvaluateAlerts alerts, IDbContextFactory<ApplicationDbContext> dbFactory, TimeProvider time, CancellationToken ct)
    {
        var tenant = http.Caller().TenantId!;
        var errors = new Dictionary<string, string[]>();
        if (!EnumText.TryParse<AlertKind>(request.Kind, out var kind))
            errors["kind"] = [$"'{request.Kind}' is not one of: percent_consumed, credits_remaining, credits_consumed, runway_days."];
        var (min, max) = kind switch
        {
            AlertKind.PercentConsumed => (1m, 1_000m),
            AlertKind.RunwayDays => (1m, 366m),
            _ => (0m, 1_000_000_000_000m),
        };
        if (request.Threshold is not { } threshold || threshold < min || threshold > max || decimal.Round(threshold, 2) != threshold)
            errors["threshold"] = [$"must be a number from {min:N0} to {max:N0} with at most 2 decimals."];
        var channels = AlertChannels.None;
        foreach (var c in request.Channels ?? ["email"])
        {
            channels |= c switch
            {
                "email" => AlertChannels.Email,
                "webhook" => AlertChannels.Webhook,
                _ => AlertChannels.None,
            };
            if (c is not ("email" or "webhook")) errors["channels"] = [$"'{c}' is not one of: email, webhook."];
        }
        if (channels == AlertChannels.None && !errors.ContainsKey("channels")) errors["channels"] = ["at least one of: email, webhook."];
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        if (channels.HasFlag(AlertChannels.Webhook))
        {
            var plan = await db.Tenants.Where(t => t.Id == tenant).Join(db.Plans, t => t.PlanCode, p => p.Code, (t, p) => p).FirstAsync(ct);
            if (!plan.Allows("webhook_alerts")) errors["channels"] = [$"webhook alerts are not in the {plan.Name} plan."];
        }
        await alerts.RulesAsync(tenant, ct); // the defaults first, so that a new rule never replaces them
        if (await db.AlertRules.CountAsync(r => r.TenantId == tenant && r.Enabled, ct) >= MaxRulesPerTenant)
            errors["kind"] = [$"at most {MaxRulesPerTenant} rules per account."];
        if (errors.Count > 0) return TypedResults.ValidationProblem(errors);
        var rule = new AlertRule(tenant, kind, request.Threshold!.Value, channels, time.GetUtcNow());
        db.AlertRules.Add(rule);
        await db.SaveChangesAsync(ct);
        return TypedResults.Created($"/v1/alerts/rules/{rule.Id}", AlertRuleDto.Of(rule));
    }

    private static async Task<Results<NoContent, NotFound>> DeleteRule(HttpContext http, long id, IDbContextFactory<ApplicationDbContext> dbFactory, CancellationToken ct)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var rule = await db.AlertRules.FirstOrDefaultAsync(r => r.Id == id && r.TenantId == http.Caller().TenantId && r.Enabled, ct);
        if (rule is null) return TypedResults.NotFound();
        rule.Disable(); // kept, disabled: its firings still name it
        await db.SaveChangesAsync(ct);
        return TypedResults.NoContent();
    }

    private static async Task<Ok<IReadOnlyList<EndpointDto>>> ListEndpoints(HttpContext http, IDbContextFactory<ApplicationDbContext> dbFactory, CancellationToken ct)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        return TypedResults.Ok<IReadOnlyList<EndpointDto>>(await db.WebhookEndpoints.AsNoTracking().Where(e => e.TenantId == http.Caller().TenantId && e.Enabled)
            .OrderBy(e => e.Id).Select(e => new EndpointDto(e.Id, e.Url, e.Enabled, e.CreatedAt, null)).ToListAsync(ct));
    }

    private static async Task<Results<Created<EndpointDto>, ValidationProblem>> CreateEndpoint(HttpContext http, EndpointRequest request, Webhooks webhooks, CancellationToken ct)
    {
        var created = await webhooks.CreateEndpointAsync(http.Caller().TenantId!, request.Url, ct);
        if (created.Error is not null) return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["url"] = [created.Error] });
        var e = created.Endpoint!;
        return TypedResults.Created($"/v1/webhooks/endpoints/{e.Id}", new EndpointDto(e.Id, e.Url, e.Enabled, e.CreatedAt, created.Secret));
    }

    private static async Task<Results<NoContent, NotFound>> DeleteEndpoint(HttpContext http, long id, IDbContextFactory<ApplicationDbContext> dbFactory, CancellationToken ct)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var endpoint = await db.WebhookEndpoints.FirstOrDefaultAsync(e => e.Id == id && e.TenantId == http.Caller().TenantId && e.Enabled, ct);
        if (endpoint is null) return TypedResults.NotFound();
        endpoint.Disable();
        await db.SaveChangesAsync(ct);
        return TypedResults.NoContent();
    }

    private static async Task<Ok<IReadOnlyList<DeliveryDto>>> ListDeliveries(HttpContext http, IDbContextFactory<ApplicationDbContext> dbFactory, CancellationToken ct)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        return TypedResults.Ok<IReadOnlyList<DeliveryDto>>(await db.WebhookAttempts.AsNoTracking().Where(a => a.TenantId == http.Caller().TenantId)
            .OrderByDescending(a => a.Id).Take(200)
            .Select(a => new DeliveryDto(a.MessageId, a.Type, a.Number, a.StatusCode, a.Error, a.At, a.DurationMs)).ToListAsync(ct));
    }
}
