namespace Rpt.Portal.Metering;

/// <summary>
/// The published conversion rule, as arithmetic:
/// cost_usd = Σ tokens × price_per_mtok / 1,000,000 (or quantity × unit_price);
/// credits = cost_usd × (1 + overhead) / usd_per_credit; µcr = round-half-away-from-zero(credits × 1,000,000).
/// Everything is <see cref="decimal"/> until the final, per-event rounding.
/// </summary>
public static class Rating
{
    public static decimal CostUsd(Price price, long inputTokens, long outputTokens, long cachedInputTokens, decimal? quantity)
    {
        if (price.IsMeter) return (quantity ?? 0m) * price.UnitPrice!.Value;
        // Cached input without a cached price is billed at the input price, never for free.
        var cachedPrice = price.CachedInputPerMtok ?? price.InputPerMtok!.Value;
        return (inputTokens * price.InputPerMtok!.Value
              + outputTokens * price.OutputPerMtok!.Value
              + cachedInputTokens * cachedPrice) / 1_000_000m;
    }

    public static decimal Credits(decimal costUsd, ConversionRule rule) => costUsd * (1m + rule.Overhead) / rule.UsdPerCredit;

    /// <exception cref="OverflowException">The charge does not fit a 64-bit count of micro-credits; callers
    /// reject such an input by the limits of <see cref="UsageLimits"/> before it is stored.</exception>
    public static long MicroCredits(decimal costUsd, ConversionRule rule) =>
        decimal.ToInt64(Math.Round(Credits(costUsd, rule) * 1_000_000m, MidpointRounding.AwayFromZero));

    /// <summary>Rates a call, or says which limit it passes: the per-event limit of 10^13 µcr, or a
    /// charge too large to compute at all.</summary>
    public static bool TryRate(Price price, long inputTokens, long outputTokens, long cachedInputTokens, decimal? quantity,
        ConversionRule rule, out decimal costUsd, out long microCredits, out string? error)
    {
        costUsd = 0m;
        microCredits = 0;
        error = null;
        try
        {
            costUsd = CostUsd(price, inputTokens, outputTokens, cachedInputTokens, quantity);
            microCredits = MicroCredits(costUsd, rule);
        }
        catch (OverflowException)
        {
            microCredits = long.MaxValue;
        }
        if (microCredits <= UsageLimits.MaxMicroCreditsPerEvent) return true;
        error = $"the call rates to more than the per-event limit of {UsageLimits.Number(UsageLimits.MaxMicroCreditsPerEvent / 1_000_000)} credits "
            + $"({UsageLimits.Number(UsageLimits.MaxMicroCreditsPerEvent)} µcr); split it into smaller events";
        return false;
    }

    /// <summary>The overhead part of a charge, in USD, for explaining it.</summary>
    public static decimal OverheadUsd(decimal costUsd, ConversionRule rule) => costUsd * rule.Overhead;
}
