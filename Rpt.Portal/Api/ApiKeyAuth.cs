using Microsoft.AspNetCore.Http.HttpResults;

namespace Rpt.Portal.Api;

/// <summary>Bearer API keys for the /v1 endpoints: 401 without a valid key, 403 without the scope.</summary>
public static class ApiKeyAuth
{
    private const string CallerItem = "rpt.api-caller";

    public static ApiCaller Caller(this HttpContext http) => (ApiCaller)http.Items[CallerItem]!;

    /// <summary>The caller must present a key that carries one of <paramref name="scopes"/>.</summary>
    public static TBuilder RequireApiKey<TBuilder>(this TBuilder builder, params ApiScopes[] scopes) where TBuilder : IEndpointConventionBuilder
    {
        builder.AddEndpointFilter(async (context, next) =>
        {
            var http = context.HttpContext;
            var header = http.Request.Headers.Authorization.ToString();
            if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
                return Unauthorized(http, "Send the API key as 'Authorization: Bearer <key>'.");
            var caller = await http.RequestServices.GetRequiredService<ApiKeyService>().AuthenticateAsync(header[7..].Trim(), http.RequestAborted);
            if (caller is null) return Unauthorized(http, "The API key is not valid, or it was revoked.");
            if (!scopes.Any(caller.Has))
            {
                var needed = string.Join(" or ", scopes.Select(s => s switch { ApiScopes.PlatformIngest => "platform ingest", var x => x.ToString().ToLowerInvariant() }));
                return TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Missing scope",
                    detail: $"This API key does not carry the {needed} scope this endpoint needs.");
            }
            http.Items[CallerItem] = caller;
            return await next(context);
        });
        builder.ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden);
        return builder;
    }

    private static ProblemHttpResult Unauthorized(HttpContext http, string detail)
    {
        http.Response.Headers.WWWAuthenticate = "Bearer";
        return TypedResults.Problem(statusCode: StatusCodes.Status401Unauthorized, title: "Unauthorized", detail: detail);
    }
}
