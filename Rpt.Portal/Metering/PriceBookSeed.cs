namespace Rpt.Portal.Metering;

/// <summary>
/// The list prices Rpt Portal starts with (USD per 1,000,000 tokens; USD per unit for meters), as the
/// providers publish them. Operators add new versions; these rows are never edited.
/// </summary>
public static class PriceBookSeed
{
    public static readonly DateTimeOffset EffectiveFrom = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public static IReadOnlyList<Price> Prices()
    {
        var t = EffectiveFrom;
        return
        [
            Price.ForModel("openai", "gpt-4o", 2.50m, 10.00m, 1.25m, t),
            Price.ForModel("openai", "gpt-4o-mini", 0.15m, 0.60m, 0.075m, t),
            Price.ForModel("openai", "gpt-4.1", 2.00m, 8.00m, 0.50m, t),
            Price.ForModel("openai", "gpt-4.1-mini", 0.40m, 1.60m, 0.10m, t),
            Price.ForModel("openai", "o3-mini", 1.10m, 4.40m, 0.55m, t),
            Price.ForModel("anthropic", "claude-3-5-haiku", 0.80m, 4.00m, 0.08m, t),
            Price.ForModel("anthropic", "claude-sonnet-4", 3.00m, 15.00m, 0.30m, t),
            Price.ForModel("anthropic", "claude-opus-4", 15.00m, 75.00m, 1.50m, t),
            Price.ForModel("google", "gemini-1.5-flash", 0.075m, 0.30m, 0.01875m, t),
            Price.ForModel("google", "gemini-2.0-flash", 0.10m, 0.40m, 0.025m, t),
            Price.ForModel("google", "gemini-2.5-pro", 1.25m, 10.00m, 0.31m, t),
            Price.ForMeter("openai", "image_generation", 0.04m, t),
            Price.ForMeter("openai", "audio_transcription_minute", 0.006m, t),
            Price.ForMeter("google", "image_generation", 0.03m, t),
        ];
    }
}
