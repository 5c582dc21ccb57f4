using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using RocksDbSharp;

namespace Rpt.Portal.Bench;

/// <summary>
/// The exactly-once check alone, with random UUIDs, in two engines: the RocksDB package (an LSM with Bloom
/// filters, tuned for point lookups on this machine) and the portal's own EventIdIndex (a fingerprint table in
/// memory, confirmed by a read of the audit record). Each key is looked up (absent: a new id) and then added,
/// in groups of 4,000 as the writer commits them, on one thread as the writer does.
///   dotnet run -c Release --project Rpt.Portal.Bench -- dedupe --keys 12000000
/// </summary>
public static class DedupeMode
{
    public static int Run(Args options)
    {
        var keys = options.Long("keys", 12_000_000);
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {Machine.MemoryGiB():0.#} GiB, {Machine.Cpu()}");
        Console.WriteLine($"dedupe check of {keys:N0} random UUIDs (look up, then add), groups of 4,000, one thread");
        RocksDb(keys);
        Memory(keys);
        return 0;
    }

    private static void RocksDb(long total)
    {
        var path = Path.Combine(Path.GetTempPath(), "rpt-dedupe-" + Guid.NewGuid().ToString("N")[..8]);
        var table = new BlockBasedTableOptions()
            .SetFilterPolicy(BloomFilterPolicy.Create(10, false))
            .SetBlockCache(Cache.CreateLru(128L << 20))
            .SetCacheIndexAndFilterBlocks(true)
            .SetPinL0FilterAndIndexBlocksInCache(true);
        var dbOptions = new DbOptions().SetCreateIfMissing(true)
            .SetBlockBasedTableFactory(table)
            .SetWriteBufferSize(256L << 20)
            .SetMaxWriteBufferNumber(3)
            .SetLevelCompactionDynamicLevelBytes(true)
            .SetMaxBytesForLevelBase(512L << 20)
            .SetTargetFileSizeBase(64L << 20)
            .SetLevel0SlowdownWritesTrigger(40)
            .SetLevel0StopWritesTrigger(64)
            .SetCompression(Compression.No)
            .IncreaseParallelism(2);
        try
        {
            using var db = RocksDbSharp.RocksDb.Open(dbOptions, path);
            // The index is rebuildable from the audit table, so its own log is off (as the writer would run it).
            var write = new WriteOptions().SetSync(false).DisableWal(1);
            Report("RocksDB 11.12 (Bloom 10 bits/key, 128 MiB block cache, 256 MiB memtables, no WAL)", total, n =>
            {
                var batch = new byte[4000][];
                for (var i = 0; i < batch.Length; i++) batch[i] = Key(n + i);
                foreach (var kv in db.MultiGet(batch)) if (kv.Value is not null) throw new InvalidOperationException("a new id was found");
                using var wb = new WriteBatch();
                for (var i = 0; i < batch.Length; i++) wb.Put(batch[i], BitConverter.GetBytes(n + i));
                db.Write(wb, write);
            });
        }
        finally
        {
            try { Directory.Delete(path, true); } catch (IOException) { }
        }
    }

    private static void Memory(long total)
    {
        var index = new Rpt.Portal.Metering.EventIdIndex();
        Report("EventIdIndex (fingerprint → seq in memory)", total, n =>
        {
            for (var i = 0; i < 4000; i++)
            {
                var hash = Rpt.Portal.Metering.EventIdIndex.Hash("bench", Guid.NewGuid().ToString());
                index.Any(hash, _ => false);
                index.Add(hash, n + i + 1);
            }
        });
        Console.WriteLine($"  table: {index.Bytes / 1048576.0:N0} MiB for {index.Count:N0} ids");
    }

    private static byte[] Key(long n)
    {
        var id = Guid.NewGuid().ToString();
        var key = new byte[6 + Encoding.UTF8.GetByteCount(id)];
        "bench\0"u8.CopyTo(key);
        Encoding.UTF8.GetBytes(id, key.AsSpan(6));
        return key;
    }

    private static void Report(string engine, long total, Action<long> group)
    {
        Console.WriteLine($"{engine}:");
        var clock = Stopwatch.StartNew();
        var lap = Stopwatch.StartNew();
        var rates = new List<double>();
        for (long n = 0; n < total; n += 4000)
        {
            group(n);
            if ((n + 4000) % 1_000_000 == 0)
            {
                rates.Add(1_000_000 / lap.Elapsed.TotalSeconds);
                lap.Restart();
            }
        }
        Console.WriteLine($"  per million: {string.Join(", ", rates.Select(r => r.ToString("N0")))}");
        Console.WriteLine($"  overall {total / clock.Elapsed.TotalSeconds:N0} ids/s, slowest million {rates.Min():N0}; process working set {Environment.WorkingSet / 1048576:N0} MiB");
    }
}
