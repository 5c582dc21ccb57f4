using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Alerts;
using Rpt.Portal.Data;
using Rpt.Portal.Ledger;

namespace Rpt.Portal.Api;

/// <param name="Recipients">Members' emails for the email channel; none: the owners.</param>
public sealed record AlertRuleRequest(string? Kind, decimal? Threshold, IReadOnlyList<string>? Channels, IReadOnlyList<string>? Recipients = null);
public sealed record AlertRuleDto(long Id, string Kind, decimal Threshold, IReadOnlyList<string> Channels, IReadOnlyList<string> Recipients, bool Enabled,
    DateTimeOffset CreatedAt)
{
    public static AlertRuleDto Of(AlertRule r) => new(r.Id, EnumText.ToText(r.Kind), r.Threshold,
        new[] { (AlertChannels.Email, "email"), (AlertChannels.Webhook, "webhook") }.Where(c => r.Channels.HasFlag(c.Item1)).Select(c => c.Item2).ToList(),
        r.RecipientList, r.Enabled, r.CreatedAt);
}
public sealed record EndpointRequest(string? Url);
/// <param name="Secret">The signing secret: in the answer that creates the endpoint, and never again.</param>
public sealed record EndpointDto(long Id, string Url, bool Enabled, DateTimeOffset CreatedAt, string? Secret = null);
public sealed record DeliveryDto(string MessageId, string Type, int Attempt, int? StatusCode, string? Error, DateTimeOffset At, long DurationMs);

/// <summary>Alert rules and webhook endpoints (key scope <c>admin</c>), as docs/RULES.md's "Alerts" section gives them.</summary>
public static class AlertsApi
{
    public static void MapAlertsApi(this IEndpointRouteBuilder app)
    {
        var admin = app.MapGroup("/v1").WithTags("Alerts").RequireApiKey(ApiScopes.Admin).RateLimitedPerKey();
        admin.MapGet("/alerts/rules", ListRules).WithName("ListAlertRules").WithSummary("The account's alert rules");
        admin.MapPost("/alerts/rules", CreateRule).WithName("CreateAlertRule").WithSummary("Add an alert rule")
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
            .WithDescription("kind: percent_consumed (threshold 1–1000 %), credits_remaining, credits_consumed (0–10^12 credits), runway_days (1–366), anomaly (1.5–100 × the daily mean of the 7 days before; plans with anomaly hints); channels: email, webhook (webhook needs a plan with webhook alerts). A rule fires at most once per billing period.");
        admin.MapDelete("/alerts/rules/{id:long}", DeleteRule).WithName("DeleteAlertRule").WithSummary("Disable an alert rule")
            .ProducesProblem(StatusCodes.Status404NotFound);
        admin.MapGet("/webhooks/endpoints", ListEndpoints).WithName("ListWebhookEndpoints").WithSummary("The account's webhook endpoints");
        admin.MapPost("/webhooks/endpoints", CreateEndpoint).WithName("CreateWebhookEndpoint").WithSummary("Add a webhook endpoint")
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
            .WithDescription("The answer holds the endpoint's signing secret (whsec_…), this once. Messages follow the Standard Webhooks specification.");
        admin.MapDelete("/webhooks/endpoints/{id:long}", DeleteEndpoint).WithName("DeleteWebhookEndpoint").WithSummary("Disable a webhook endpoint")
            .ProducesProblem(StatusCodes.Status404NotFound);
        admin.MapGet("/webhooks/deliveries", ListDeliveries).WithName("ListWebhookDeliveries").WithSummary("Every delivery attempt, newest first (at most 200)");
    }

    private static async Task<Ok<IReadOnlyList<AlertRuleDto>>> ListRules(HttpContext http, EvaluateAlerts alerts) =>
        TypedResults.Ok<IReadOnlyList<AlertRuleDto>>((await alerts.RulesAsync(http.Caller().TenantId!)).Where(r => r.Enabled).Select(AlertRuleDto.Of).ToList());

    private static async Task<Results<Created<AlertRuleDto>, ValidationProblem>> CreateRule(HttpContext http, AlertRuleRequest request,
        EvaluateAlerts alerts, CancellationToken ct)
    {
        var result = await alerts.AddRuleAsync(http.Caller().TenantId!, null, request.Kind, request.Threshold, request.Channels, ct, request.Recipients);
        if (result.Rule is null) return TypedResults.ValidationProblem(new Dictionary<string, string[]> { [result.Field!] = [result.Error!] });
        return TypedResults.Created($"/v1/alerts/rules/{result.Rule.Id}", AlertRuleDto.Of(result.Rule));
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> DeleteRule(HttpContext http, long id, EvaluateAlerts alerts, CancellationToken ct) =>
        await alerts.DisableRuleAsync(http.Caller().TenantId!, null, id, ct) ? TypedResults.NoContent() : NotFound("id", $"the account has no alert rule {id}.");

    private static ProblemHttpResult NotFound(string field, string message) =>
        TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Not found", detail: $"{field}: {message}");

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

    private static async Task<Results<NoContent, ProblemHttpResult>> DeleteEndpoint(HttpContext http, long id, IDbContextFactory<ApplicationDbContext> dbFactory, CancellationToken ct)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var endpoint = await db.WebhookEndpoints.FirstOrDefaultAsync(e => e.Id == id && e.TenantId == http.Caller().TenantId && e.Enabled, ct);
        if (endpoint is null) return NotFound("id", $"the account has no webhook endpoint {id}.");
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
