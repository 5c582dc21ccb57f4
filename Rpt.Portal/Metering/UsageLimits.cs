using System.Globalization;

namespace Rpt.Portal.Metering;

/// <summary>
/// The limits that keep every sum of usage inside its type with room to spare (docs/RULES.md, "Limits").
/// One event is worth at most 10^13 µcr; a tenant's period at most 10^17 µcr and 10^15 tokens, so that
/// even a sum over a thousand periods of one tenant fits a 64-bit integer. An event that would pass a
/// limit is rejected by itself, with an error that names the limit.
/// </summary>
public static class UsageLimits
{
    /// <summary>Tokens in one field of one call: far above any model's context, far below an overflow.</summary>
    public const long MaxTokensPerField = 100_000_000;

    /// <summary>Units of a non-token meter in one event.</summary>
    public const decimal MaxQuantity = 1_000_000m;

    /// <summary>10^13 µcr = 10,000,000 credits: no single call may be worth more.</summary>
    public const long MaxMicroCreditsPerEvent = 10_000_000_000_000;

    /// <summary>10^17 µcr = 100,000,000,000 credits: a tenant's rated usage in one billing period.</summary>
    public const long MaxMicroCreditsPerTenantPeriod = 100_000_000_000_000_000;

    /// <summary>10^15 tokens: a tenant's tokens (every kind and category) in one billing period.</summary>
    public const long MaxTokensPerTenantPeriod = 1_000_000_000_000_000;

    /// <summary>The longest range a usage report sums over (13 periods at the cap stay far below 2^63).</summary>
    public static readonly TimeSpan MaxReportRange = TimeSpan.FromDays(400);

    /// <summary>Characters of a project's name (on usage events, API keys and budgets).</summary>
    public const int MaxProjectLength = 128;

    public static string Number(long value) => value.ToString("N0", CultureInfo.InvariantCulture);
}
