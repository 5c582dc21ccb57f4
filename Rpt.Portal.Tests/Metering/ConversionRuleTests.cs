using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Rpt.Portal.Data;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Tests.Metering;

[Trait("Kind", "Sqlite")]
public class ConversionRuleTests
{
    [Fact]
    public async Task Startup_ConfiguredOverheadChanges_AppendsARuleVersion_OldEventsKeepTheirRule()
    {
        var dir = PortalHarness.NewDirectory();
        await using (var first = await PortalHarness.StartAsync(directory: dir))
        {
            await first.CreateTenantAsync("acme");
            await first.IngestAsync("acme", Events.Call("a"));
        }
        await using var second = await PortalHarness.StartAsync(new Dictionary<string, string?>
        {
            ["Rpt:Credits:Overhead"] = "0.50",
            ["Rpt:Credits:UsdPerCredit"] = "0.02",
        }, PortalHarness.DefaultStart.AddDays(1), dir);
        await second.IngestAsync("acme", Events.Call("b", at: PortalHarness.DefaultStart.AddDays(1)));

        await using var db = await second.Get<IDbContextFactory<ApplicationDbContext>>().CreateDbContextAsync();
        Assert.Equal(2, await db.ConversionRules.CountAsync());
        var events = await db.UsageEvents.OrderBy(e => e.Seq).ToListAsync();
        Assert.Equal(110_880, events[0].MicroCredits);  // 0.000924 × 1.2 / 0.01
        Assert.Equal(69_300, events[1].MicroCredits);   // 0.000924 × 1.5 / 0.02
        Assert.NotEqual(events[0].RuleId, events[1].RuleId);
    }

    [Fact]
    public async Task Startup_InvalidOverhead_StopsWithAMessageNamingTheSetting()
    {
        var ex = await Assert.ThrowsAsync<OptionsValidationException>(async () =>
        {
            await using var h = await PortalHarness.StartAsync(new Dictionary<string, string?> { ["Rpt:Credits:Overhead"] = "-0.1" });
            await h.App.StartAsync();
        });
        Assert.Contains("Rpt:Credits:Overhead", ex.Message);
    }
}
