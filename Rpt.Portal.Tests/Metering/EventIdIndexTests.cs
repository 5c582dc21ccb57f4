using Rpt.Portal.Metering;

namespace Rpt.Portal.Tests.Metering;

/// <summary>The writer's exactly-once index: every id it was given is found again, through growth and collisions, and only confirmed candidates count.</summary>
public class EventIdIndexTests
{
    [Fact]
    [Trait("Kind", "Unit")]
    public void EveryPairAdded_IsACandidateForItsSeq_ThroughEveryGrowth()
    {
        var index = new EventIdIndex(capacityHint: 16);
        var pairs = Enumerable.Range(1, 300_000).Select(i => (Tenant: $"t{i % 7}", Id: Guid.NewGuid().ToString())).ToArray();
        for (var i = 0; i < pairs.Length; i++) index.Add(EventIdIndex.Hash(pairs[i].Tenant, pairs[i].Id), i + 1);
        Assert.Equal(pairs.Length, index.Count);
        for (var i = 0; i < pairs.Length; i++)
        {
            var seq = i + 1;
            Assert.True(index.Any(EventIdIndex.Hash(pairs[i].Tenant, pairs[i].Id), s => s == seq), $"pair {i} lost");
        }
        // An id never added finds, at most, a fingerprint match that its confirmation rejects.
        var candidates = 0;
        for (var i = 0; i < 100_000; i++) index.Any(EventIdIndex.Hash("t1", Guid.NewGuid().ToString()), _ => { candidates++; return false; });
        Assert.True(candidates < 50, $"{candidates} candidates for 100,000 new ids");
    }

    [Fact]
    [Trait("Kind", "Unit")]
    public void AMillionIds_TakeAtMost27BytesEach_AndAreAllFoundAgain()
    {
        // What an operator sizes a machine by: 8 bytes a slot, every shard at least 30 % full after its last doubling
        // (it doubles at 60 to 85 %), so at most 27 bytes an id (plus the shards' smallest size).
        var index = new EventIdIndex(capacityHint: 0);
        var hashes = Enumerable.Range(1, 1_000_000).Select(i => EventIdIndex.Hash("acme", Guid.NewGuid().ToString())).ToArray();
        for (var i = 0; i < hashes.Length; i++) index.Add(hashes[i], i + 1);
        Assert.InRange(index.Bytes, hashes.Length * 8L, hashes.Length * 27L + EventIdIndex.Shards * 256 * 8);
        for (var i = 0; i < hashes.Length; i++)
        {
            var seq = i + 1;
            Assert.True(index.Any(hashes[i], s => s == seq), $"id {i} lost");
        }
    }

    [Fact]
    [Trait("Kind", "Unit")]
    public void TheIndexRebuiltAtStart_ForTwentyMillionIds_Takes256MiB()
    {
        // What docs/PERFORMANCE.md tells an operator: the table rebuilt for 20M stored ids is 2^25 slots of 8 bytes.
        // (Sized with 25 % to spare, it was twice that: 537 MB after a restart.)
        Assert.Equal(256L * 1024 * 1024, new EventIdIndex(capacityHint: 20_000_000).Bytes);
    }

    [Fact]
    [Trait("Kind", "Unit")]
    public void TheSameIdOfTwoTenants_AreTwoPairs_AndAFingerprintCollisionDropsNothing()
    {
        Assert.NotEqual(EventIdIndex.Hash("acme", "e1"), EventIdIndex.Hash("globex", "e1"));
        var index = new EventIdIndex();
        const ulong hash = 0xDEADBEEF_00000001UL;
        index.Add(hash, 1);
        index.Add(hash, 2); // two different records whose hashes collide: both kept, told apart by their confirmation
        var seen = new List<long>();
        Assert.False(index.Any(hash, s => { seen.Add(s); return false; }));
        Assert.Equal([1L, 2L], seen.Order());
        Assert.True(index.Any(hash, s => s == 2));
    }

    [Fact]
    [Trait("Kind", "Sqlite")]
    public async Task AfterARestart_TheIndexIsRebuiltFromTheAuditTable_AndEveryOldIdIsStillADuplicate()
    {
        var events = Enumerable.Range(0, 500).Select(i => Events.Call(Guid.NewGuid().ToString())).ToArray();
        string directory;
        await using (var first = await PortalHarness.StartAsync())
        {
            await first.CreateTenantAsync("acme");
            Assert.Equal(500, (await first.IngestAsync("acme", events)).Accepted);
            directory = first.Directory;
            await using var second = await PortalHarness.StartAsync(directory: directory);
            var again = await second.IngestAsync("acme", events.Append(Events.Call("new-one")).ToArray());
            Assert.Equal(500, again.Duplicates);
            Assert.Equal(1, again.Accepted);
            Assert.Equal(501, second.Scalar("SELECT COUNT(*) FROM usage_events"));
            Assert.Equal(501, second.Scalar("SELECT COUNT(DISTINCT event_id) FROM usage_events"));
        }
    }
}
