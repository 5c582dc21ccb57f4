using System.Text.Json.Nodes;
using Microsoft.OpenApi;
using Rpt.Portal.Components;
using Scalar.AspNetCore;

namespace Rpt.Portal.Api;

/// <summary>The OpenAPI document of the public /v1 surface (/openapi/v1.json) and its reference page (/api/docs).</summary>
public static class OpenApiSetup
{
    public static IHostApplicationBuilder AddPortalOpenApi(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOpenApi(o =>
        {
            // The public surface only: the portal's own endpoints (sign-out, CSV export) are not part of the API.
            o.ShouldInclude = d => d.RelativePath?.StartsWith("v1/", StringComparison.Ordinal) == true;
            o.AddDocumentTransformer((document, _, _) =>
            {
                document.Info = new OpenApiInfo
                {
                    Title = "Rpt Portal Credits API",
                    Version = "v1",
                    Description = "Read credits, usage and the ledger of a tenant; send usage events. Authenticate with the header `Authorization: Bearer YOUR_API_KEY`, with a key from the portal's API keys page. Errors are RFC 7807 problem details naming the field and the problem.",
                    License = new OpenApiLicense { Name = "Proprietary: use under the terms of your Rpt Portal subscription", Identifier = "LicenseRef-Rpt-Portal-Subscription" },
                };
                // Relative to wherever the portal is served (the document is served by the portal itself): no host baked in.
                document.Servers = [new OpenApiServer { Url = "/", Description = "This portal" }];
                foreach (var tag in document.Tags ?? new HashSet<OpenApiTag>())
                    if (tag.Name is { } n && TagDescriptions.TryGetValue(n, out var text)) tag.Description = text;
                document.Components ??= new OpenApiComponents();
                document.Components.SecuritySchemes ??= new Dictionary<string, IOpenApiSecurityScheme>();
                document.Components.SecuritySchemes["bearer"] = new OpenApiSecurityScheme
                {
                    Type = SecuritySchemeType.Http,
                    Scheme = "bearer",
                    Description = "A tenant API key (read, optionally ingest) or a platform ingest key.",
                };
                document.Security = [new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference("bearer", document)] = [] }];
                return Task.CompletedTask;
            });
            // Money and credits are decimals, never binary floating point: say so, so that a generated client reads them as decimals too.
            o.AddSchemaTransformer((schema, context, _) =>
            {
                var type = Nullable.GetUnderlyingType(context.JsonTypeInfo.Type) ?? context.JsonTypeInfo.Type;
                if (type == typeof(decimal)) schema.Format = "decimal";
                return Task.CompletedTask;
            });
            o.AddOperationTransformer((operation, context, _) =>
            {
                var name = context.Description.ActionDescriptor.EndpointMetadata.OfType<IEndpointNameMetadata>().FirstOrDefault()?.EndpointName;
                if (name is "GetPlans" or "GetConversion") operation.Security = []; // published: no key needed
                if (name is not null && ApiExamples.Responses.TryGetValue(name, out var example)
                    && operation.Responses?.TryGetValue("200", out var ok) == true && ok.Content?.TryGetValue("application/json", out var media) == true)
                {
                    media.Example = JsonNode.Parse(example);
                }
                if (name is not null && ApiExamples.Requests.TryGetValue(name, out var request)
                    && operation.RequestBody?.Content?.TryGetValue("application/json", out var body) == true)
                {
                    body.Example = JsonNode.Parse(request);
                }
                return Task.CompletedTask;
            });
        });
        return builder;
    }

    private static readonly Dictionary<string, string> TagDescriptions = new()
    {
        ["Credits"] = "The balance, grants, consumption records, quota checks and the ledger's verification and statements of the key's tenant.",
        ["Budgets"] = "Caps below the account on what one API key, one project or one end user (or each end user) may use in a UTC day or a billing period: hard ones refuse quota checks and holds past them, soft ones alert. Key scope admin.",
        ["Published"] = "The plan catalog and the conversion rule with the price book: public, no key needed.",
        ["Ingestion"] = "Usage events in, exactly once per id.",
        ["Usage"] = "Tokens and credits by model, feature and day, and the explanation of a job.",
        ["Alerts"] = "Alert rules and the webhook endpoints they deliver to (admin scope).",
        ["Reservations"] = "Holds on credits for long jobs: placed, drawn down by the job's usage, extended, released (ingest scope).",
    };

    public static WebApplication MapPortalOpenApi(this WebApplication app)
    {
        app.MapOpenApi();
        // The reference page loads the document relative to itself (/api/docs/openapi/v1.json).
        app.MapOpenApi("/api/docs/openapi/{documentName}.json").ExcludeFromDescription();
        // No web fonts from elsewhere: the reference works on a closed network and leaks no visits. It
        // documents our API only: the reference tool's own toolbar (deploy, SDK generation), its AI chat,
        // its MCP hook and its telemetry are off, and so is the sidebar's link to the tool's own site (the tool's
        // documented way is custom CSS; the link is the one tagged utm_source=powered-by).
        // Its script tags carry this request's CSP nonce, so the page runs under the portal's script-src (SecurityHeaders).
        app.MapScalarApiReference("/api/docs", (o, http) => o.WithTitle("Rpt Portal Credits API").DisableDefaultFonts()
            .HideDeveloperTools().DisableAgent().DisableMcp().DisableTelemetry()
            .WithNonce(http.CspNonce() ?? "")
            .WithCustomCss("a[href*=\"utm_source=powered-by\"] { display: none !important; }"));
        return app;
    }
}

/// <summary>Examples shown in the OpenAPI document and the reference page.</summary>
internal static class ApiExamples
{
    public static readonly Dictionary<string, string> Responses = new()
    {
        ["GetBalance"] = """
            { "plan": "professional", "billing_period": { "start": "2026-04-01", "end": "2026-04-30" },
              "credits": { "allocated": 25000, "consumed": 8432, "remaining": 16568, "unlimited": false, "overage": 0, "overage_usd": 0.00, "reserved": 0, "available": 16568 },
              "tokens": { "total": 5127890, "by_model": { "gpt-4o-mini": 3240110, "gemini-1.5-flash": 1887780 } },
              "overage": { "policy": "overage", "credits": 0 }, "internal": { "micro_credits": 1848000 },
              "units_by_meter": { "image_generation": 12 },
              "ledger": { "flushed_micro_credits": 8431000000, "unflushed_micro_credits": 1110880 } }
            """,
        ["PostUsageEvents"] = """
            { "accepted": 1, "duplicates": 1, "rejected": 1, "results": [
              { "id": "call_7f3a", "status": "accepted" },
              { "id": "call_7f3a", "status": "duplicate" },
              { "id": "call_7f3b", "status": "rejected", "error": "unknown model 'gpt-9'" } ] }
            """,
        ["CheckQuota"] = """
            { "allowed": false, "fail_open": false, "reason": "The estimate of 700 credits exceeds the 512 credits remaining on the starter plan, which does not allow overage.",
              "estimated_credits": 700, "remaining": 512, "overage_credits": 188, "plan": "starter" }
            """,
        ["VerifyLedger"] = """
            { "tenant_id": "acme", "intact": true, "entries": 42, "head_hash": "9f2c…", "deep": false, "problems": [] }
            """,
    };

    public static readonly Dictionary<string, string> Requests = new()
    {
        ["PostUsageEvents"] = """
            { "events": [ { "id": "call_7f3a", "occurred_at": "2026-04-12T09:30:00Z", "provider": "openai", "model": "gpt-4o-mini",
              "input_tokens": 3200, "output_tokens": 740, "cached_input_tokens": 0, "feature": "document_summary",
              "job_id": "job_123", "user_id": "u_42", "status": "succeeded", "internal": false } ] }
            """,
        ["CheckQuota"] = """{ "model": "gpt-4o", "input_tokens": 120000, "output_tokens": 8000 }""",
    };
}
