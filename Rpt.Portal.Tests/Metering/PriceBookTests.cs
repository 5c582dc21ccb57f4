using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Data;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Tests.Metering;

[Trait("Kind", "Sqlite")]
public class PriceBookTests
{
    [Fact]
    public void Seed_HasAtLeastEightModelsFromThreeProvidersAndTwoMeters()
    {
        var prices = PriceBookSeed.Prices();
        var models = prices.Where(p => !p.IsMeter).ToList();
        Assert.True(models.Count >= 8, $"{models.Count} models");
        Assert.True(models.Select(p => p.Provider).Distinct().Count() >= 3);
        Assert.True(prices.Where(p => p.IsMeter).Select(p => p.Meter).Distinct().Count() >= 2);
        Assert.All(prices, p => Assert.Equal("USD", p.Currency));
    }

    [Fact]
    public async Task Ingest_PriceChange_AppliesFromItsEffectiveInstantAndNeverRewritesAPastCharge()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme");
        var change = PortalHarness.DefaultStart.AddDays(2);
        h.Time.Advance(TimeSpan.FromHours(1));
        await h.IngestAsync("acme", Events.Call("before", at: PortalHarness.DefaultStart.AddHours(1)));

        await using (var db = await h.Get<IDbContextFactory<ApplicationDbContext>>().CreateDbContextAsync())
        {
            db.Prices.Add(Price.ForModel("openai", "gpt-4o-mini", 0.075m, 0.30m, 0.0375m, change)); // half price
            await db.SaveChangesAsync();
        }
        h.Get<PriceBookProvider>().RefreshIfChanged();
        h.Time.Advance(TimeSpan.FromDays(3));
        await h.IngestAsync("acme",
            Events.Call("late-report-of-old-call", at: change.AddMinutes(-1)),
            Events.Call("after", at: change.AddMinutes(1)));

        await using var read = await h.Get<IDbContextFactory<ApplicationDbContext>>().CreateDbContextAsync();
        var charges = await read.UsageEvents.ToDictionaryAsync(e => e.EventId, e => e.MicroCredits);
        Assert.Equal(110_880, charges["before"]);
        Assert.Equal(110_880, charges["late-report-of-old-call"]); // rated at the price in effect when it occurred
        Assert.Equal(55_440, charges["after"]);                    // the model got cheaper: the same work costs less
    }

    [Fact]
    public async Task Prices_UpdateOrDelete_IsRefusedByTheDatabase()
    {
        await using var h = await PortalHarness.StartAsync();
        var update = Assert.ThrowsAny<System.Data.Common.DbException>(() => h.Execute("UPDATE prices SET input_per_mtok = '0.01'"));
        Assert.Contains("append-only", update.Message);
        Assert.ThrowsAny<System.Data.Common.DbException>(() => h.Execute("DELETE FROM prices"));
    }

    [Fact]
    public async Task Find_MeterOfferedByTwoProviders_AsksForTheProvider()
    {
        await using var h = await PortalHarness.StartAsync();
        var book = h.Get<PriceBookProvider>().Current;
        var (price, error) = book.Find(null, "image_generation", meter: true, PortalHarness.DefaultStart);
        Assert.Null(price);
        Assert.Contains("name the provider", error);
        Assert.NotNull(book.Find("google", "image_generation", true, PortalHarness.DefaultStart).Price);
    }

    [Fact]
    public async Task InEffectAt_BeforeTheFirstPrice_ListsNothing_AndNowListsEverySeededPrice()
    {
        await using var h = await PortalHarness.StartAsync();
        var book = h.Get<PriceBookProvider>().Current;
        Assert.Empty(book.InEffectAt(PriceBookSeed.EffectiveFrom.AddTicks(-1)));
        Assert.Equal(PriceBookSeed.Prices().Count, book.InEffectAt(PortalHarness.DefaultStart).Count);
    }
}
