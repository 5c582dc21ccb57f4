namespace Rpt.Portal.Components.Layout;

/// <summary>The theme a page opens in: the person's own choice if they made one, else their system's.</summary>
/// <param name="Dark">Whether to draw the dark palette.</param>
/// <param name="Chosen">Whether the person chose it (a remembered cookie); otherwise it follows the system.</param>
public sealed record ThemeSettings(bool Dark, bool Chosen);

/// <summary>
/// Remembers the light/dark choice in a cookie that every page, interactive or static (the account pages),
/// reads before it draws, so no page flashes the other theme. Without a choice the browser's
/// <c>Sec-CH-Prefers-Color-Scheme</c> hint decides, and the interactive pages also ask the browser itself.
/// </summary>
public static class ThemeChoice
{
    public const string Cookie = "rpt-theme";
    public const string Hint = "Sec-CH-Prefers-Color-Scheme";
    public static readonly TimeSpan RememberedFor = TimeSpan.FromDays(365);

    public static ThemeSettings Of(HttpContext http)
    {
        if (http.Request.Cookies.TryGetValue(Cookie, out var chosen) && chosen is "dark" or "light")
            return new(chosen == "dark", true);
        return new(string.Equals(http.Request.Headers[Hint].ToString().Trim('"'), "dark", StringComparison.OrdinalIgnoreCase), false);
    }

    /// <summary>
    /// GET /theme/{dark|light|system}?returnUrl=…: the switch of the static pages, which have no circuit
    /// to run a click handler. It changes a display preference only, and returns to a local address only.
    /// </summary>
    public static IEndpointRouteBuilder MapThemeChoice(this IEndpointRouteBuilder app)
    {
        app.MapGet("/theme/{mode}", (string mode, string? returnUrl, HttpContext http) =>
        {
            if (mode is not ("dark" or "light" or "system"))
                return Results.Problem(statusCode: 400, title: "Unknown theme", detail: $"mode must be dark, light or system, not '{Truncate(mode)}'.");
            if (mode == "system") http.Response.Cookies.Delete(Cookie);
            else http.Response.Cookies.Append(Cookie, mode, CookieFor(http));
            var back = returnUrl is { Length: > 0 and <= 2048 } url && url.StartsWith('/') && !url.StartsWith("//") && !url.StartsWith("/\\") ? url : "/";
            return Results.LocalRedirect(back);
        }).ExcludeFromDescription();
        return app;
    }

    /// <summary>The static pages' switch: a link to the other theme that comes back to this page.</summary>
    public static string SwitchLink(Microsoft.AspNetCore.Components.NavigationManager navigation, bool dark) =>
        $"theme/{(dark ? "light" : "dark")}?returnUrl={Uri.EscapeDataString("/" + navigation.ToBaseRelativePath(navigation.Uri))}";

    public static CookieOptions CookieFor(HttpContext http) => new()
    {
        Path = "/",
        MaxAge = RememberedFor,
        SameSite = SameSiteMode.Lax,
        Secure = http.Request.IsHttps,
        IsEssential = true,
    };

    private static string Truncate(string s) => s.Length <= 20 ? s : s[..20] + "…";
}
