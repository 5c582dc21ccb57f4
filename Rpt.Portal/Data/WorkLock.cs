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

    /// <summary>Applying a Stripe event (or a subscription as Stripe's API answered it): one at a time, so an event delivered to two instances at once is applied by one and found applied by the other.</summary>
    public const string BillingEvents = "rpt-billing-events";

    /// <summary>
    /// Holds the lock while the work runs on connections of its own (a billing event goes through several services,
    /// each with its own transaction): a transaction of its own that only holds the lock, and is rolled back at the end.
    /// PostgreSQL only; on SQLite one process owns the file and serialises the work itself (such a transaction would
    /// hold the file's write lock against the work).
    /// </summary>
    public static async Task<IAsyncDisposable> HoldAsync(IDbContextFactory<ApplicationDbContext> dbFactory, string work, CancellationToken cancellationToken)
    {
        var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        if (!db.Database.IsNpgsql())
        {
            await db.DisposeAsync();
            return NothingHeld.Instance;
        }
        try
        {
            var tx = await db.Database.BeginTransactionAsync(cancellationToken);
            await TakeAsync(db, work, cancellationToken);
            return new Held(db, tx);
        }
        catch
        {
            await db.DisposeAsync();
            throw;
        }
    }

    private sealed class Held(ApplicationDbContext db, Microsoft.EntityFrameworkCore.Storage.IDbContextTransaction tx) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            try { await tx.DisposeAsync(); } // rolled back: it wrote nothing; the lock goes with it
            finally { await db.DisposeAsync(); }
        }
    }

    public static async Task TakeAsync(ApplicationDbContext db, string work, CancellationToken cancellationToken)
    {
        if (db.Database.CurrentTransaction is null)
            throw new InvalidOperationException($"The '{work}' lock is held to the end of a transaction: begin one first.");
        if (db.Database.IsNpgsql())
            await db.Database.ExecuteSqlInterpolatedAsync($"SELECT pg_advisory_xact_lock(hashtext({work}))", cancellationToken);
    }
}
