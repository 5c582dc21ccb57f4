using System.Globalization;
using Rpt.Portal.Ledger;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Components.Shared;

/// <summary>
/// How every page writes numbers, so that one figure reads the same everywhere: whole credits with
/// thousands separators for reading (the exact micro-credits in a tooltip and in exports), money to the
/// cent, prices to the precision they were published with, percentages to one decimal.
/// Rounding is half away from zero, as people round; balances that floor (remaining credits) are
/// floored by <see cref="Balance"/> before they reach here.
/// </summary>
public static class Show
{
    private static readonly CultureInfo Culture = CultureInfo.InvariantCulture;

    /// <summary>A whole number of credits: "18,979", "-1,181".</summary>
    public static string Credits(long credits) => credits.ToString("#,0", Culture);

    /// <summary>A number of credits with a sign, for grants and adjustments: "+25,000", "-300", "0".</summary>
    public static string SignedCredits(long credits) => credits > 0 ? "+" + Credits(credits) : Credits(credits);

    /// <summary>Micro-credits read as whole credits: "77" for 77.107734, "78" for 77.5; "&lt; 1" for a non-zero amount under half a credit.</summary>
    public static string MicroCredits(long micro)
    {
        if (micro != 0 && Math.Abs((decimal)micro) < Credit.MicroPerCredit / 2) return micro > 0 ? "< 1" : "> -1";
        var whole = Math.Round((decimal)micro / Credit.MicroPerCredit, 0, MidpointRounding.AwayFromZero);
        return whole.ToString("#,0", Culture);
    }

    /// <summary>The exact amount, to the millionth: "77.107734", "1,300.11088", "25,000".</summary>
    public static string ExactCredits(long micro)
    {
        var value = (decimal)micro / Credit.MicroPerCredit;
        return value.ToString("#,0.######", Culture);
    }

    /// <summary>Money to the cent: "$1,234.50", "-$0.10", "$0.00".</summary>
    public static string Usd(decimal usd)
    {
        var cents = Math.Round(usd, 2, MidpointRounding.AwayFromZero);
        return (cents < 0 ? "-$" : "$") + Math.Abs(cents).ToString("#,0.00", Culture);
    }

    /// <summary>The cost of one call: to the cent, and under a cent "&lt; $0.01" (the exact amount is in <see cref="ExactUsd"/>).</summary>
    public static string Cost(decimal usd) => usd != 0 && Math.Abs(usd) < 0.005m ? "< $0.01" : Usd(usd);

    /// <summary>An amount as computed, every digit kept: "$0.00044375".</summary>
    public static string ExactUsd(decimal usd) => (usd < 0 ? "-$" : "$") + Math.Abs(usd).ToString("#,0.00##########", Culture);

    /// <summary>A published price, at least to the cent and never rounded: "$0.80", "$0.01875", "$2.50", "$1,000.00".</summary>
    public static string Price(decimal usd) => ExactUsd(usd);

    /// <summary>A price that may be missing: "—".</summary>
    public static string Price(decimal? usd) => usd is { } p ? Price(p) : "—";

    /// <summary>A whole-dollar plan or pack price: "$99", "$1,500"; cents shown when there are any.</summary>
    public static string PlanPrice(decimal usd) => decimal.Truncate(usd) == usd ? "$" + usd.ToString("#,0", Culture) : Usd(usd);

    /// <summary>A share: "104.7 %", "0 %", "33.3 %".</summary>
    public static string Percent(decimal percent) => Math.Round(percent, 1, MidpointRounding.AwayFromZero).ToString("#,0.#", Culture) + " %";

    /// <summary>Tokens, calls and other counts: "1,980".</summary>
    public static string Count(long n) => n.ToString("#,0", Culture);

    /// <summary>Metered units (seconds, images): up to two decimals, "1,234.5".</summary>
    public static string Units(decimal units) => Math.Round(units, 2, MidpointRounding.AwayFromZero).ToString("#,0.##", Culture);

    /// <summary>A date as the pages write it: "25 Nov 2026".</summary>
    public static string Date(DateTimeOffset at) => at.UtcDateTime.ToString("d MMM yyyy", Culture);

    /// <summary>A date as the pages write it: "25 Nov 2026".</summary>
    public static string Date(DateOnly day) => day.ToString("d MMM yyyy", Culture);

    /// <summary>A moment in UTC: "2026-11-25 14:05".</summary>
    public static string Time(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd HH:mm", Culture);
}
