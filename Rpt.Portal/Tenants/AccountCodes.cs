using System.Text;
using Microsoft.AspNetCore.WebUtilities;

namespace Rpt.Portal.Tenants;

/// <summary>The codes that account links carry (base64url of an Identity token); a mangled one is refused, never thrown.</summary>
public static class AccountCodes
{
    public const int MaxLength = 2048;

    public static string Encode(string token) => WebEncoders.Base64UrlEncode(Encoding.UTF8.GetBytes(token));

    public static string? TryDecode(string? code)
    {
        if (string.IsNullOrEmpty(code) || code.Length > MaxLength) return null;
        try
        {
            return Encoding.UTF8.GetString(WebEncoders.Base64UrlDecode(code));
        }
        catch (FormatException)
        {
            return null;
        }
    }
}
