using System.Text.Json.Serialization;

namespace Rpt.Portal.Metering;

/// <summary>Source-generated snake_case JSON for the ingestion path.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, NumberHandling = JsonNumberHandling.Strict)]
[JsonSerializable(typeof(UsageEventInput))]
[JsonSerializable(typeof(UsageBatchInput))]
[JsonSerializable(typeof(IngestResult))]
public sealed partial class MeteringJson : JsonSerializerContext;
