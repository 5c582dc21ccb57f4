using System.IO.Hashing;
using System.Runtime.InteropServices;

namespace Rpt.Portal.Metering;

/// <summary>
/// The exactly-once index of the ingestion writer: which (tenant, event id) pairs the audit table already
/// holds, as an open-addressing hash table of a 32-bit fingerprint and the record's seq per slot (8 bytes,
/// kept at most 80 % full). It replaces the unique B-tree index on (tenant_id, event_id), whose random inserts
/// made every group commit write one page per event once the index outgrew the cache (docs/PERFORMANCE.md).
/// <para>
/// It decides nothing alone: a fingerprint match is a candidate, confirmed by reading that seq's tenant and id
/// from the audit table (one primary-key read; only retries and about one event in a billion hit one), so a
/// collision can never drop an event. It is derived data: built from the audit table when the writer opens,
/// and caught up inside each write transaction with whatever another process wrote, so it can be lost, lag
/// or be rebuilt without ever breaking exactly-once.
/// </para>
/// </summary>
internal sealed class EventIdIndex
{
    private const double MaxLoad = 0.8;
    private uint[] _fingerprints;
    private uint[] _seqs;
    private int _bits;

    public EventIdIndex(int capacityHint = 1 << 16)
    {
        _bits = Math.Max(16, (int)Math.Ceiling(Math.Log2(Math.Max(1, capacityHint) / MaxLoad)));
        _fingerprints = new uint[1 << _bits];
        _seqs = new uint[1 << _bits];
    }

    public int Count { get; private set; }

    /// <summary>Bytes held by the table (for the operator's and the benchmark's memory figures).</summary>
    public long Bytes => (long)_fingerprints.Length * (sizeof(uint) * 2);

    /// <summary>The 64-bit hash of a pair: the id's UTF-16 bytes, seeded with the tenant's (so equal ids of two tenants differ).</summary>
    public static ulong Hash(string tenantId, string eventId) =>
        XxHash3.HashToUInt64(MemoryMarshal.AsBytes(eventId.AsSpan()), (long)XxHash3.HashToUInt64(MemoryMarshal.AsBytes(tenantId.AsSpan())));

    /// <summary>Calls <paramref name="candidate"/> with each seq whose fingerprint matches, until it returns true.</summary>
    public bool Any(ulong hash, Func<long, bool> candidate) => Any(hash, candidate, static (seq, c) => c(seq));

    /// <summary>As <see cref="Any(ulong, Func{long, bool})"/>, with the caller's state passed through (no closure on the writer's hot path).</summary>
    public bool Any<TState>(ulong hash, TState state, Func<long, TState, bool> candidate)
    {
        var fingerprint = Fingerprint(hash);
        var mask = _fingerprints.Length - 1;
        for (var slot = Slot(fingerprint, _bits); _fingerprints[slot] != 0; slot = (slot + 1) & mask)
            if (_fingerprints[slot] == fingerprint && candidate(_seqs[slot], state)) return true;
        return false;
    }

    public void Add(ulong hash, long seq)
    {
        if (seq is <= 0 or > uint.MaxValue)
            throw new InvalidOperationException($"seq {seq} is outside the index's range (1 to {uint.MaxValue}): the audit table has outgrown one SQLite file.");
        if (Count + 1 > _fingerprints.Length * MaxLoad) Grow();
        Place(_fingerprints, _seqs, _bits, Fingerprint(hash), (uint)seq);
        Count++;
    }

    /// <summary>The stored 32 bits of a pair's hash; never 0, which marks an empty slot.</summary>
    private static uint Fingerprint(ulong hash) => (uint)(hash >> 32) | 1u;

    /// <summary>A slot from the fingerprint alone (Fibonacci hashing), so that growing the table can re-place entries it holds.</summary>
    private static int Slot(uint fingerprint, int bits) => (int)((fingerprint * 0x9E3779B97F4A7C15UL) >> (64 - bits));

    private static void Place(uint[] fingerprints, uint[] seqs, int bits, uint fingerprint, uint seq)
    {
        var mask = fingerprints.Length - 1;
        var slot = Slot(fingerprint, bits);
        while (fingerprints[slot] != 0) slot = (slot + 1) & mask;
        fingerprints[slot] = fingerprint;
        seqs[slot] = seq;
    }

    private void Grow()
    {
        var bits = _bits + 1;
        var fingerprints = new uint[1 << bits];
        var seqs = new uint[1 << bits];
        for (var i = 0; i < _fingerprints.Length; i++)
            if (_fingerprints[i] != 0) Place(fingerprints, seqs, bits, _fingerprints[i], _seqs[i]);
        _fingerprints = fingerprints;
        _seqs = seqs;
        _bits = bits;
        // The old arrays are large objects that a normal collection leaves in place for a long while; the table
        // doubles only a few times in its life, so return their memory at once rather than hold both sizes.
        System.Runtime.GCSettings.LargeObjectHeapCompactionMode = System.Runtime.GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
    }
}
