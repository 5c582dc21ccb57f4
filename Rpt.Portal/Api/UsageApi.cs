using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using Rpt.Portal.Ledger;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Api;

/// <summary>Usage ingestion (for the platform) and usage reports (for the tenant).</summary>
public static class UsageApi
{
    /// <summary>A body larger than this is refused before it is read: 10,000 events of generous size.</summary>
    public const long MaxBodyBytes = 32 * 1024 * 1024;

    public static RouteGroupBuilder MapUsageApi(this IEndpointRouteBuilder app)
    {
        var ingest = app.MapGroup("/v1").WithTags("Ingestion").RequireApiKey(ApiScopes.Ingest, ApiScopes.PlatformIngest)
            .RequireRateLimiting(ApiExtensions.PerKeyPolicy);
        ingest.MapPost("/usage/events", PostEvents).WithName("PostUsageEvents")
            .WithSummary("Send usage events, exactly once per id")
            .WithDescription("Body: {\"events\": [ … ]} with up to 10,000 events, or one event alone. Answered item by item, in the order sent: accepted, duplicate (this id was already counted) or rejected with the reason. Every accepted event is durable before the answer. A tenant key ingests for its tenant; a platform key names tenant_id per event.")
            .Accepts<UsageBatchInput>("application/json")
            .Produces<IngestResult>()
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .WithMetadata(new Microsoft.AspNetCore.Mvc.RequestSizeLimitAttribute(MaxBodyBytes));

        var read = app.MapGroup("/v1").WithTags("Usage").RequireApiKey(ApiScopes.Read).RequireRateLimiting(ApiExtensions.PerKeyPolicy);
        read.MapGet("/usage/tokens", GetTokens).WithName("GetTokenUsage")
            .WithSummary("Token usage, grouped by job, model or feature")
            .WithDescription("Billed, succeeded calls with occurred_at in [from, to); the current billing period by default.");
        read.MapGet("/usage/jobs/{job_id}", GetJob).WithName("ExplainJob")
            .WithSummary("Explain a job: every call and every number behind its credits")
            .WithDescription("Model, tokens, the price version in effect, provider cost, overhead and micro-credits per call, and the ledger entries that charged them.");
        return read;
    }

    public static async Task<IResult> PostEvents(HttpContext http, UsageIngestor ingestor, IOptions<MeteringOptions> options, CancellationToken cancellationToken)
    {
        var max = options.Value.MaxBatchSize;
        if (http.Request.ContentLength > MaxBodyBytes)
            return TooLarge($"The body is {http.Request.ContentLength} bytes; at most {MaxBodyBytes} are accepted. Send at most {max} events per request.");

        byte[] body;
        using (var buffer = new MemoryStream(http.Request.ContentLength is > 0 and <= MaxBodyBytes ? (int)http.Request.ContentLength : 64 * 1024))
        {
            await http.Request.Body.CopyToAsync(buffer, cancellationToken);
            if (buffer.Length > MaxBodyBytes) return TooLarge($"The body is larger than {MaxBodyBytes} bytes.");
            body = buffer.GetBuffer().AsSpan(0, (int)buffer.Length).ToArray();
        }

        List<UsageEventInput?> events;
        try
        {
            if (IsBatch(body))
            {
                var batch = JsonSerializer.Deserialize(body, MeteringJson.Default.UsageBatchInput);
                if (batch?.Events is null) return BadRequest("events must be an array of usage events.", "$.events");
                events = batch.Events;
            }
            else
            {
                events = [JsonSerializer.Deserialize(body, MeteringJson.Default.UsageEventInput)];
            }
        }
        catch (JsonException ex)
        {
            return BadRequest($"The body is not valid usage-event JSON at {ex.Path ?? "$"}: {ex.Message} Nothing in this request was accepted.", ex.Path);
        }
        if (events.Count == 0) return BadRequest("events is empty; send at least one usage event.", "$.events");
        if (events.Count > max) return TooLarge($"The batch has {events.Count} events; at most {max} are accepted per request.");

        var caller = http.Caller();
        try
        {
            var result = await ingestor.IngestAsync(events, caller.TenantId, cancellationToken);
            return TypedResults.Json(result, MeteringJson.Default.IngestResult);
        }
        catch (IngestUnavailableException ex)
        {
            http.Response.Headers.RetryAfter = "1";
            return TypedResults.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "Usage store unavailable", detail: ex.Message);
        }
    }

    public static Results<Ok<TokenUsageSummary>, ValidationProblem> GetTokens(HttpContext http, UsageReports reports, GetBalance balances,
        string? group_by, string? from, string? to, int? page, int? page_size)
    {
        var errors = new Dictionary<string, string[]>();
        var grouping = TokenGrouping.Job;
        if (group_by is not null && !Enum.TryParse(group_by, true, out grouping) || group_by is not null && !Enum.IsDefined(grouping))
            errors["group_by"] = [$"'{group_by}' is not one of: job, model, feature."];
        var tenantId = http.Caller().TenantId!;
        var period = balances.Execute(tenantId)!.Period;
        var fromAt = Instant(errors, "from", from) ?? period.StartInstant;
        var toAt = Instant(errors, "to", to) ?? period.EndInstant;
        if (errors.Count == 0 && toAt <= fromAt) errors["to"] = ["must be after from."];
        CreditsApi.Check(errors, "page", page, 1, int.MaxValue);
        CreditsApi.Check(errors, "page_size", page_size, 1, 500);
        if (errors.Count > 0) return TypedResults.ValidationProblem(errors);
        return TypedResults.Ok(reports.Tokens(tenantId, grouping, fromAt, toAt, page ?? 1, page_size ?? 50));
    }

    public static async Task<Results<Ok<JobExplanation>, ProblemHttpResult>> GetJob(HttpContext http, UsageReports reports, string job_id, CancellationToken cancellationToken)
    {
        // Another tenant's job is answered exactly like a job that does not exist.
        var job = await reports.ExplainJobAsync(http.Caller().TenantId!, job_id, cancellationToken);
        return job is null
            ? TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Job not found", detail: $"No usage was recorded for job '{job_id}'.")
            : TypedResults.Ok(job);
    }

    private static DateTimeOffset? Instant(Dictionary<string, string[]> errors, string field, string? text)
    {
        if (text is null) return null;
        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var value)) return value;
        errors[field] = [$"'{text}' is not an ISO 8601 date or instant."];
        return null;
    }

    /// <summary>A body with a top-level "events" property is a batch; any other object is one event.</summary>
    private static bool IsBatch(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip });
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return false;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("events"u8)) return true;
            reader.Read();
            reader.Skip();
        }
        return false;
    }

    private static ProblemHttpResult BadRequest(string detail, string? path) =>
        TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Invalid usage events", detail: detail,
            extensions: path is null ? null : new Dictionary<string, object?> { ["path"] = path });

    private static ProblemHttpResult TooLarge(string detail) =>
        TypedResults.Problem(statusCode: StatusCodes.Status413PayloadTooLarge, title: "Batch too large", detail: detail);
}
