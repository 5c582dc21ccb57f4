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

    public static long MicroCredits(decimal costUsd, ConversionRule rule) =>
        (long)Math.Round(Credits(costUsd, rule) * 1_000_000m, MidpointRounding.AwayFromZero);

    /// <summary>The overhead part of a charge, in USD, for explaining it.</summary>
    public static decimal OverheadUsd(decimal costUsd, ConversionRule rule) => costUsd * rule.Overhead;
}
