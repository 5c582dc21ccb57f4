using Rpt.Portal.Data.Sqlite;
using Rpt.Portal.Ledger;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Tests.Data;

/// <summary>
/// On SQLite, holds and the ingestion writer take turns at one write lock. A job runner placing a hold while a large batch
/// is being written must not wait for the whole batch: the writer commits what it has and steps aside. What an auditor
/// checks stays true: every event stored once, the running totals equal to the events, a retry counting nothing twice.
/// </summary>
[Trait("Kind", "Sqlite")]
[Trait("Engine", "Sqlite")] // the write turn is SQLite's; PostgreSQL holds lock the tenant's row and never wait for ingestion
public sealed class WriteTurnTests
{
    private const int BatchSize = 20_000;

    private static UsageEventInput[] Batch(string prefix) =>
        Enumerable.Range(0, BatchSize).Select(i => Events.Call($"{prefix}-{i}-{Guid.NewGuid():N}", job: $"job-{i % 50}")).ToArray();

    /// <summary>Starts the batch and returns once the writer holds the write turn for it.</summary>
    private static async Task<Task<IngestResult>> StartWritingAsync(PortalHarness app, UsageEventInput[] events)
    {
        var database = app.Get<SqliteDatabase>();
        var ingest = Task.Run(() => app.IngestAsync("acme", events));
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (database.WriteTurn.CurrentCount == 1 && !ingest.IsCompleted)
        {
            Assert.True(waited.Elapsed < TimeSpan.FromSeconds(30), "the writer never took the write turn");
            await Task.Delay(1);
        }
        Assert.False(ingest.IsCompleted, "the batch was written before a hold could be placed during it");
        return ingest;
    }

    [Fact]
    public async Task AHoldPlacedWhileALargeBatchIsWritten_IsServedBeforeTheBatchCommits_AndEveryEventIsStoredOnce()
    {
        await using var app = await PortalHarness.StartAsync();
        await app.CreateTenantAsync("acme");
        var events = Batch("e");
        var ingest = await StartWritingAsync(app, events);

        var hold = await app.Get<Reservations>().ReserveAsync("acme", "render-1", 100, "job-render", 3600);
        var storedWhenHeld = app.Scalar("SELECT COUNT(*) FROM usage_events");

        Assert.Equal(ReservationOutcome.Held, hold.Outcome);
        // The hold committed between two parts of the batch: part of it was stored, not all of it.
        Assert.InRange(storedWhenHeld, 1, BatchSize - 1);
        var result = await ingest;
        Assert.Equal((BatchSize, 0), (result.Accepted, result.Duplicates));
        Assert.Equal(BatchSize, app.Scalar("SELECT COUNT(*) FROM usage_events WHERE tenant_id = 'acme'"));
        Assert.Equal(BatchSize, app.Scalar("SELECT SUM(events) FROM usage_totals WHERE tenant_id = 'acme'"));
        Assert.Equal(BatchSize, app.Scalar("SELECT SUM(calls) FROM usage_jobs WHERE tenant_id = 'acme'"));
        Assert.Equal(BatchSize, app.Scalar("SELECT SUM(calls) FROM usage_daily WHERE tenant_id = 'acme'"));

        // The same ids again, in one group commit: every one a duplicate, nothing added.
        var again = await app.IngestAsync("acme", events);
        Assert.Equal((0, BatchSize), (again.Accepted, again.Duplicates));
        Assert.Equal(BatchSize, app.Scalar("SELECT SUM(events) FROM usage_totals WHERE tenant_id = 'acme'"));
    }

    [Fact]
    public async Task ABatchThatFailsAfterSteppingAsideForAHold_SaysARetryCountsEachEventOnce_AndTheRetryDoes()
    {
        await using var app = await PortalHarness.StartAsync();
        await app.CreateTenantAsync("acme");
        var events = Batch("e");
        // The batch's last event cannot be written: a disk that says no, after the writer committed part of the batch for a hold.
        app.FailInserts("usage_events", $"NEW.event_id = '{events[^1].Id}'");
        var ingest = await StartWritingAsync(app, events);
        Assert.Equal(ReservationOutcome.Held, (await app.Get<Reservations>().ReserveAsync("acme", "render-1", 100, "job-render", 3600)).Outcome);

        var failure = await Assert.ThrowsAsync<IngestUnavailableException>(() => ingest);
        Assert.Contains("Retry it with the same ids: an event of it stored before the failure is counted once", failure.Message);
        var stored = app.Scalar("SELECT COUNT(*) FROM usage_events WHERE tenant_id = 'acme'");
        Assert.InRange(stored, 1, BatchSize - 1);
        Assert.Equal(stored, app.Scalar("SELECT COALESCE(SUM(events), 0) FROM usage_totals WHERE tenant_id = 'acme'"));

        app.StopFailingInserts("usage_events");
        var retry = await app.IngestAsync("acme", events);
        Assert.Equal((BatchSize - stored, stored), ((long)retry.Accepted, (long)retry.Duplicates));
        Assert.Equal(BatchSize, app.Scalar("SELECT COUNT(*) FROM usage_events WHERE tenant_id = 'acme'"));
        Assert.Equal(BatchSize, app.Scalar("SELECT SUM(events) FROM usage_totals WHERE tenant_id = 'acme'"));
        Assert.Equal(BatchSize, app.Scalar("SELECT SUM(calls) FROM usage_jobs WHERE tenant_id = 'acme'"));
    }
}
