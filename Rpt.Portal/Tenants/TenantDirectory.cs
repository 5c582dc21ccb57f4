using System.Data.Common;
using System.Collections.Concurrent;
using Rpt.Portal.Data;

namespace Rpt.Portal.Tenants;

/// <summary>
/// What the ingestion path needs to know of a tenant (that it exists, its billing anchor), cached.
/// A tenant created by another process is found on first use; an unknown id is never cached.
/// </summary>
public sealed class TenantDirectory(PortalDatabase database, TimeProvider time)
{
    private readonly ConcurrentDictionary<string, DateOnly> _anchors = new(StringComparer.Ordinal);

    public bool TryGetAnchor(string tenantId, out DateOnly anchor)
    {
        if (_anchors.TryGetValue(tenantId, out anchor)) return true;
        using var connection = database.Open();
        using var cmd = connection.CreateCommand();
        cmd.CommandText = "SELECT subscription_start FROM tenants WHERE id = @id";
        cmd.With("id", tenantId);
        if (cmd.ExecuteScalar() is not long ms) return false;
        anchor = DateOnly.FromDateTime(DateTimeOffset.FromUnixTimeMilliseconds(ms).UtcDateTime);
        _anchors[tenantId] = anchor;
        return true;
    }

    /// <summary>
    /// The tenant's plan and the billing period containing <paramref name="at"/> (now by default): one indexed
    /// read, for pages and endpoints that need the period, not a whole balance.
    /// </summary>
    public TenantPlanAndPeriod? PlanAndPeriod(string tenantId, DateTimeOffset? at = null)
    {
        using var connection = database.Open();
        using var cmd = connection.CreateCommand();
        cmd.CommandText = "SELECT plan_code, subscription_start FROM tenants WHERE id = @id";
        cmd.With("id", tenantId);
        using var r = cmd.ExecuteReader();
        if (!r.Read()) return null;
        var anchor = DateOnly.FromDateTime(DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(1)).UtcDateTime);
        return new TenantPlanAndPeriod(r.GetString(0), BillingPeriod.Containing(anchor, at ?? time.GetUtcNow()), anchor);
    }
}

/// <param name="Anchor">The subscription's first day, on which every billing period is anchored.</param>
public sealed record TenantPlanAndPeriod(string PlanCode, BillingPeriod Period, DateOnly Anchor);
