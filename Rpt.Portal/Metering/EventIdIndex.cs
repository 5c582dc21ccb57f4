using System.IO.Hashing;
using System.Runtime.InteropServices;

namespace Rpt.Portal.Metering;

/// <summary>
/// The exactly-once index of the ingestion writer: which (tenant, event id) pairs the audit table already
/// holds, as open-addressing hash tables of a 32-bit fingerprint and the record's seq per slot (8 bytes,
/// kept at most 85 % full). It replaces the unique B-tree index on (tenant_id, event_id), whose random inserts
/// made every group commit write one page per event once the index outgrew the cache (docs/PERFORMANCE.md).
/// <para>
/// It decides nothing alone: a fingerprint match is a candidate, confirmed by reading that seq's tenant and id
/// from the audit table (one primary-key read; only retries and about one event in a billion hit one), so a
/// collision can never drop an event. It is derived data: built from the audit table when the writer opens,
/// and caught up inside each write transaction with whatever another process wrote, so it can be lost, lag
/// or be rebuilt without ever breaking exactly-once.
/// </para>
/// <para>
/// The table is split into <see cref="Shards"/> shards by the hash's low bits, each growing by itself: a
/// doubling copies one shard (under a megabyte at 20M ids) rather than the whole table, so the index never
/// holds its old and new arrays at once, and growing needs no collection of the whole heap. Each shard doubles at its own
/// fill (60–85 %), so the doublings are spread out too.
/// </para>
/// </summary>
internal sealed class EventIdIndex
{
    /// <summary>How many shards the table is split into (a power of two).</summary>
    public const int Shards = 256;

    /// <summary>How full a shard may get before it doubles: from 60 % to 85 % by the shard's number, so that shards, which
    /// fill at the same pace, double one after another rather than all within a few thousand ids (a pause of a second at
    /// 13.4M ids when they all had the same limit).</summary>
    private const double MinLoad = 0.60, MaxLoad = 0.85;

    private const int MinShardBits = 8;
    private readonly Shard[] _shards = new Shard[Shards];

    /// <param name="capacityHint">How many ids the table should hold without growing.</param>
    public EventIdIndex(long capacityHint = 1 << 16)
    {
        // Each shard sized for its share at its own limit: room beyond that is added a shard at a time, when it is needed.
        var perShard = Math.Max(1, capacityHint / Shards + 1);
        for (var i = 0; i < Shards; i++)
        {
            var load = MinLoad + (MaxLoad - MinLoad) * i / (Shards - 1);
            _shards[i] = new Shard(Math.Max(MinShardBits, (int)Math.Ceiling(Math.Log2(perShard / load))), load);
        }
    }

    public int Count { get; private set; }

    /// <summary>Bytes held by the table (for the operator's and the benchmark's memory figures).</summary>
    public long Bytes
    {
        get
        {
            long bytes = 0;
            foreach (var s in _shards) bytes += (long)s.Fingerprints.Length * (sizeof(uint) * 2);
            return bytes;
        }
    }

    /// <summary>The 64-bit hash of a pair: the id's UTF-16 bytes, seeded with the tenant's (so equal ids of two tenants differ).</summary>
    public static ulong Hash(string tenantId, string eventId) =>
        XxHash3.HashToUInt64(MemoryMarshal.AsBytes(eventId.AsSpan()), (long)XxHash3.HashToUInt64(MemoryMarshal.AsBytes(tenantId.AsSpan())));

    /// <summary>Calls <paramref name="candidate"/> with each seq whose fingerprint matches, until it returns true.</summary>
    public bool Any(ulong hash, Func<long, bool> candidate) => Any(hash, candidate, static (seq, c) => c(seq));

    /// <summary>As <see cref="Any(ulong, Func{long, bool})"/>, with the caller's state passed through (no closure on the writer's hot path).</summary>
    public bool Any<TState>(ulong hash, TState state, Func<long, TState, bool> candidate)
    {
        var shard = ShardOf(hash);
        var fingerprint = Fingerprint(hash);
        var fingerprints = shard.Fingerprints;
        var mask = fingerprints.Length - 1;
        for (var slot = Slot(fingerprint, shard.Bits); fingerprints[slot] != 0; slot = (slot + 1) & mask)
            if (fingerprints[slot] == fingerprint && candidate(shard.Seqs[slot], state)) return true;
        return false;
    }

    public void Add(ulong hash, long seq)
    {
        if (seq is <= 0 or > uint.MaxValue)
            throw new InvalidOperationException($"seq {seq} is outside the index's range (1 to {uint.MaxValue}): the audit table has outgrown one SQLite file.");
        var shard = ShardOf(hash);
        if (shard.Count + 1 > shard.Fingerprints.Length * shard.Load) shard.Grow();
        Place(shard.Fingerprints, shard.Seqs, shard.Bits, Fingerprint(hash), (uint)seq);
        shard.Count++;
        Count++;
    }

    private Shard ShardOf(ulong hash) => _shards[(int)(hash & (Shards - 1))];

    /// <summary>The stored 32 bits of a pair's hash (bits the shard number does not use); never 0, which marks an empty slot.</summary>
    private static uint Fingerprint(ulong hash) => (uint)(hash >> 32) | 1u;

    /// <summary>A slot from the fingerprint alone (Fibonacci hashing), so that growing a shard can re-place entries it holds.</summary>
    private static int Slot(uint fingerprint, int bits) => (int)((fingerprint * 0x9E3779B97F4A7C15UL) >> (64 - bits));

    private static void Place(uint[] fingerprints, uint[] seqs, int bits, uint fingerprint, uint seq)
    {
        var mask = fingerprints.Length - 1;
        var slot = Slot(fingerprint, bits);
        while (fingerprints[slot] != 0) slot = (slot + 1) & mask;
        fingerprints[slot] = fingerprint;
        seqs[slot] = seq;
    }

    private sealed class Shard(int bits, double load)
    {
        public readonly double Load = load;
        public uint[] Fingerprints = new uint[1 << bits];
        public uint[] Seqs = new uint[1 << bits];
        public int Bits = bits;
        public int Count;

        public void Grow()
        {
            var bits = Bits + 1;
            var fingerprints = new uint[1 << bits];
            var seqs = new uint[1 << bits];
            for (var i = 0; i < Fingerprints.Length; i++)
                if (Fingerprints[i] != 0) Place(fingerprints, seqs, bits, Fingerprints[i], Seqs[i]);
            (Fingerprints, Seqs, Bits) = (fingerprints, seqs, bits);
        }
    }
}
