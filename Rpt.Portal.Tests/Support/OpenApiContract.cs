using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Json.Schema;

namespace Rpt.Portal.Tests.Support;

/// <summary>
/// The served OpenAPI document as a client generated from it reads it: for a real answer, the document must list its
/// status code (exactly, or as 4XX/5XX/default) with its content type, and the body must match that schema (JSON Schema
/// 2020-12, which OpenAPI 3.1 schemas are). <see cref="Checking"/> wraps an HttpClient's handler so that every answer
/// a test receives is checked.
/// </summary>
public sealed class OpenApiContract
{
    private readonly List<(string Method, Regex Path, string Template, JsonObject Operation)> _operations = [];
    private readonly JsonNode _components;
    private readonly BuildOptions _build = new() { SchemaRegistry = new SchemaRegistry() };
    private readonly ConcurrentDictionary<string, JsonSchema> _schemas = new();
    private int _built;

    public OpenApiContract(string document)
    {
        var doc = JsonNode.Parse(document)!.AsObject();
        _components = doc["components"]!.DeepClone();
        foreach (var (path, item) in doc["paths"]!.AsObject())
        {
            var pattern = new Regex("^" + Regex.Replace(Regex.Escape(path), @"\\\{[^}]+}", "[^/]+") + "$");
            foreach (var (method, operation) in item!.AsObject())
                if (operation is JsonObject o && o.ContainsKey("responses")) _operations.Add((method.ToUpperInvariant(), pattern, path, o));
        }
    }

    public IReadOnlyCollection<string> Operations => _operations.Select(o => $"{o.Method} {o.Template}").ToList();

    /// <summary>Answered operations, "GET /v1/…" → the status codes seen.</summary>
    public ConcurrentDictionary<string, ConcurrentBag<int>> Seen { get; } = new();

    public ConcurrentQueue<string> Violations { get; } = new();

    public DelegatingHandler Checking() => new CheckingHandler(this);

    /// <summary>Why this answer breaks the document, or null when a client generated from it reads it.</summary>
    public string? Check(string method, string path, int status, string? mediaType, ReadOnlySpan<byte> body)
    {
        var op = _operations.FirstOrDefault(o => o.Method == method && o.Path.IsMatch(path));
        if (op.Operation is null) return status == 404 || status == 405 ? null : $"{method} {path}: no operation of the document";
        var name = $"{op.Method} {op.Template}";
        Seen.GetOrAdd(name, _ => []).Add(status);
        var responses = op.Operation["responses"]!.AsObject();
        var code = status.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var response = responses[code] ?? responses[code[0] + "XX"] ?? responses["default"];
        if (response is null) return $"{name} answered {status}, which the document does not list";
        if (body.IsEmpty) return null;
        var content = response["content"]?.AsObject();
        if (content is null || mediaType is null) return $"{name} answered {status} with a {mediaType ?? "typeless"} body the document does not describe";
        var media = content[mediaType];
        if (media is null) return $"{name} answered {status} as {mediaType}; the document lists {string.Join(", ", content.Select(c => c.Key))}";
        if (media["schema"] is not { } schema || !mediaType.Contains("json", StringComparison.Ordinal)) return null;
        var key = $"{name} {code} {mediaType}";
        var compiled = _schemas.GetOrAdd(key, _ => Build(schema));
        using var instance = JsonDocument.Parse(body.ToArray());
        var result = compiled.Evaluate(instance.RootElement, new EvaluationOptions { OutputFormat = OutputFormat.List });
        if (result.IsValid) return null;
        var errors = (result.Details ?? []).Where(d => d.Errors is { Count: > 0 })
            .SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Value}")).Distinct().Take(5);
        return $"{name} answered {status} with a body that does not match its schema: {string.Join("; ", errors)}";
    }

    private JsonSchema Build(JsonNode schema)
    {
        // The schema with the document's components beside it, so that its $refs (#/components/schemas/…) resolve.
        var wrapper = new JsonObject
        {
            ["$schema"] = "https://json-schema.org/draft/2020-12/schema",
            ["components"] = _components.DeepClone(),
            ["allOf"] = new JsonArray(schema.DeepClone()),
        };
        using var doc = JsonDocument.Parse(wrapper.ToJsonString());
        var uri = new Uri($"https://contract.rpt.test/schema/{Interlocked.Increment(ref _built)}");
        lock (_build) return JsonSchema.Build(doc.RootElement.Clone(), _build, uri);
    }

    private sealed class CheckingHandler(OpenApiContract contract) : DelegatingHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = await base.SendAsync(request, cancellationToken);
            if (request.RequestUri!.AbsolutePath.StartsWith("/v1/", StringComparison.Ordinal))
            {
                var body = await response.Content.ReadAsByteArrayAsync(cancellationToken);
                var violation = contract.Check(request.Method.Method, request.RequestUri.AbsolutePath, (int)response.StatusCode,
                    response.Content.Headers.ContentType?.MediaType, body);
                if (violation is not null) contract.Violations.Enqueue(violation);
            }
            return response;
        }
    }
}
