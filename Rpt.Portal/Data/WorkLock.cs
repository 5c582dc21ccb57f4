using Microsoft.EntityFrameworkCore;

namespace Rpt.Portal.Data;

/// <summary>
/// Serialises one kind of work across every process on the database, to the end of the caller's transaction: what
/// the work read (the flush watermark, for one) is still so when it writes. PostgreSQL: a transaction-scoped advisory
/// lock keyed by the work's name. SQLite: the transaction began IMMEDIATE and so holds the database's write lock already.
/// </summary>
public static class WorkLock
{
    /// <summary>The flush of usage into the ledger, and the catch-up of lagging tenants: one at a time.</summary>
    public const string Flush = "rpt-flush";

    public static async Task TakeAsync(ApplicationDbContext db, string work, CancellationToken cancellationToken)
    {
        if (db.Database.CurrentTransaction is null)
            throw new InvalidOperationException($"The '{work}' lock is held to the end of a transaction: begin one first.");
        if (db.Database.IsNpgsql())
            await db.Database.ExecuteSqlInterpolatedAsync($"SELECT pg_advisory_xact_lock(hashtext({work}))", cancellationToken);
    }
}
