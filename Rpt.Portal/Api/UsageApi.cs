using System.Buffers;
using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using Rpt.Portal.Ledger;
using Rpt.Portal.Metering;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Api;

/// <summary>Usage ingestion (for the platform) and usage reports (for the tenant).</summary>
public static class UsageApi
{
    /// <summary>A body larger than this is refused before it is read: 10,000 events of generous size.</summary>
    public const long MaxBodyBytes = 32 * 1024 * 1024;

    public static RouteGroupBuilder MapUsageApi(this IEndpointRouteBuilder app)
    {
        var ingest = app.MapGroup("/v1").WithTags("Ingestion").RequireApiKey(ApiScopes.Ingest, ApiScopes.PlatformIngest)
            .RateLimitedPerKey();
        ingest.MapPost("/usage/events", PostEvents).WithName("PostUsageEvents")
            .WithSummary("Send usage events, exactly once per id")
            .WithDescription("Body: {\"events\": [ … ]} with up to 10,000 events, or one event alone. Answered item by item, in the order sent: accepted, duplicate (this id was already counted) or rejected with the reason. Every accepted event is durable before the answer. A tenant key ingests for its tenant; a platform key names tenant_id per event.")
            .Accepts<UsageBatchInput>("application/json")
            .Produces<IngestResult>()
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
            .WithMetadata(new Microsoft.AspNetCore.Mvc.RequestSizeLimitAttribute(MaxBodyBytes));

        var read = app.MapGroup("/v1").WithTags("Usage").RequireApiKey(ApiScopes.Read).RateLimitedPerKey();
        read.MapGet("/usage/tokens", GetTokens).WithName("GetTokenUsage")
            .WithSummary("Token usage, grouped by job, model or feature")
            .WithDescription("Billed, succeeded calls with occurred_at in [from, to), widened to whole UTC days (usage is kept per UTC day; the answer says which days it covers); the current billing period by default. group_by=job lists the jobs that started in the range, newest first: follow next_cursor while has_more.");
        read.MapGet("/usage/daily", GetDaily).WithName("GetDailyCredits")
            .WithSummary("Credits per day of the current billing period, by model or feature")
            .WithDescription("The series the portal's dashboard charts, read from the same snapshot (shared by every dashboard of the tenant, re-read at most twice a second): billed micro-credits and tokens per UTC day and model (or feature), with the consumption they add up to and when they were read.");
        read.MapGet("/usage/jobs/{job_id}", GetJob).WithName("ExplainJob").ProducesProblem(StatusCodes.Status404NotFound)
            .WithSummary("Explain a job: every call and every number behind its credits")
            .WithDescription("Model, tokens, the price version in effect, provider cost, overhead and micro-credits per call, and the ledger entries that charged them.");
        return read;
    }

    public static async Task<IResult> PostEvents(HttpContext http, UsageIngestor ingestor, IOptions<MeteringOptions> options,
        Observability.PortalMetrics metrics, IIngestGate gate, CancellationToken cancellationToken)
    {
        var arrived = System.Diagnostics.Stopwatch.GetTimestamp();
        var max = options.Value.MaxBatchSize;
        if (!IsJson(http.Request.ContentType))
            return TypedResults.Problem(statusCode: StatusCodes.Status415UnsupportedMediaType, title: "Unsupported media type",
                detail: $"The Content-Type header must be application/json (got '{http.Request.ContentType}').",
                extensions: new Dictionary<string, object?> { ["header"] = "Content-Type" });
        if (http.Request.ContentLength > MaxBodyBytes)
            return TooLarge($"The body is {http.Request.ContentLength} bytes; at most {MaxBodyBytes} are accepted. Send at most {max} events per request.");
        // A tenant that pays through AWS Marketplace and whose subscription ended (its last usage reported) ingests no more.
        // (A platform key's events for such a tenant are rejected one by one, with the same reason.)
        await gate.RefreshAsync(cancellationToken);
        if (http.Caller().TenantId is { } payer && gate.Refusal(payer) is { } refusal)
            return TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Subscription ended", detail: refusal);

        // The body is read into a pooled buffer: a batch of 1,000 events is a third of a megabyte, and a fresh array per
        // request would be a large object, whose heap's budget triggers full collections that stop every thread.
        var (body, length) = await ReadBodyAsync(http.Request, cancellationToken);
        ParsedBatch parsed;
        try
        {
            if (length > MaxBodyBytes) return TooLarge($"The body is larger than {MaxBodyBytes} bytes.");
            parsed = ParseBatch(body.AsMemory(0, length));
        }
        catch (JsonException ex)
        {
            return BadRequest($"The body is not valid JSON at {ex.Path ?? "$"}: {ApiProblems.JsonProblem(ex)} Nothing in this request was accepted.", ex.Path ?? "$");
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(body); // the parsed events hold their own strings, nothing points into the buffer
        }
        if (parsed.Problem is { } problem) return BadRequest(problem, "$.events");
        var events = parsed.Events;
        if (events.Count == 0) return BadRequest("events is empty; send at least one usage event.", "$.events");
        if (events.Count > max) return TooLarge($"The batch has {events.Count} events; at most {max} are accepted per request.");

        var caller = http.Caller();
        try
        {
            var result = await ingestor.IngestAsync(events, caller.TenantId, cancellationToken, parsed.Rejected, new IngestKey(caller.KeyId, caller.Project));
            metrics.BatchDuration.Record(System.Diagnostics.Stopwatch.GetElapsedTime(arrived).TotalSeconds);
            return TypedResults.Json(result, MeteringJson.Default.IngestResult);
        }
        catch (IngestUnavailableException ex)
        {
            http.Response.Headers.RetryAfter = ApiProblems.RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return TypedResults.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "Usage store unavailable", detail: ex.Message);
        }
    }

    public static Results<Ok<TokenUsageSummary>, ValidationProblem> GetTokens(HttpContext http, UsageReports reports, TenantDirectory tenants,
        string? group_by, string? from, string? to, int? page, int? page_size, string? cursor)
    {
        var errors = new Dictionary<string, string[]>();
        var grouping = TokenGrouping.Job;
        if (group_by is not null && !Enum.TryParse(group_by, true, out grouping) || group_by is not null && !Enum.IsDefined(grouping))
            errors["group_by"] = [$"'{group_by}' is not one of: job, model, feature."];
        var tenantId = http.Caller().TenantId!;
        var period = tenants.PlanAndPeriod(tenantId)!.Period;
        var fromAt = Instant(errors, "from", from) ?? period.StartInstant;
        var toAt = Instant(errors, "to", to) ?? period.EndInstant;
        if (errors.Count == 0 && toAt <= fromAt) errors["to"] = ["must be after from."];
        if (errors.Count == 0 && toAt - fromAt > UsageLimits.MaxReportRange)
            errors["to"] = [$"from and to may be at most {UsageLimits.MaxReportRange.TotalDays:0} days apart."];
        CreditsApi.Check(errors, "page", page, 1, int.MaxValue);
        if (cursor is not null && (grouping != TokenGrouping.Job || !Rpt.Portal.Data.Cursor.TryParse(cursor, out _)))
            errors["cursor"] = ["is a next_cursor of group_by=job, and only valid there."];
        CreditsApi.Check(errors, "page_size", page_size, 1, 500);
        if (errors.Count > 0) return TypedResults.ValidationProblem(errors);
        return TypedResults.Ok(reports.Tokens(tenantId, grouping, fromAt, toAt, page ?? 1, page_size ?? 50, cursor));
    }

    public static async Task<Results<Ok<DailyCreditsResponse>, ValidationProblem, NotFound>> GetDaily(HttpContext http, DashboardSnapshots snapshots, string? group_by)
    {
        if (group_by is not (null or "model" or "feature"))
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["group_by"] = [$"'{group_by}' is not one of: model, feature."] });
        var snapshot = await snapshots.GetAsync(http.Caller().TenantId!);
        if (snapshot is null) return TypedResults.NotFound();
        var b = snapshot.Balance;
        return TypedResults.Ok(new DailyCreditsResponse(new BillingPeriodDto(b.Period.Start, b.Period.End), group_by ?? "model",
            b.ConsumedMicroCredits, snapshot.ReadAt, group_by == "feature" ? snapshot.ByFeature : snapshot.ByModel));
    }

    public static async Task<Results<Ok<JobExplanation>, ProblemHttpResult>> GetJob(HttpContext http, ExplainJob explain, string job_id, CancellationToken cancellationToken)
    {
        // Another tenant's job is answered exactly like a job that does not exist.
        var job = await explain.ExplainJobAsync(http.Caller().TenantId!, job_id, cancellationToken);
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

    /// <summary>The whole body in a rented buffer (the caller returns it), reading at most one byte past <see cref="MaxBodyBytes"/>.</summary>
    private static async Task<(byte[] Buffer, int Length)> ReadBodyAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(request.ContentLength is > 0 and <= MaxBodyBytes ? (int)request.ContentLength + 1 : 64 * 1024);
        var length = 0;
        try
        {
            while (length <= MaxBodyBytes)
            {
                if (length == buffer.Length)
                {
                    var larger = ArrayPool<byte>.Shared.Rent((int)Math.Min(MaxBodyBytes + 1, buffer.Length * 2L));
                    buffer.AsSpan(0, length).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }
                var read = await request.Body.ReadAsync(buffer.AsMemory(length, (int)Math.Min(buffer.Length - length, MaxBodyBytes + 1 - length)), cancellationToken);
                if (read == 0) break;
                length += read;
            }
            return (buffer, length);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    private static bool IsJson(string? contentType) =>
        contentType is not null && Microsoft.Net.Http.Headers.MediaTypeHeaderValue.TryParse(contentType, out var media)
        && (media.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase) || media.Suffix.Equals("json", StringComparison.OrdinalIgnoreCase));

    private sealed record ParsedBatch(List<UsageEventInput?> Events, Dictionary<int, IngestItemResult>? Rejected, string? Problem = null);

    /// <summary>
    /// A body with a top-level "events" array is a batch; any other object is one event (a batch of one).
    /// Each event is read by itself, so an item with a wrong JSON type ("input_tokens": "12") is rejected
    /// alone, naming its path, and the other items are accepted. Only a body that is not JSON at all, or
    /// whose events are not an array, fails as a whole.
    /// </summary>
    private static ParsedBatch ParseBatch(ReadOnlyMemory<byte> body)
    {
        // The common case, a well-typed batch in valid UTF-8, is read in one pass; only a batch with a problem is read item by item.
        // The JSON reader checks a string's UTF-8 only when it turns it into text (and not at all for a value it skips), so the
        // bytes are checked here, once, vectorised: a bad byte is then found wherever it is.
        var validUtf8 = System.Text.Unicode.Utf8.IsValid(body.Span);
        if (validUtf8)
        {
            try
            {
                if (JsonSerializer.Deserialize(body.Span, MeteringJson.Default.UsageBatchInput) is { Events: { } all }) return new(all, null);
            }
            catch (JsonException) { }
        }
        return ParseItemByItem(body, validUtf8);
    }

    private static ParsedBatch ParseItemByItem(ReadOnlyMemory<byte> memory, bool validUtf8)
    {
        var badItems = 0;
        var body = memory.Span;
        var reader = new Utf8JsonReader(body, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip });
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            return new([], null, "The body must be a JSON object: {\"events\": [ … ]} or one event.");
        var events = new List<UsageEventInput?>();
        Dictionary<int, IngestItemResult>? rejected = null;
        var isBatch = false;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (!reader.ValueTextEquals("events"u8))
            {
                reader.Read();
                reader.Skip();
                continue;
            }
            isBatch = true;
            reader.Read();
            if (reader.TokenType == JsonTokenType.Null) return new([], null, "events must be an array of usage events.");
            if (reader.TokenType != JsonTokenType.StartArray) return new([], null, "events must be an array of usage events.");
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                var start = (int)reader.TokenStartIndex;
                try
                {
                    reader.Skip();
                }
                catch (JsonException ex)
                {
                    throw new JsonException(ApiProblems.JsonProblem(ex), $"$.events[{events.Count}]", ex.LineNumber, ex.BytePositionInLine, ex);
                }
                var item = body.Slice(start, (int)reader.BytesConsumed - start);
                var index = events.Count;
                if (!validUtf8 && !System.Text.Unicode.Utf8.IsValid(item))
                {
                    events.Add(null);
                    rejected ??= [];
                    rejected[index] = new IngestItemResult(IdOf(item), IngestStatus.Rejected, $"$.events[{index}]: {InvalidUtf8}");
                    badItems++;
                    continue;
                }
                try
                {
                    events.Add(JsonSerializer.Deserialize(item, MeteringJson.Default.UsageEventInput));
                }
                catch (JsonException ex)
                {
                    events.Add(null);
                    rejected ??= [];
                    var path = $"$.events[{index}]{ex.Path?.TrimStart('$')}";
                    rejected[index] = new IngestItemResult(IdOf(item), IngestStatus.Rejected,
                        $"{path}: {ExpectedAt(ex.Path)}");
                }
            }
        }
        if (isBatch)
            return validUtf8 || badItems > 0
                ? new(events, rejected)
                : new([], null, $"The body holds bytes that are not valid UTF-8 outside any event. {InvalidUtf8} Nothing in this request was accepted.");
        if (!validUtf8) return new([null], new() { [0] = new IngestItemResult(IdOf(body), IngestStatus.Rejected, $"$: {InvalidUtf8}") });
        try
        {
            return new([JsonSerializer.Deserialize(body, MeteringJson.Default.UsageEventInput)], null);
        }
        catch (JsonException ex)
        {
            return new([null], new() { [0] = new IngestItemResult(IdOf(body), IngestStatus.Rejected,
                $"{ex.Path ?? "$"}: {ExpectedAt(ex.Path)}") });
        }
    }

    private const string InvalidUtf8 = "a string holds bytes that are not valid UTF-8; send every string as UTF-8.";

    /// <summary>What the field at a JSON path takes, in words.</summary>
    private static string ExpectedAt(string? path)
    {
        var field = path is null ? "" : path[(path.LastIndexOf('.') + 1)..];
        return field switch
        {
            "input_tokens" or "output_tokens" or "cached_input_tokens" => $"{field} must be a whole number of tokens written as digits, e.g. 3200",
            "quantity" => "quantity must be a number",
            "occurred_at" => "occurred_at must be an ISO 8601 instant, e.g. 2026-04-12T09:30:00Z",
            "internal" => "internal must be true or false",
            "" or "$" => "each event must be a JSON object",
            _ => $"{field} must be a string",
        };
    }

    /// <summary>The id of an item that could not be read as a whole, when it has a string id.</summary>
    private static string? IdOf(ReadOnlySpan<byte> item)
    {
        try
        {
            var reader = new Utf8JsonReader(item);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return null;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isId = reader.ValueTextEquals("id"u8);
                reader.Read();
                if (isId && reader.TokenType == JsonTokenType.String)
                {
                    var id = reader.GetString();
                    return id is { Length: > RateUsage.MaxIdLength } ? id[..RateUsage.MaxIdLength] : id;
                }
                reader.Skip();
            }
        }
        catch (JsonException) { }
        catch (InvalidOperationException ex) when (ApiProblems.IsInvalidUtf8(ex)) { } // an id that is not UTF-8 is not echoed
        return null;
    }

    private static ProblemHttpResult BadRequest(string detail, string? path) =>
        TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Invalid usage events", detail: detail,
            extensions: path is null ? null : new Dictionary<string, object?> { ["path"] = path });

    private static ProblemHttpResult TooLarge(string detail) =>
        TypedResults.Problem(statusCode: StatusCodes.Status413PayloadTooLarge, title: "Batch too large", detail: detail);
}
