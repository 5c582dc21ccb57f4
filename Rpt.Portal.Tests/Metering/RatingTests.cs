using Rpt.Portal.Metering;

namespace Rpt.Portal.Tests.Metering;

[Trait("Kind", "Unit")]
public class RatingTests
{
    private static readonly DateTimeOffset T = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly ConversionRule Published = new(0.01m, 0.20m, T);

    [Fact]
    public void MicroCredits_DomainExample_IsCostTimesOverheadOverUsdPerCredit()
    {
        // gpt-4o-mini: 3,200 input at $0.15/Mtok and 740 output at $0.60/Mtok.
        var price = Price.ForModel("openai", "gpt-4o-mini", 0.15m, 0.60m, 0.075m, T);
        var cost = Rating.CostUsd(price, 3200, 740, 0, null);
        Assert.Equal(0.000924m, cost);                       // (480 + 444) / 1,000,000 USD
        Assert.Equal(0.11088m, Rating.Credits(cost, Published)); // × 1.20 / 0.01
        Assert.Equal(110_880, Rating.MicroCredits(cost, Published));
    }

    [Fact]
    public void CostUsd_CachedInput_UsesTheCachedPrice()
    {
        var price = Price.ForModel("openai", "gpt-4o-mini", 0.15m, 0.60m, 0.075m, T);
        Assert.Equal(0.075m, Rating.CostUsd(price, 0, 0, 1_000_000, null));
    }

    [Fact]
    public void CostUsd_CachedInputWithoutCachedPrice_IsBilledAtTheInputPrice()
    {
        var price = Price.ForModel("acme", "m", 2m, 4m, null, T);
        Assert.Equal(2m, Rating.CostUsd(price, 0, 0, 1_000_000, null));
    }

    [Fact]
    public void CostUsd_Meter_IsQuantityTimesUnitPrice()
    {
        var price = Price.ForMeter("openai", "image_generation", 0.04m, T);
        var cost = Rating.CostUsd(price, 0, 0, 0, 3m);
        Assert.Equal(0.12m, cost);
        Assert.Equal(14_400_000, Rating.MicroCredits(cost, Published)); // 0.12 × 1.2 / 0.01 = 14.4 credits
    }

    [Theory]
    [InlineData("0.5", 1)]   // 0.5 µcr rounds away from zero, not to even
    [InlineData("2.5", 3)]   // banker's rounding would give 2
    [InlineData("2.4999", 2)]
    [InlineData("1.5", 2)]
    public void MicroCredits_RoundsHalfAwayFromZero_PerEvent(string pricePerMtok, long expected)
    {
        // With overhead 0 and $1 per credit, one token at $p/Mtok is exactly p µcr.
        var rule = new ConversionRule(1m, 0m, T);
        var price = Price.ForModel("acme", "m", decimal.Parse(pricePerMtok, System.Globalization.CultureInfo.InvariantCulture), 0m, null, T);
        Assert.Equal(expected, Rating.MicroCredits(Rating.CostUsd(price, 1, 0, 0, null), rule));
    }

    [Fact]
    public void MicroCredits_LargestAllowedCall_DoesNotOverflowAndStaysExact()
    {
        var price = Price.ForModel("anthropic", "claude-opus-4", 15m, 75m, 1.5m, T);
        var max = UsageLimits.MaxTokensPerField;
        var cost = Rating.CostUsd(price, max, max, max, null);
        Assert.Equal(9_150m, cost);
        Assert.Equal(1_098_000_000_000, Rating.MicroCredits(cost, Published));
        Assert.True(Rating.TryRate(price, max, max, max, null, Published, out _, out var micro, out _));
        Assert.True(micro <= UsageLimits.MaxMicroCreditsPerEvent);
    }

    [Fact]
    public void TryRate_CallWorthMoreThanThePerEventLimit_IsRefusedNamingTheLimit()
    {
        // An operator's price of $100,000 per million tokens: 100M output tokens would be $10M, 1.2 billion credits.
        var price = Price.ForModel("acme", "giant", 1m, 100_000m, null, T);
        Assert.False(Rating.TryRate(price, 0, UsageLimits.MaxTokensPerField, 0, null, Published, out _, out _, out var error));
        Assert.Contains("per-event limit of 10,000,000 credits", error);
    }

    [Fact]
    public void TryRate_ChargeTooLargeForAnyType_IsRefusedNotThrown()
    {
        var price = Price.ForModel("acme", "absurd", 1e20m, 1e20m, null, T);
        Assert.False(Rating.TryRate(price, UsageLimits.MaxTokensPerField, UsageLimits.MaxTokensPerField, 0, null, Published, out _, out _, out var error));
        Assert.Contains("per-event limit", error);
    }

    [Fact]
    public void ForModel_NegativePrice_IsRefusedNamingTheField()
    {
        var ex = Assert.Throws<ArgumentException>(() => Price.ForModel("openai", "x", -1m, 1m, null, T));
        Assert.Contains("input_per_mtok", ex.Message);
    }
}
