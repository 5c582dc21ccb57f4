using Rpt.Portal.Components.Shared;

namespace Rpt.Portal.Tests.Components.Shared;

/// <summary>The one set of number formats every page uses, at its edges.</summary>
[Trait("Kind", "Unit")]
public class ShowTests
{
    [Theory]
    [InlineData(0L, "0")]
    [InlineData(1_980L, "1,980")]
    [InlineData(-1_181L, "-1,181")]
    [InlineData(1_000_000_000_000L, "1,000,000,000,000")]
    [InlineData(long.MinValue, "-9,223,372,036,854,775,808")]
    public void Credits_AreWholeWithSeparators(long credits, string expected) => Assert.Equal(expected, Show.Credits(credits));

    [Theory]
    [InlineData(25_000L, "+25,000")]
    [InlineData(0L, "0")]
    [InlineData(-300L, "-300")]
    public void SignedCredits_ShowTheSignOfAGrant(long credits, string expected) => Assert.Equal(expected, Show.SignedCredits(credits));

    [Theory]
    [InlineData(77_107_734L, "77")]            // six decimals read as whole credits
    [InlineData(77_500_000L, "78")]            // half-way rounds away from zero
    [InlineData(77_499_999L, "77")]
    [InlineData(-77_500_000L, "-78")]
    [InlineData(0L, "0")]
    [InlineData(499_999L, "< 1")]              // something, not nothing
    [InlineData(500_000L, "1")]
    [InlineData(-1L, "> -1")]
    [InlineData(1_000_000_000_000_000_000L, "1,000,000,000,000")] // 10^12 credits in micro-credits
    public void MicroCredits_ReadAsWholeCredits(long micro, string expected) => Assert.Equal(expected, Show.MicroCredits(micro));

    [Theory]
    [InlineData(77_107_734L, "77.107734")]
    [InlineData(1_300_110_880L, "1,300.11088")]
    [InlineData(25_000_000_000L, "25,000")]
    [InlineData(1L, "0.000001")]
    [InlineData(-1_500_000L, "-1.5")]
    public void ExactCredits_KeepEveryMillionth(long micro, string expected) => Assert.Equal(expected, Show.ExactCredits(micro));

    [Theory]
    [InlineData("0", "$0.00")]
    [InlineData("1234.5", "$1,234.50")]
    [InlineData("0.005", "$0.01")]             // half a cent rounds up
    [InlineData("0.004999", "$0.00")]
    [InlineData("-0.105", "-$0.11")]
    [InlineData("1000000000000", "$1,000,000,000,000.00")]
    public void Usd_IsToTheCent(string usd, string expected) => Assert.Equal(expected, Show.Usd(decimal.Parse(usd, System.Globalization.CultureInfo.InvariantCulture)));

    [Theory]
    [InlineData("0.8", "$0.80")]
    [InlineData("0.01875", "$0.01875")]        // as published, on every page
    [InlineData("2.5", "$2.50")]
    [InlineData("0.075", "$0.075")]
    [InlineData("1000", "$1,000.00")]
    public void Price_KeepsItsPublishedPrecision_AndAtLeastCents(string usd, string expected) =>
        Assert.Equal(expected, Show.Price(decimal.Parse(usd, System.Globalization.CultureInfo.InvariantCulture)));

    [Theory]
    [InlineData("0.0004", "< $0.01")]
    [InlineData("0", "$0.00")]
    [InlineData("0.006", "$0.01")]
    public void Cost_OfOneCall_IsToTheCent_OrLessThanACent(string usd, string expected) =>
        Assert.Equal(expected, Show.Cost(decimal.Parse(usd, System.Globalization.CultureInfo.InvariantCulture)));

    [Theory]
    [InlineData("104.7123", "104.7 %")]
    [InlineData("100", "100 %")]
    [InlineData("0", "0 %")]
    [InlineData("33.35", "33.4 %")]            // half-way away from zero
    [InlineData("-2.25", "-2.3 %")]
    [InlineData("1234.5", "1,234.5 %")]
    public void Percent_HasOneDecimal(string percent, string expected) =>
        Assert.Equal(expected, Show.Percent(decimal.Parse(percent, System.Globalization.CultureInfo.InvariantCulture)));

    [Theory]
    [InlineData("99", "$99")]
    [InlineData("1500", "$1,500")]
    [InlineData("9.99", "$9.99")]
    public void PlanPrice_IsWholeDollarsUnlessItHasCents(string usd, string expected) =>
        Assert.Equal(expected, Show.PlanPrice(decimal.Parse(usd, System.Globalization.CultureInfo.InvariantCulture)));
}
