using System.Globalization;

namespace Rpt.Portal.Data;

/// <summary>An opaque keyset position ("1732492800000.4711"): where the last page ended, so the next starts there.</summary>
public static class Cursor
{
    public static string Of(long first, long second) =>
        first.ToString(CultureInfo.InvariantCulture) + "." + second.ToString(CultureInfo.InvariantCulture);

    public static bool TryParse(string? text, out (long First, long Second) position)
    {
        position = default;
        if (string.IsNullOrEmpty(text) || text.Length > 41) return false;
        var dot = text.IndexOf('.');
        return dot > 0
            && long.TryParse(text.AsSpan(0, dot), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out position.First)
            && long.TryParse(text.AsSpan(dot + 1), NumberStyles.None, CultureInfo.InvariantCulture, out position.Second);
    }
}
