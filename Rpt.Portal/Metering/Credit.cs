using System.Globalization;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;

namespace Rpt.Portal.Metering;

/// <summary>Fixed-point credits: 1 credit = 1,000,000 micro-credits (µcr).</summary>
public static class Credit
{
    public const long MicroPerCredit = 1_000_000;

    public static long ToMicro(long credits) => checked(credits * MicroPerCredit);

    /// <summary>What leaves the system is an integer: consumption is floored, never rounded up.</summary>
    public static long FloorCredits(long micro) => micro >= 0 ? micro / MicroPerCredit : -((-micro + MicroPerCredit - 1) / MicroPerCredit);

    public static decimal ToCredits(long micro) => micro / (decimal)MicroPerCredit;

    public static string Format(long micro) => ToCredits(micro).ToString("0.######", CultureInfo.InvariantCulture);
}
