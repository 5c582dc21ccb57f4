using System.Text.Json;
using Rpt.Portal.Data;

namespace Rpt.Portal.Api;

/// <summary>
/// Every non-2xx answer under /v1 is an RFC 7807 problem that names what was wrong, in every environment:
/// binding failures (a query parameter, a JSON body and its path), a wrong content type, an unknown route,
/// a wrong method, a body too large, and a server error (whose detail stays in the log outside Development).
/// The portal's HTML error pages never answer an API client.
/// </summary>
public static class ApiProblems
{
    public static bool IsApi(HttpContext http) => http.Request.Path.StartsWithSegments("/v1");

    /// <summary>Endpoints throw their binding failures (instead of an empty 400) so that they are answered here.</summary>
    public static IHostApplicationBuilder AddApiProblems(this IHostApplicationBuilder builder)
    {
        builder.Services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        return builder;
    }

    /// <summary>What a 503 for an unavailable database asks the client to wait: a failover takes a few seconds.</summary>
    public const int RetryAfterSeconds = 2;

    /// <summary>Call first, so that it wraps everything else the request goes through.</summary>
    public static WebApplication UseApiProblems(this WebApplication app)
    {
        app.UseWhen(IsApi, api => api.Use(async (http, next) =>
        {
            try
            {
                await next(http);
            }
            catch (BadHttpRequestException ex) when (!http.Response.HasStarted)
            {
                await WriteAsync(http, ex.StatusCode, TitleOf(ex.StatusCode), Describe(ex), PathOf(ex), clear: true);
                return;
            }
            catch (Exception ex) when (!http.Response.HasStarted && IsInvalidUtf8(ex))
            {
                // The JSON reader checks a string's bytes only when it turns them into text, and throws this, not a JsonException.
                await WriteAsync(http, StatusCodes.Status400BadRequest, TitleOf(400),
                    "The JSON body holds a string whose bytes are not valid UTF-8; send every string as UTF-8. Nothing was changed.", "$", clear: true);
                return;
            }
            catch (Exception ex) when (!http.Response.HasStarted && http.RequestServices.GetRequiredService<PortalDatabase>().IsUnavailable(ex))
            {
                http.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Rpt.Portal.Api")
                    .LogWarning("The database did not answer {Method} {Path}: {Error}", http.Request.Method, http.Request.Path, ex.GetBaseException().Message);
                http.Response.Clear();
                http.Response.Headers.RetryAfter = RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
                await WriteAsync(http, StatusCodes.Status503ServiceUnavailable, "Database unavailable",
                    $"The database does not answer just now (a failover, a restart or maintenance). Nothing was changed by this request; send it again, with the same ids, after {RetryAfterSeconds} s.",
                    null, clear: false);
                return;
            }
            catch (Exception ex) when (!http.Response.HasStarted && ex is not OperationCanceledException)
            {
                http.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Rpt.Portal.Api")
                    .LogError(ex, "Unhandled error answering {Method} {Path}", http.Request.Method, http.Request.Path);
                var detail = http.RequestServices.GetRequiredService<IHostEnvironment>().IsDevelopment()
                    ? ex.ToString()
                    : $"The server could not answer this request; it was logged with trace id {http.TraceIdentifier}. Nothing was changed by a request that failed this way unless its answer says so; retry it with the same ids.";
                await WriteAsync(http, StatusCodes.Status500InternalServerError, "Server error", detail, null, clear: true);
                return;
            }
            if (http.Response.HasStarted || http.Response.StatusCode < 400 || http.Response.ContentType is not null) return;
            var status = http.Response.StatusCode;
            var detail2 = status switch
            {
                404 => $"There is no API endpoint at {http.Request.Path}. The endpoints are listed at /openapi/v1.json and /api/docs.",
                405 => $"{http.Request.Method} is not allowed on {http.Request.Path}; allowed: {http.Response.Headers.Allow}.",
                415 => "The Content-Type header must be application/json.",
                _ => null,
            };
            await WriteAsync(http, status, TitleOf(status), detail2, null, clear: false);
        }));
        return app;
    }

    /// <summary>What the JSON reader throws for a string that is not UTF-8, directly or wrapped by the binder.</summary>
    public static bool IsInvalidUtf8(Exception ex) =>
        ex is InvalidOperationException { InnerException: System.Text.DecoderFallbackException }
        || ex is InvalidOperationException && ex.Message.Contains("invalid UTF-8", StringComparison.OrdinalIgnoreCase)
        || ex.InnerException is { } inner && inner != ex && IsInvalidUtf8(inner);

    /// <summary>A JSON body error names the path of the value that could not be read ($.events[3].input_tokens).</summary>
    private static string? PathOf(BadHttpRequestException ex) => ex.InnerException is JsonException { Path: { } path } ? path : null;

    private static string Describe(BadHttpRequestException ex)
    {
        if (ex.InnerException is JsonException json)
            return $"The JSON body could not be read at {json.Path ?? "$"}: {JsonProblem(json)}";
        if (ex.StatusCode == StatusCodes.Status415UnsupportedMediaType)
            return "The Content-Type header must be application/json. " + ex.Message;
        if (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
            return "The request body is larger than this endpoint accepts. " + ex.Message;
        return ex.Message;
    }

    /// <summary>The reader's message without the type names and byte positions meant for developers.</summary>
    public static string JsonProblem(JsonException ex)
    {
        var message = ex.Message;
        foreach (var marker in new[] { " Path:", " LineNumber:" })
        {
            var cut = message.IndexOf(marker, StringComparison.Ordinal);
            if (cut > 0) message = message[..cut];
        }
        return message.Contains("could not be converted", StringComparison.Ordinal) ? "the value has the wrong JSON type." : message;
    }

    private static string TitleOf(int status) => status switch
    {
        400 => "Bad request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not found",
        405 => "Method not allowed",
        408 => "Request timeout",
        411 => "Length required",
        413 => "Request too large",
        415 => "Unsupported media type",
        431 => "Request headers too large",
        _ => ReasonPhrases(status),
    };

    private static string ReasonPhrases(int status) => Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase(status) is { Length: > 0 } p ? p : "Error";

    private static Task WriteAsync(HttpContext http, int status, string title, string? detail, string? path, bool clear)
    {
        if (clear) http.Response.Clear();
        http.Response.StatusCode = status;
        var extensions = new Dictionary<string, object?> { ["trace_id"] = http.TraceIdentifier };
        if (path is not null) extensions["path"] = path;
        return TypedResults.Problem(statusCode: status, title: title, detail: detail, extensions: extensions).ExecuteAsync(http);
    }
}
