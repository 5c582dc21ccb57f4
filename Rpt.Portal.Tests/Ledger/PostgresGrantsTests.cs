using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging.Abstractions;
using Rpt.Portal.Data;
using Rpt.Portal.Data.Postgres;
using Rpt.Portal.Ledger;

namespace Rpt.Portal.Tests.Ledger;

/// <summary>
/// Grants on PostgreSQL, where no database-wide lock serialises the writers: many grants to one tenant at the same
/// moment, each on its own connection, make one unbroken chain, and a key sent several times at once grants once.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Kind", "Postgres")]
public sealed class PostgresGrantsTests(PostgresCluster cluster) : IAsyncLifetime
{
    private PortalHarness _app = default!;

    public async Task InitializeAsync() => _app = await PortalHarness.StartAsync();
    public async Task DisposeAsync() => await _app.DisposeAsync();

    private sealed class Factory(string connectionString, IServiceProvider services) : IDbContextFactory<ApplicationDbContext>
    {
        public ApplicationDbContext CreateDbContext() =>
            new PostgresDbContext(PostgresDbContext.Configure(new DbContextOptionsBuilder<PostgresDbContext>(), connectionString)
                .UseApplicationServiceProvider(services).Options);
    }

    [Fact]
    public async Task ConcurrentGrantsToOneTenant_MakeOneUnbrokenChain_AndARepeatedKeyGrantsOnce()
    {
        var factory = new Factory(await cluster.CreateDatabaseAsync(), _app.Services);
        await using (var db = factory.CreateDbContext())
        {
            await db.Database.MigrateAsync();
            db.Tenants.Add(new Tenant("acme", "Acme", "professional", _app.Time.GetUtcNow()));
            await db.SaveChangesAsync();
        }
        var grants = new GrantCredits(factory, _app.Time, new TenantChanges(NullLogger<TenantChanges>.Instance));

        var distinct = Enumerable.Range(0, 24).Select(i => Task.Run(() => grants.ExecuteAsync("acme", EntrySource.TopUp, 10 + i, $"topup:{i}")));
        var repeated = Enumerable.Range(0, 8).Select(_ => Task.Run(() => grants.ExecuteAsync("acme", EntrySource.Adjustment, 7, "adjust:once")));
        var results = await Task.WhenAll(distinct.Concat(repeated));

        Assert.Equal(25, results.Count(r => r.Status == GrantStatus.Granted));
        Assert.Equal(7, results.Count(r => r.Status == GrantStatus.AlreadyGranted));
        await using var check = factory.CreateDbContext();
        var chain = await check.LedgerEntries.AsNoTracking().Where(e => e.TenantId == "acme").OrderBy(e => e.Seq).ToListAsync();
        Assert.Equal(Enumerable.Range(1, 25).Select(i => (long)i), chain.Select(e => e.Seq));
        var previous = LedgerHash.Genesis;
        foreach (var e in chain)
        {
            Assert.Equal(previous, e.PrevHash);
            Assert.Equal(LedgerHash.Compute(e), e.Hash);
            previous = e.Hash;
        }
        Assert.Equal(Enumerable.Range(0, 24).Sum(i => 10L + i) + 7, chain.Sum(e => e.AmountMicroCredits) / 1_000_000);
    }
}
