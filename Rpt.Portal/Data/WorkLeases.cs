namespace Rpt.Portal.Data;

/// <summary>
/// Which instance does a piece of background work that must happen once however many instances run (the flush, the
/// renewals, the schedulers, the dispatchers). Each tick asks for the lease first and skips the run when another
/// instance holds it. A lease saves work, it does not make it correct: every such job is already safe run twice at once
/// (locks, idempotency keys), because two instances may both believe they hold it for the moment a connection is lost.
/// </summary>
public interface IWorkLeases
{
    /// <summary>Whether this instance holds the lease of <paramref name="work"/> now, taking it when it is free.</summary>
    ValueTask<bool> HoldAsync(string work, CancellationToken cancellationToken = default);
}

/// <summary>The names of the leases, one per kind of background work.</summary>
public static class Lease
{
    public const string Flush = "usage-flush";
    public const string Renewals = "renewals";
    public const string GrantExpiry = "grant-expiry";
    public const string AlertMail = "alert-mail";
    public const string Webhooks = "webhooks";
    public const string OverageReports = "overage-reports";
    public const string TestModeRenewals = "test-mode-renewals";
    public const string PriceNotices = "price-notices";
    public const string MarketplaceReports = "marketplace-reports";
    public const string MarketplaceNotices = "marketplace-notices";
}

/// <summary>SQLite: one machine and one file, whose write lock already keeps writers apart; this instance does all the work.</summary>
public sealed class SingleInstanceLeases : IWorkLeases
{
    public ValueTask<bool> HoldAsync(string work, CancellationToken cancellationToken = default) => ValueTask.FromResult(true);
}
