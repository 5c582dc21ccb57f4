using System.Net;
using System.Text.RegularExpressions;

namespace Rpt.Portal.Tests.Support;

/// <summary>The sign-in form as a browser posts it, over any HTTP client that does not keep cookies itself.</summary>
public static partial class SignIn
{
    /// <summary>Posts the form (with its antiforgery cookie and token); the identity cookie it sets, as "name=value".</summary>
    public static async Task<string> WithPasswordAsync(HttpClient http, string email, string password)
    {
        var form = await http.GetAsync("/Account/Login");
        var jar = Cookies(form);
        var fields = HiddenInput().Matches(await form.Content.ReadAsStringAsync())
            .ToDictionary(m => WebUtility.HtmlDecode(m.Groups[1].Value), m => WebUtility.HtmlDecode(m.Groups[2].Value));
        fields["Input.Email"] = email;
        fields["Input.Password"] = password;
        using var post = new HttpRequestMessage(HttpMethod.Post, "/Account/Login") { Content = new FormUrlEncodedContent(fields) };
        post.Headers.Add("Cookie", string.Join("; ", jar));
        var answer = await http.SendAsync(post);
        Assert.True(answer.StatusCode == HttpStatusCode.Redirect, $"sign-in answered {(int)answer.StatusCode}: {await answer.Content.ReadAsStringAsync()}");
        return Cookies(answer).Single(c => c.StartsWith(".AspNetCore.Identity.Application=", StringComparison.Ordinal));
    }

    /// <summary>A GET that carries the cookie, as the browser sends it.</summary>
    public static Task<HttpResponseMessage> GetAsync(HttpClient http, string path, string cookie)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Add("Cookie", cookie);
        return http.SendAsync(request);
    }

    private static List<string> Cookies(HttpResponseMessage response) =>
        response.Headers.TryGetValues("Set-Cookie", out var values) ? values.Select(v => v.Split(';')[0]).ToList() : [];

    [GeneratedRegex("<input[^>]*type=\"hidden\"[^>]*name=\"([^\"]+)\"[^>]*value=\"([^\"]*)\"")]
    private static partial Regex HiddenInput();
}
