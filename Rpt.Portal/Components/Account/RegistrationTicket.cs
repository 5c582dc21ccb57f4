using Microsoft.AspNetCore.DataProtection;

namespace Rpt.Portal.Components.Account;

/// <summary>
/// Marks the browser that has just registered an account, so that the confirmation page can show the
/// confirmation link (in Development, where no mail is sent) to that visitor only, and never for an
/// address someone merely typed into the query string. A protected, short-lived, HTTP-only cookie.
/// </summary>
public sealed class RegistrationTicket(IDataProtectionProvider protection)
{
    private const string CookieName = "rpt.registered";
    private static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(15);
    private readonly ITimeLimitedDataProtector _protector = protection.CreateProtector("Rpt.Portal.RegistrationTicket").ToTimeLimitedDataProtector();

    public void Issue(HttpContext http, string userId) =>
        http.Response.Cookies.Append(CookieName, _protector.Protect(userId, Lifetime), new CookieOptions
        {
            HttpOnly = true,
            Secure = http.Request.IsHttps,
            SameSite = SameSiteMode.Strict,
            Path = "/Account",
            MaxAge = Lifetime,
        });

    public bool IsFor(HttpContext http, string userId)
    {
        if (!http.Request.Cookies.TryGetValue(CookieName, out var value) || string.IsNullOrEmpty(value)) return false;
        try
        {
            return _protector.Unprotect(value) == userId;
        }
        catch (System.Security.Cryptography.CryptographicException)
        {
            return false;
        }
    }
}
