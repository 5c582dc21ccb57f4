using System.Security.Claims;
using Microsoft.AspNetCore.Http;
using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Components;
using Rpt.Portal.Data;
using Rpt.Portal.Ledger;
using Rpt.Portal.Metering;
using Rpt.Portal.Plans;

namespace Rpt.Portal.Tests.Metering;

[Trait("Kind", "Sqlite")]
public class UsageCsvTests
{
    private static async Task<(int Status, string Body)> ExportAsync(PortalHarness h, string tenant, string? job = null)
    {
        var http = new DefaultHttpContext { RequestServices = h.Services };
        http.User = new ClaimsPrincipal(new ClaimsIdentity([new Claim(PortalClaimsFactory.TenantClaim, tenant)], "test"));
        var body = new MemoryStream();
        http.Response.Body = body;
        var result = await Rpt.Portal.Metering.Pages.UsageCsv.ExportAsync(http, h.Get<UsageReports>(), h.Get<Rpt.Portal.Tenants.TenantDirectory>(), h.Get<IDbContextFactory<ApplicationDbContext>>(), null, null, null, null, job);
        await result.ExecuteAsync(http);
        return (http.Response.StatusCode, System.Text.Encoding.UTF8.GetString(body.ToArray()));
    }

    [Fact]
    public async Task Export_OnAPlanWithCsv_StreamsEveryMatchingCall()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme", "starter");
        await h.IngestAsync("acme", Events.Call("c1", job: "j1", feature: "=HYPERLINK(1)"), Events.Call("c2", job: "j2"));
        var (status, csv) = await ExportAsync(h, "acme", job: "j1");
        Assert.Equal(200, status);
        var lines = csv.TrimEnd().Split('\n');
        Assert.StartsWith("occurred_at,id,provider,model,", lines[0]);
        Assert.Equal(2, lines.Length); // the header and j1's one call
        Assert.Contains(",c1,openai,gpt-4o-mini,", lines[1]);
        Assert.Contains(",'=HYPERLINK(1),", lines[1]); // a spreadsheet formula is defused
        Assert.EndsWith(",110880,0.11088", lines[1]);
    }

    [Fact]
    public async Task Export_OnTheFreePlan_IsRefusedNamingThePlan()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme", "free");
        var (status, body) = await ExportAsync(h, "acme");
        Assert.Equal(403, status);
        Assert.Contains("CSV export is not part of the Free plan", body);
    }
}
