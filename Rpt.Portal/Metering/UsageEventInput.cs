using System.Text.Json.Serialization;

namespace Rpt.Portal.Metering;

/// <summary>One usage event as a platform sends it (snake_case JSON). Every field is optional here so
/// that a missing one is answered with a reason for that item, not a failed batch.</summary>
public sealed class UsageEventInput
{
    public string? Id { get; set; }
    public string? TenantId { get; set; }
    public DateTimeOffset? OccurredAt { get; set; }
    public string? Provider { get; set; }
    public string? Model { get; set; }
    public long? InputTokens { get; set; }
    public long? OutputTokens { get; set; }
    public long? CachedInputTokens { get; set; }
    public string? Meter { get; set; }
    public decimal? Quantity { get; set; }
    public string? Feature { get; set; }
    public string? JobId { get; set; }
    public string? UserId { get; set; }
    /// <summary>The project the call was made for (optional; a key bound to a project stamps its own).</summary>
    public string? Project { get; set; }
    public string? Status { get; set; }
    public bool? Internal { get; set; }
}

public sealed class UsageBatchInput
{
    public List<UsageEventInput?>? Events { get; set; }
}

public static class IngestStatus
{
    public const string Accepted = "accepted";
    public const string Duplicate = "duplicate";
    public const string Rejected = "rejected";
}

public sealed record IngestItemResult(
    string? Id,
    string Status,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Error = null);

public sealed record IngestResult(int Accepted, int Duplicates, int Rejected, IReadOnlyList<IngestItemResult> Results);
