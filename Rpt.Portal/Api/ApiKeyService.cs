using Rpt.Portal.Tenants;
using Rpt.Portal.Plans;
using System.Threading.Channels;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Caching.Memory;
using Rpt.Portal.Data;

namespace Rpt.Portal.Api;

/// <summary>The identity behind a request's API key.</summary>
public sealed record ApiCaller(Guid KeyId, string? TenantId, ApiScopes Scopes, string? Project = null)
{
    public bool Has(ApiScopes scope) => (Scopes & scope) == scope;
}

public sealed record ApiKeyCreated(string? Secret, string? Error, ApiKey? Key = null);

/// <summary>
/// Creates, authenticates and revokes API keys. Authentication is cached briefly so the hot ingestion
/// path does not read the key table per request; the cache holds at most <see cref="CacheEntries"/> keys,
/// valid or not, so forged keys can neither grow memory nor reach the database more than once each per
/// <see cref="CacheFor"/>. A revocation takes effect at once in this process and, through <see cref="TenantChanges"/>'
/// relay, in every other instance on the database as soon as its notification arrives (on PostgreSQL, well within a
/// second); CacheFor bounds it when a notification is lost, and for a revocation made by the command line.
/// </summary>
public sealed class ApiKeyService : IDisposable
{
    public const int CacheEntries = 10_000;
    private static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan TouchEvery = TimeSpan.FromMinutes(1);
    private readonly IDbContextFactory<ApplicationDbContext> _dbFactory;
    private readonly TimeProvider _time;
    private readonly MemoryCache _cache;
    private readonly TenantChanges? _changes;
    private readonly IDisposable? _revocations;
    private readonly Dictionary<Guid, DateTimeOffset> _touched = new();
    private readonly Channel<(Guid KeyId, DateTimeOffset At)> _uses =
        Channel.CreateBounded<(Guid, DateTimeOffset)>(new BoundedChannelOptions(1_000) { FullMode = BoundedChannelFullMode.DropWrite, SingleReader = true });

    public ApiKeyService(IDbContextFactory<ApplicationDbContext> dbFactory, TimeProvider time, TenantChanges? changes = null)
    {
        _dbFactory = dbFactory;
        _time = time;
        _cache = new MemoryCache(new MemoryCacheOptions { SizeLimit = CacheEntries, Clock = new CacheClock(time) });
        _changes = changes;
        // Revocations are rare: forgetting every cached key costs one read per key in use, and needs no index of hashes by tenant.
        _revocations = changes?.SubscribeOnEveryInstance((change, _) =>
        {
            if (change == TenantChange.ApiKeyRevoked) _cache.Clear();
            return Task.CompletedTask;
        });
    }

    /// <summary>Entries in the authentication cache, for the test that forged keys stay bounded.</summary>
    public int CachedKeys => _cache.Count;

    /// <summary>Key uses waiting to be recorded as last_used_at (read by <see cref="ApiKeyUsageRecorder"/>).</summary>
    internal ChannelReader<(Guid KeyId, DateTimeOffset At)> Uses => _uses.Reader;

    /// <summary>Creates a key within the plan's max_api_keys (active keys); the plain key is returned once.</summary>
    public async Task<ApiKeyCreated> TryCreateAsync(string? tenantId, string name, ApiScopes scopes, CancellationToken cancellationToken = default,
        string? project = null)
    {
        name = name.Trim();
        if (name.Length is 0 or > 100) return new(null, "the key name must be 1 to 100 characters long");
        project = string.IsNullOrWhiteSpace(project) ? null : project.Trim();
        if (project is { Length: > Metering.UsageLimits.MaxProjectLength })
            return new(null, $"the project is {project.Length} characters long; at most {Metering.UsageLimits.MaxProjectLength} are allowed");
        if (project is not null && Metering.RateUsage.NotText(project, "the project") is { } notText) return new(null, notText);
        if (project is not null && tenantId is null) return new(null, "a platform key cannot be bound to a project");
        await using var db = await _dbFactory.CreateDbContextAsync(cancellationToken);
        if (tenantId is not null)
        {
            var plan = await db.PlanOfAsync(tenantId, cancellationToken);
            if (plan is null) return new(null, $"unknown tenant '{tenantId}'");
            if (!plan.Unlimited && plan.Entitlement("max_api_keys") is { } e && long.TryParse(e.Value, out var max))
            {
                var active = await db.ApiKeys.CountAsync(k => k.TenantId == tenantId && k.RevokedAt == null, cancellationToken);
                if (active >= max)
                    return new(null, $"the {plan.Name} plan allows {max} active API key{(max == 1 ? "" : "s")}, and {active} are active; revoke one or upgrade the plan");
            }
        }
        var (key, secret) = ApiKey.Create(tenantId, name, scopes, _time.GetUtcNow(), project);
        db.ApiKeys.Add(key);
        await db.SaveChangesAsync(cancellationToken);
        return new(secret, null, key);
    }

    /// <summary>Creates a key or throws; for set-up code whose key is within every limit (the demo, tests).</summary>
    public async Task<string> CreateAsync(string? tenantId, string name, ApiScopes scopes, CancellationToken cancellationToken = default)
    {
        var created = await TryCreateAsync(tenantId, name, scopes, cancellationToken);
        return created.Secret ?? throw new InvalidOperationException(created.Error);
    }

    public async Task<IReadOnlyList<ApiKey>> ListAsync(string? tenantId, CancellationToken cancellationToken = default)
    {
        await using var db = await _dbFactory.CreateDbContextAsync(cancellationToken);
        return await db.ApiKeys.AsNoTracking().Where(k => k.TenantId == tenantId)
            .OrderBy(k => k.RevokedAt != null).ThenByDescending(k => k.CreatedAt).ToListAsync(cancellationToken);
    }

    public async Task<ApiCaller?> AuthenticateAsync(string secret, CancellationToken cancellationToken = default)
    {
        if (!secret.StartsWith(ApiKey.KeyPrefix, StringComparison.Ordinal) || secret.Length > 100) return null;
        var hash = ApiKey.HashOf(secret);
        if (!_cache.TryGetValue(hash, out ApiCaller? caller))
        {
            await using var db = await _dbFactory.CreateDbContextAsync(cancellationToken);
            var key = await db.ApiKeys.AsNoTracking().FirstOrDefaultAsync(k => k.Hash == hash, cancellationToken);
            caller = key is { IsActive: true } ? new ApiCaller(key.Id, key.TenantId, key.Scopes, key.Project) : null;
            _cache.Set(hash, caller, new MemoryCacheEntryOptions { Size = 1, AbsoluteExpirationRelativeToNow = CacheFor });
        }
        if (caller is not null) Touch(caller.KeyId);
        return caller;
    }

    public async Task<bool> RevokeAsync(string? tenantId, Guid keyId, CancellationToken cancellationToken = default)
    {
        await using var db = await _dbFactory.CreateDbContextAsync(cancellationToken);
        var key = await db.ApiKeys.FirstOrDefaultAsync(k => k.Id == keyId && k.TenantId == tenantId, cancellationToken);
        if (key is null) return false;
        key.Revoke(_time.GetUtcNow());
        await db.SaveChangesAsync(cancellationToken);
        _cache.Remove(key.Hash);
        _changes?.Publish(TenantChange.ApiKeyRevoked, tenantId ?? "");
        return true;
    }

    /// <summary>Queues a last-use record at most once a minute per key; never waits (a full queue drops it).</summary>
    private void Touch(Guid keyId)
    {
        var now = _time.GetUtcNow();
        lock (_touched)
        {
            if (_touched.TryGetValue(keyId, out var last) && now - last < TouchEvery) return;
            if (_touched.Count > CacheEntries) _touched.Clear();
            _touched[keyId] = now;
        }
        _uses.Writer.TryWrite((keyId, now));
    }

    public void Dispose()
    {
        _revocations?.Dispose();
        _uses.Writer.TryComplete();
        _cache.Dispose();
    }

    private sealed class CacheClock(TimeProvider time) : Microsoft.Extensions.Internal.ISystemClock
    {
        public DateTimeOffset UtcNow => time.GetUtcNow();
    }
}
