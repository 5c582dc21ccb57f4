using System.Collections.Concurrent;
using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Data;

namespace Rpt.Portal.Api;

/// <summary>The identity behind a request's API key.</summary>
public sealed record ApiCaller(Guid KeyId, string? TenantId, ApiScopes Scopes)
{
    public bool Has(ApiScopes scope) => (Scopes & scope) == scope;
}

/// <summary>Creates, authenticates and revokes API keys. Authentication is cached briefly so the hot
/// ingestion path does not read the key table per request; a revocation in this process takes effect at once.</summary>
public sealed class ApiKeyService(IDbContextFactory<ApplicationDbContext> dbFactory, TimeProvider time)
{
    private static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan TouchEvery = TimeSpan.FromMinutes(1);
    private readonly ConcurrentDictionary<string, (ApiCaller? Caller, DateTimeOffset Until)> _cache = new();
    private readonly ConcurrentDictionary<Guid, DateTimeOffset> _touched = new();

    public async Task<string> CreateAsync(string? tenantId, string name, ApiScopes scopes, CancellationToken cancellationToken = default)
    {
        var (key, secret) = ApiKey.Create(tenantId, name, scopes, time.GetUtcNow());
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        db.ApiKeys.Add(key);
        await db.SaveChangesAsync(cancellationToken);
        return secret;
    }

    public async Task<IReadOnlyList<ApiKey>> ListAsync(string tenantId, CancellationToken cancellationToken = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        return await db.ApiKeys.AsNoTracking().Where(k => k.TenantId == tenantId)
            .OrderBy(k => k.RevokedAt != null).ThenByDescending(k => k.CreatedAt).ToListAsync(cancellationToken);
    }

    public async Task<ApiCaller?> AuthenticateAsync(string secret, CancellationToken cancellationToken = default)
    {
        if (!secret.StartsWith(ApiKey.KeyPrefix, StringComparison.Ordinal) || secret.Length > 100) return null;
        var hash = ApiKey.HashOf(secret);
        var now = time.GetUtcNow();
        if (_cache.TryGetValue(hash, out var cached) && cached.Until > now)
        {
            if (cached.Caller is { } c) await TouchAsync(c.KeyId, now, cancellationToken);
            return cached.Caller;
        }
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var key = await db.ApiKeys.AsNoTracking().FirstOrDefaultAsync(k => k.Hash == hash, cancellationToken);
        var caller = key is { IsActive: true } ? new ApiCaller(key.Id, key.TenantId, key.Scopes) : null;
        _cache[hash] = (caller, now + CacheFor);
        if (caller is not null) await TouchAsync(caller.KeyId, now, cancellationToken);
        return caller;
    }

    public async Task<bool> RevokeAsync(string? tenantId, Guid keyId, CancellationToken cancellationToken = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var key = await db.ApiKeys.FirstOrDefaultAsync(k => k.Id == keyId && k.TenantId == tenantId, cancellationToken);
        if (key is null) return false;
        key.Revoke(time.GetUtcNow());
        await db.SaveChangesAsync(cancellationToken);
        _cache.TryRemove(key.Hash, out _);
        return true;
    }

    /// <summary>Records last use at most once a minute per key, off the request's critical path.</summary>
    private async Task TouchAsync(Guid keyId, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (_touched.TryGetValue(keyId, out var last) && now - last < TouchEvery) return;
        _touched[keyId] = now;
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        await db.ApiKeys.Where(k => k.Id == keyId).ExecuteUpdateAsync(s => s.SetProperty(k => k.LastUsedAt, now), cancellationToken);
    }
}
