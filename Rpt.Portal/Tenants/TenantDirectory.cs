using System.Collections.Concurrent;
using Rpt.Portal.Data;

namespace Rpt.Portal.Tenants;

/// <summary>
/// What the ingestion path needs to know of a tenant (that it exists, its billing anchor), cached.
/// A tenant created by another process is found on first use; an unknown id is never cached.
/// </summary>
public sealed class TenantDirectory(SqliteDatabase database)
{
    private readonly ConcurrentDictionary<string, DateOnly> _anchors = new(StringComparer.Ordinal);

    public bool TryGetAnchor(string tenantId, out DateOnly anchor)
    {
        if (_anchors.TryGetValue(tenantId, out anchor)) return true;
        using var connection = database.Open();
        using var cmd = connection.CreateCommand();
        cmd.CommandText = "SELECT subscription_start FROM tenants WHERE id = $id";
        cmd.Parameters.AddWithValue("$id", tenantId);
        if (cmd.ExecuteScalar() is not long ms) return false;
        anchor = DateOnly.FromDateTime(DateTimeOffset.FromUnixTimeMilliseconds(ms).UtcDateTime);
        _anchors[tenantId] = anchor;
        return true;
    }
}
