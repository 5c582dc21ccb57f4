using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.RateLimiting;

namespace Rpt.Portal.Api;

public static class ApiExtensions
{
    public const string PerKeyPolicy = "per-api-key";

    public static IHostApplicationBuilder AddCreditsApi(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<ApiOptions>().BindConfiguration("Rpt:Api").ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<ApiKeyService>();
        builder.Services.AddHostedService<ApiKeyUsageRecorder>();
        builder.Services.AddProblemDetails();
        builder.Services.ConfigureHttpJsonOptions(o =>
        {
            o.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
            o.SerializerOptions.DictionaryKeyPolicy = null;
            o.SerializerOptions.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower));
            o.SerializerOptions.DefaultIgnoreCondition = JsonIgnoreCondition.Never;
        });
        var api = builder.Configuration.GetSection("Rpt:Api").Get<ApiOptions>() ?? new ApiOptions();
        builder.Services.AddRateLimiter(o =>
        {
            o.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            o.AddPolicy(PerKeyPolicy, http => RateLimitPartition.GetTokenBucketLimiter(
                http.Request.Headers.Authorization.ToString() is { Length: > 0 } key ? key : "anonymous:" + http.Connection.RemoteIpAddress,
                _ => new TokenBucketRateLimiterOptions
                {
                    TokenLimit = api.Burst,
                    TokensPerPeriod = api.RequestsPerSecond,
                    ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                    QueueLimit = 0,
                    AutoReplenishment = true,
                }));
            o.OnRejected = async (context, cancellationToken) =>
            {
                var retryAfter = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds)) : 1;
                context.HttpContext.Response.Headers.RetryAfter = retryAfter.ToString(System.Globalization.CultureInfo.InvariantCulture);
                await TypedResults.Problem(statusCode: StatusCodes.Status429TooManyRequests, title: "Too many requests",
                    detail: $"This API key sent more than {api.RequestsPerSecond} requests per second. Retry after {retryAfter} s.")
                    .ExecuteAsync(context.HttpContext);
            };
        });
        builder.AddPortalOpenApi();
        return builder;
    }

    /// <summary>
    /// Limits the endpoints per API key (per address without one), and documents the answers every /v1 endpoint can give
    /// besides its own: 429 past the limit, 503 while the database does not answer (ApiProblems).
    /// </summary>
    public static TBuilder RateLimitedPerKey<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.RequireRateLimiting(PerKeyPolicy)
            .ProducesProblem(StatusCodes.Status429TooManyRequests)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

    public static WebApplication MapPortalApi(this WebApplication app)
    {
        app.UseRateLimiter();
        app.MapPortalOpenApi();
        app.MapCreditsApi();
        app.MapUsageApi();
        app.MapAlertsApi();
        Budgets.BudgetsApi.MapBudgetsApi(app);
        return app;
    }
}
