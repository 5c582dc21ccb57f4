using Microsoft.EntityFrameworkCore;

namespace Rpt.Portal.Data;

/// <summary>
/// Serialises the writes that read a tenant's chain and then append to it (the head, then the next entry; an
/// idempotency key, then the grant), whatever the number of writer processes. PostgreSQL: a row lock on the tenant
/// (<c>SELECT … FOR UPDATE</c>), held to the end of the transaction, so appends to one tenant wait for each other while
/// other tenants go on. SQLite: the transaction began IMMEDIATE and so holds the database's write lock already.
/// The unique indexes (tenant_id, seq) and (tenant_id, idempotency_key) stay the backstop on both.
/// </summary>
public static class TenantLock
{
    public static async Task TakeAsync(ApplicationDbContext db, string tenantId, CancellationToken cancellationToken)
    {
        RequireTransaction(db);
        if (db.Database.IsNpgsql())
            await db.Database.ExecuteSqlInterpolatedAsync($"SELECT 1 FROM tenants WHERE id = {tenantId} FOR UPDATE", cancellationToken);
    }

    /// <summary>The same, for a caller that must also know whether the tenant exists: on PostgreSQL the lock's own read
    /// answers it (one round trip, not two); false when there is no such tenant.</summary>
    public static async Task<bool> TakeIfExistsAsync(ApplicationDbContext db, string tenantId, CancellationToken cancellationToken)
    {
        RequireTransaction(db);
        if (db.Database.IsNpgsql())
            return (await db.Database.SqlQuery<int>($"SELECT 1 AS \"Value\" FROM tenants WHERE id = {tenantId} FOR UPDATE").ToListAsync(cancellationToken)).Count > 0;
        return await db.Tenants.AnyAsync(t => t.Id == tenantId, cancellationToken);
    }

    /// <summary>The same lock as a clause of a statement that reads the tenant's row (aliased <paramref name="alias"/>) on a
    /// connection of its own, not a context (a hold's batch): <c>FOR UPDATE</c> on PostgreSQL; nothing on SQLite.</summary>
    public static string Clause(StorageEngine engine, string alias) => engine == StorageEngine.Postgres ? $" FOR UPDATE OF {alias}" : "";

    private static void RequireTransaction(ApplicationDbContext db)
    {
        if (db.Database.CurrentTransaction is null)
            throw new InvalidOperationException("A tenant's chain is appended to inside a transaction: begin one first.");
    }
}
