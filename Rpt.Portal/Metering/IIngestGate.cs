namespace Rpt.Portal.Metering;

/// <summary>
/// Whether a tenant's usage may be accepted at all (a feature above Metering may close it: an AWS Marketplace
/// subscription that ended). Asked per event, so it answers from memory; <see cref="RefreshAsync"/> is called once per
/// request before.
/// </summary>
public interface IIngestGate
{
    /// <summary>Why the tenant's events are refused, or null.</summary>
    string? Refusal(string tenantId);

    /// <summary>Brings what <see cref="Refusal"/> answers from up to date, when it is stale.</summary>
    ValueTask RefreshAsync(CancellationToken cancellationToken);
}

/// <summary>No feature closes ingestion: every tenant's usage may be accepted.</summary>
public sealed class OpenIngestGate : IIngestGate
{
    public string? Refusal(string tenantId) => null;
    public ValueTask RefreshAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;
}
