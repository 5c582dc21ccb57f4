using Rpt.Portal.Ledger;

namespace Rpt.Portal.Tests.Ledger;

[Trait("Kind", "Sqlite")]
public class DashboardSnapshotsTests
{
    [Fact]
    public async Task ManyOpenDashboardsOfOneTenant_CostOneRead_AndAChangeIsSeenAfterAtMostTheMinimumInterval()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme");
        var snapshots = h.Get<DashboardSnapshots>();

        var first = await Task.WhenAll(Enumerable.Range(0, 500).Select(_ => Task.Run(() => snapshots.GetAsync("acme"))));
        Assert.Equal(1, snapshots.Reads);
        Assert.All(first, s => Assert.Equal(0, s!.Balance.ConsumedMicroCredits));

        // A burst of usage: many changes, many refreshes, one more read once the interval has passed.
        for (var i = 0; i < 20; i++) await h.IngestAsync("acme", Events.Call($"e{i}"));
        await Task.Delay(200); // the notifications are delivered on the thread pool
        var pending = Enumerable.Range(0, 500).Select(_ => snapshots.GetAsync("acme")).ToList();
        h.Time.Advance(DashboardSnapshots.MinInterval);
        var second = await Task.WhenAll(pending);
        Assert.Equal(2, snapshots.Reads);
        Assert.All(second, s => Assert.Equal(h.Balance("acme").ConsumedMicroCredits, s!.Balance.ConsumedMicroCredits));

        // Nothing changed: no read, until the snapshot is MaxAge old.
        await snapshots.GetAsync("acme");
        Assert.Equal(2, snapshots.Reads);
        h.Time.Advance(DashboardSnapshots.MaxAge);
        await snapshots.GetAsync("acme");
        Assert.Equal(3, snapshots.Reads);
    }
}
