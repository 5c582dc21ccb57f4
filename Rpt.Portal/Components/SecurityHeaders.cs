using System.Net;
using System.Security.Cryptography;
using Microsoft.AspNetCore.HttpOverrides;

namespace Rpt.Portal.Components;

/// <summary>Rpt:ForwardedHeaders: the TLS-terminating proxies whose X-Forwarded-For/-Proto are believed.</summary>
public sealed class ForwardedHeadersSettings
{
    /// <summary>Addresses of trusted proxies, e.g. 10.0.0.5.</summary>
    public List<string> KnownProxies { get; set; } = [];

    /// <summary>Networks of trusted proxies in CIDR form, e.g. 10.0.0.0/8.</summary>
    public List<string> KnownNetworks { get; set; } = [];
}

/// <summary>
/// Headers every answer carries: no MIME sniffing, no framing, and for the portal's pages a content
/// security policy that runs only our own scripts (and the import map, by a per-request nonce). Behind a
/// TLS proxy named in Rpt:ForwardedHeaders the request is seen as https, so the sign-in cookie is Secure.
/// </summary>
public static class SecurityHeaders
{
    public const string NonceItem = "rpt.csp-nonce";

    public static IHostApplicationBuilder AddPortalSecurity(this IHostApplicationBuilder builder)
    {
        var settings = builder.Configuration.GetSection("Rpt:ForwardedHeaders").Get<ForwardedHeadersSettings>() ?? new();
        builder.Services.Configure<ForwardedHeadersOptions>(o =>
        {
            o.ForwardedHeaders = ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto;
            foreach (var proxy in settings.KnownProxies)
            {
                if (!IPAddress.TryParse(proxy, out var address))
                    throw new InvalidOperationException($"Rpt:ForwardedHeaders:KnownProxies holds '{proxy}', which is not an IP address.");
                o.KnownProxies.Add(address);
            }
            foreach (var network in settings.KnownNetworks)
            {
                if (!System.Net.IPNetwork.TryParse(network, out var parsed))
                    throw new InvalidOperationException($"Rpt:ForwardedHeaders:KnownNetworks holds '{network}', which is not a CIDR network such as 10.0.0.0/8.");
                o.KnownIPNetworks.Add(parsed);
            }
        });
        return builder;
    }

    /// <summary>The nonce of this request's content security policy, for the page's own inline script (the import map).</summary>
    public static string? CspNonce(this HttpContext http) => http.Items[NonceItem] as string;

    public static WebApplication UsePortalSecurityHeaders(this WebApplication app)
    {
        app.UseForwardedHeaders();
        app.Use((http, next) =>
        {
            var api = Api.ApiProblems.IsApi(http);
            // Hex, not base64: a "+" or "/" would be entity-encoded in the page (harmless to a browser, confusing to anyone reading it).
            var nonce = api ? "" : Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
            if (!api) http.Items[NonceItem] = nonce;
            http.Response.OnStarting(() =>
            {
                var headers = http.Response.Headers;
                headers.XContentTypeOptions = "nosniff";
                headers["Referrer-Policy"] = "strict-origin-when-cross-origin";
                headers.XFrameOptions = "DENY";
                if (api) return Task.CompletedTask;
                // The API reference (/api/docs) gets the same policy: its script tags carry this request's nonce (OpenApiSetup).
                headers.ContentSecurityPolicy = "default-src 'self'; " +
                      $"script-src 'self' 'nonce-{nonce}'; " +
                      // MudBlazor and the charts position elements with style attributes.
                      "style-src 'self' 'unsafe-inline'; " +
                      "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; " +
                      "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";
                return Task.CompletedTask;
            });
            return next(http);
        });
        return app;
    }
}
