using System.Security.Cryptography;
using System.Text;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Rpt.Portal.Api;

[Flags]
public enum ApiScopes
{
    None = 0,
    /// <summary>Read the tenant's credits, usage and ledger.</summary>
    Read = 1,
    /// <summary>Send usage events for the key's own tenant.</summary>
    Ingest = 2,
    /// <summary>A platform key: send usage events naming any tenant.</summary>
    PlatformIngest = 4,
    /// <summary>Manage the tenant's alert rules and webhook endpoints.</summary>
    Admin = 8,
}

/// <summary>
/// An API key. The key itself is shown once; only its SHA-256 is stored (keys are 192 random bits, so a
/// plain hash is enough: there is nothing to brute-force).
/// </summary>
public sealed class ApiKey
{
    private ApiKey() { }

    public const string KeyPrefix = "rpt_";

    public Guid Id { get; private set; }
    /// <summary>Null for a platform key.</summary>
    public string? TenantId { get; private set; }
    public string Name { get; private set; } = "";
    /// <summary>The first characters of the key, enough to recognise it in a list.</summary>
    public string Prefix { get; private set; } = "";
    public string Hash { get; private set; } = "";
    public ApiScopes Scopes { get; private set; }
    public DateTimeOffset CreatedAt { get; private set; }
    public DateTimeOffset? LastUsedAt { get; private set; }
    public DateTimeOffset? RevokedAt { get; private set; }
    /// <summary>The project the key is bound to: it stamps every event it sends (null: the events name their own, if any).</summary>
    public string? Project { get; private set; }

    public bool IsPlatform => TenantId is null;
    public bool IsActive => RevokedAt is null;

    /// <summary>Creates a key; the plain text is returned once and never stored.</summary>
    public static (ApiKey Key, string Secret) Create(string? tenantId, string name, ApiScopes scopes, DateTimeOffset now, string? project = null)
    {
        if (tenantId is null && project is not null) throw new ArgumentException("A platform key cannot be bound to a project.");
        if (tenantId is null && scopes != ApiScopes.PlatformIngest)
            throw new ArgumentException("A key without a tenant can only be a platform ingest key.");
        if (tenantId is not null && scopes.HasFlag(ApiScopes.PlatformIngest))
            throw new ArgumentException("A tenant key cannot carry the platform ingest scope.");
        var secret = KeyPrefix + (tenantId is null ? "plat_" : "") + Base62(RandomNumberGenerator.GetBytes(24));
        var key = new ApiKey
        {
            Id = Guid.NewGuid(),
            TenantId = tenantId,
            Name = name,
            Prefix = secret[..Math.Min(secret.Length, tenantId is null ? 14 : 12)],
            Hash = HashOf(secret),
            Scopes = scopes,
            CreatedAt = now,
            Project = project,
        };
        return (key, secret);
    }

    public static string HashOf(string secret) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    public void MarkUsed(DateTimeOffset now) => LastUsedAt = now;
    public void Revoke(DateTimeOffset now) => RevokedAt ??= now;

    private static string Base62(byte[] bytes)
    {
        const string alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        var n = new System.Numerics.BigInteger(bytes, isUnsigned: true);
        var sb = new StringBuilder();
        while (n > 0) { sb.Insert(0, alphabet[(int)(n % 62)]); n /= 62; }
        return sb.ToString().PadLeft(33, '0');
    }
}

public sealed class ApiKeyConfiguration : IEntityTypeConfiguration<ApiKey>
{
    public void Configure(EntityTypeBuilder<ApiKey> b)
    {
        b.ToTable("api_keys");
        b.HasKey(k => k.Id);
        b.Property(k => k.TenantId).HasMaxLength(64);
        b.Property(k => k.Name).HasMaxLength(100);
        b.Property(k => k.Prefix).HasMaxLength(16);
        b.Property(k => k.Hash).HasMaxLength(64);
        b.Property(k => k.Project).HasMaxLength(128);
        b.Ignore(k => k.IsPlatform);
        b.Ignore(k => k.IsActive);
        b.HasIndex(k => k.Hash).IsUnique();
        b.HasIndex(k => k.TenantId);
    }
}
