using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Rpt.Portal.Data;
using Rpt.Portal.Ledger;

namespace Rpt.Portal.Tests.Ledger;

[Trait("Kind", "Sqlite")]
public class FlushUsageTests
{
    [Fact]
    public async Task Flush_WritesOneConsumptionEntryPerTenantNamingTheEventsItCovers()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme");
        await h.CreateTenantAsync("globex");
        await h.IngestAsync("acme", Events.Call("a1"), Events.Call("a2"), Events.Call("a3", status: "failed"));
        await h.IngestAsync("globex", Events.Call("g1", model: "gpt-4o"));

        var outcome = await h.FlushAsync();
        Assert.Equal(2, outcome.Entries);
        Assert.Equal(4, outcome.Events);

        await using var db = await h.Get<IDbContextFactory<ApplicationDbContext>>().CreateDbContextAsync();
        var acme = await db.LedgerEntries.SingleAsync(e => e.TenantId == "acme" && e.Kind == EntryKind.Consumption);
        Assert.Equal(2 * 110_880, acme.AmountMicroCredits);
        Assert.Equal(3, acme.EventCount); // the failed call is covered too, at no charge
        Assert.Equal(0, acme.CoversFromSeq);
        Assert.Equal(4, acme.CoversToSeq);
        Assert.Equal(EntrySource.Usage, acme.Source);
        Assert.Equal(0, (await h.FlushAsync()).Events); // nothing new: nothing written
    }

    [Fact]
    public async Task Balance_CountsUnflushedUsage_AndIsTheSameBeforeAndAfterAFlush()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme");
        await h.IngestAsync("acme", Enumerable.Range(0, 10).Select(i => Events.Call($"e{i}")).ToArray());
        var before = h.Balance("acme");
        Assert.Equal(1_108_800, before.ConsumedMicroCredits);
        Assert.Equal(1_108_800, before.UnflushedMicroCredits);
        Assert.Equal(1, before.Consumed); // floor(1.1088)

        await h.FlushAsync();
        var after = h.Balance("acme");
        Assert.Equal(before.ConsumedMicroCredits, after.ConsumedMicroCredits);
        Assert.Equal(0, after.UnflushedMicroCredits);
        Assert.Equal(1_108_800, after.FlushedMicroCredits);
    }

    [Fact]
    public async Task UsageFlusher_RunsEveryFiveSecondsOfTheClock()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme");
        var flusher = h.Services.GetServices<IHostedService>().OfType<UsageFlusher>().Single();
        await flusher.StartAsync(CancellationToken.None);
        await h.IngestAsync("acme", Events.Call("a"));

        var started = h.Time.GetUtcNow();

        // Four seconds, then one more: the one flush happens at the fifth second of the clock, not at any tick before it.
        h.Time.Advance(TimeSpan.FromSeconds(4));
        h.Time.Advance(TimeSpan.FromSeconds(1));
        await WaitUntil(() => h.Scalar("SELECT COUNT(*) FROM ledger_entries WHERE kind = 'consumption'") == 1);
        await using var db = await h.Get<Microsoft.EntityFrameworkCore.IDbContextFactory<Rpt.Portal.Data.ApplicationDbContext>>().CreateDbContextAsync();
        var flushedAt = db.LedgerEntries.Where(e => e.Kind == EntryKind.Consumption).AsEnumerable().Single().CreatedAt;
        Assert.Equal(started + TimeSpan.FromSeconds(5), flushedAt);
        await flusher.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task Flush_UsageInTwoBillingPeriods_WritesAnEntryForEach()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme"); // anchored 2026-04-01
        h.Time.Advance(TimeSpan.FromDays(31));
        await h.IngestAsync("acme", Events.Call("april", at: new DateTimeOffset(2026, 4, 30, 23, 59, 0, TimeSpan.Zero)),
            Events.Call("may", at: new DateTimeOffset(2026, 5, 1, 0, 1, 0, TimeSpan.Zero)));
        await h.FlushAsync();
        Assert.Equal(2, h.Scalar("SELECT COUNT(DISTINCT period_start) FROM ledger_entries WHERE kind = 'consumption'"));
        Assert.Equal(110_880, h.Balance("acme").ConsumedMicroCredits); // May only
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        for (var i = 0; i < 100 && !condition(); i++) await Task.Delay(50);
        Assert.True(condition());
    }
}
