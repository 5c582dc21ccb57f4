using System.Collections.Concurrent;
using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Data;
using Rpt.Portal.Metering;
using Rpt.Portal.Plans;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Ledger;

/// <summary>What an open dashboard shows: the balance (O(1)), the plan, and the period's credits per day by model and by feature (rollups).</summary>
public sealed record DashboardSnapshot(
    string TenantName,
    Balance Balance,
    Plan? Plan,
    IReadOnlyList<DailyCredits> ByModel,
    IReadOnlyList<DailyCredits> ByFeature,
    DateTimeOffset ReadAt);

/// <summary>
/// Reads dashboards once per tenant, however many are open: every open dashboard, header and API caller of
/// one tenant shares the snapshot read at most <see cref="MaxAge"/> ago, and concurrent refreshes share the
/// read in flight. A change to the tenant (<see cref="TenantChanges"/>) makes the next refresh read again,
/// but never more often than every <see cref="MinInterval"/>: under heavy ingestion a tenant's dashboards cost
/// a few reads a second, not one per dashboard per commit.
/// </summary>
public sealed class DashboardSnapshots : IDisposable
{
    public static readonly TimeSpan MinInterval = TimeSpan.FromMilliseconds(500);
    public static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(4);

    private readonly GetBalance _balances;
    private readonly UsageReports _reports;
    private readonly IDbContextFactory<ApplicationDbContext> _dbFactory;
    private readonly TimeProvider _time;
    private readonly IDisposable _subscription;
    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _versions = new(StringComparer.Ordinal);
    private long _reads;

    public DashboardSnapshots(GetBalance balances, UsageReports reports, IDbContextFactory<ApplicationDbContext> dbFactory, TenantChanges changes, TimeProvider time)
    {
        _balances = balances;
        _reports = reports;
        _dbFactory = dbFactory;
        _time = time;
        _subscription = changes.SubscribeAll((_, tenants) =>
        {
            foreach (var t in tenants) _versions.AddOrUpdate(t, 1, (_, v) => v + 1);
            return Task.CompletedTask;
        });
    }

    /// <summary>Reads made so far (for the test that many dashboards cost one read).</summary>
    public long Reads => Interlocked.Read(ref _reads);

    public Task<DashboardSnapshot?> GetAsync(string tenantId)
    {
        var now = _time.GetUtcNow();
        var version = _versions.GetValueOrDefault(tenantId);
        while (true)
        {
            var due = now;
            if (_entries.TryGetValue(tenantId, out var entry))
            {
                // A read in flight, or scheduled, is shared; so is a finished one that nothing has changed since, unless
                // it failed (the database was away): that one is made again, no sooner than MinInterval after it.
                if (!entry.Task.IsCompleted || entry.Task.IsCompletedSuccessfully && entry.Version == version && now - entry.StartsAt < MaxAge) return entry.Task;
                // Changed since: read again, but not sooner than MinInterval after the last read.
                if (entry.StartsAt + MinInterval > now) due = entry.StartsAt + MinInterval;
            }
            Entry? fresh = null;
            // The wait starts here, on the caller's thread, so that it runs on the clock from this moment.
            fresh = new Entry(due, new Lazy<Task<DashboardSnapshot?>>(() =>
                ReadAfterAsync(due > now ? Task.Delay(due - now, _time) : Task.CompletedTask, tenantId, fresh!)));
            var stored = entry is null ? _entries.GetOrAdd(tenantId, fresh) : _entries.TryUpdate(tenantId, fresh, entry) ? fresh : null;
            if (stored is not null) return stored.Task;
        }
    }

    private async Task<DashboardSnapshot?> ReadAfterAsync(Task wait, string tenantId, Entry entry)
    {
        await wait;
        await Task.Yield(); // never on the caller's thread
        entry.Version = _versions.GetValueOrDefault(tenantId); // what this read will include
        return await ReadAsync(tenantId);
    }

    private async Task<DashboardSnapshot?> ReadAsync(string tenantId)
    {
        Interlocked.Increment(ref _reads);
        var balance = _balances.Execute(tenantId);
        if (balance is null) return null;
        await using var db = await _dbFactory.CreateDbContextAsync();
        var name = await db.Tenants.Where(t => t.Id == tenantId).Select(t => t.Name).FirstOrDefaultAsync();
        var plan = await db.Plans.AsNoTracking().FirstOrDefaultAsync(p => p.Code == balance.PlanCode);
        var (byModel, byFeature) = _reports.DailyByModelAndFeature(tenantId, balance.Period.StartInstant, balance.Period.EndInstant);
        return new DashboardSnapshot(name ?? tenantId, balance, plan, byModel, byFeature, _time.GetUtcNow());
    }

    public void Dispose() => _subscription.Dispose();

    private sealed class Entry(DateTimeOffset startsAt, Lazy<Task<DashboardSnapshot?>> read)
    {
        /// <summary>The tenant's change count when the read began; -1 until then.</summary>
        public long Version { get; set; } = -1;
        public DateTimeOffset StartsAt { get; } = startsAt;
        public Task<DashboardSnapshot?> Task => read.Value;
    }
}
