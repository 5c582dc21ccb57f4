using Rpt.Portal.Data.Sqlite;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Data;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Tests.Metering;

[Trait("Kind", "Sqlite")]
public class UsageIngestorTests
{
    [Fact]
    public async Task Ingest_Batch_AnswersItemByItemInTheOrderSent()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme");
        var result = await h.IngestAsync("acme",
            Events.Call("a"),
            Events.Call("b", model: "no-such-model"),
            Events.Call("a"),
            Events.Call("c"));

        Assert.Equal((2, 1, 1), (result.Accepted, result.Duplicates, result.Rejected));
        Assert.Equal(["a", "b", "a", "c"], result.Results.Select(r => r.Id));
        Assert.Equal([IngestStatus.Accepted, IngestStatus.Rejected, IngestStatus.Duplicate, IngestStatus.Accepted], result.Results.Select(r => r.Status));
        Assert.Equal("unknown model 'no-such-model'", result.Results[1].Error);
        Assert.Equal(2, h.Scalar("SELECT COUNT(*) FROM usage_events"));
    }

    [Fact]
    public async Task Ingest_ABatchAfterALargerOne_AnswersOnlyItsOwnItems_AndAnEmptyBatchAnswersNothing()
    {
        // Batches are rated into pooled arrays: what a larger batch left in one must never reach a later answer.
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme");
        Assert.Equal(1_500, (await h.IngestAsync("acme", Enumerable.Range(0, 1_500).Select(i => Events.Call($"big-{i}")).ToArray())).Accepted);
        var small = await h.IngestAsync("acme", Events.Call("small-1"), Events.Call("big-7"), Events.Call("bad", model: "no-such-model"));
        Assert.Equal(["small-1", "big-7", "bad"], small.Results.Select(r => r.Id));
        Assert.Equal([IngestStatus.Accepted, IngestStatus.Duplicate, IngestStatus.Rejected], small.Results.Select(r => r.Status));
        var none = await h.IngestAsync("acme");
        Assert.Equal((0, 0, 0), (none.Accepted, none.Duplicates, none.Rejected));
        Assert.Empty(none.Results);
        Assert.Equal(1_501, h.Scalar("SELECT COUNT(*) FROM usage_events"));
    }

    [Fact]
    public async Task Ingest_SameIdInALaterBatch_IsADuplicateAndCountsOnce()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme");
        await h.IngestAsync("acme", Events.Call("call_1"));
        var retry = await h.IngestAsync("acme", Events.Call("call_1", input: 999_999)); // an internal retry re-sends the id
        Assert.Equal(IngestStatus.Duplicate, retry.Results[0].Status);
        Assert.Equal(110_880, h.Balance("acme").ConsumedMicroCredits);
    }

    [Fact]
    public async Task Ingest_SameIdForTwoTenants_AreTwoEvents()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme");
        await h.CreateTenantAsync("globex");
        Assert.Equal(1, (await h.IngestAsync("acme", Events.Call("x"))).Accepted);
        Assert.Equal(1, (await h.IngestAsync("globex", Events.Call("x"))).Accepted);
    }

    [Fact]
    public async Task Ingest_ManyConcurrentClientsSendingTheSameIds_CountsEachIdOnce()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme");
        var ids = Enumerable.Range(0, 400).Select(i => $"call_{i}").ToArray();
        var clients = Enumerable.Range(0, 8).Select(c => Task.Run(() =>
            h.IngestAsync("acme", ids.OrderBy(_ => Random.Shared.Next()).Select(id => Events.Call(id)).ToArray())));
        var results = await Task.WhenAll(clients);

        Assert.Equal(400, results.Sum(r => r.Accepted));
        Assert.Equal(7 * 400, results.Sum(r => r.Duplicates));
        Assert.Equal(400, h.Scalar("SELECT COUNT(*) FROM usage_events"));
        Assert.Equal(400 * 110_880L, h.Balance("acme").ConsumedMicroCredits);
    }

    [Fact]
    public async Task Ingest_TwoProcessesOnOneDatabaseSendingTheSameIds_CountEachIdOnce()
    {
        // Two service providers share nothing but the file, as the server and the operator command line do.
        await using var server = await PortalHarness.StartAsync();
        await server.CreateTenantAsync("acme");
        await using var cli = await PortalHarness.StartAsync(directory: server.Directory);
        var events = Enumerable.Range(0, 300).Select(i => Events.Call($"e{i}")).ToArray();
        var results = await Task.WhenAll(
            Task.Run(() => server.IngestAsync("acme", events)),
            Task.Run(() => cli.IngestAsync("acme", events)));
        Assert.Equal(300, results.Sum(r => r.Accepted));
        Assert.Equal(300, results.Sum(r => r.Duplicates));
        Assert.Equal(300 * 110_880L, server.Balance("acme").ConsumedMicroCredits);
    }

    [Fact]
    public async Task Ingest_FailedCall_IsRecordedAndFree()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme");
        await h.IngestAsync("acme", Events.Call("ok"), Events.Call("boom", status: "failed"));
        Assert.Equal(110_880, h.Balance("acme").ConsumedMicroCredits);
        await using var db = await h.Get<IDbContextFactory<ApplicationDbContext>>().CreateDbContextAsync();
        var failed = await db.UsageEvents.SingleAsync(e => e.EventId == "boom");
        Assert.Equal(UsageStatus.Failed, failed.Status);
        Assert.Equal(0, failed.MicroCredits);
        Assert.False(failed.Billable);
        Assert.Equal(3940, failed.TotalTokens); // the audit trail keeps what the model reported
    }

    [Fact]
    public async Task Ingest_InternalCall_IsRecordedAndRatedButNeverCountsAgainstTheBalance()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme");
        await h.IngestAsync("acme", Events.Call("customer"), Events.Call("demo", @internal: true, model: "gpt-4o"));
        var balance = h.Balance("acme");
        Assert.Equal(110_880, balance.ConsumedMicroCredits);
        Assert.Equal(3940, balance.TotalTokens);
        Assert.Equal(["gpt-4o-mini"], balance.TokensByModel.Keys);
        // Reported apart: (3200 × 2.5 + 740 × 10) / 1e6 × 1.2 / 0.01 = 1.848 credits
        Assert.Equal(1_848_000, balance.InternalMicroCredits);
    }

    [Theory]
    [InlineData("", "id is required")]
    [InlineData("tokens:-1", "input_tokens must not be negative (got -1)")]
    [InlineData("future", "is in the future")]
    [InlineData("both", "model and meter cannot both be set")]
    [InlineData("neither", "either model or meter is required")]
    [InlineData("status", "status 'done' is not one of: succeeded, failed")]
    [InlineData("longid", "id is 129 characters long; at most 128 are allowed")]
    [InlineData("quantity", "quantity is required for meter 'image_generation'")]
    [InlineData("tenant", "tenant_id 'globex' does not match the tenant of the API key")]
    [InlineData("noat", "occurred_at is required")]
    public async Task Ingest_BadItem_IsRejectedWithAReasonNamingTheProblem_AndTheGoodOnesAreKept(string bad, string reason)
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme");
        var e = Events.Call("bad");
        switch (bad)
        {
            case "": e.Id = ""; break;
            case "tokens:-1": e.InputTokens = -1; break;
            case "future": e.OccurredAt = h.Time.GetUtcNow().AddHours(1); break;
            case "both": e.Meter = "image_generation"; break;
            case "neither": e.Model = null; break;
            case "status": e.Status = "done"; break;
            case "longid": e.Id = new string('x', 129); break;
            case "quantity": e = Events.Meter("bad", "image_generation", 1); e.Quantity = null; break;
            case "tenant": e.TenantId = "globex"; break;
            case "noat": e.OccurredAt = null; break;
        }
        var result = await h.IngestAsync("acme", Events.Call("good-1"), e, Events.Call("good-2"));
        Assert.Equal(IngestStatus.Rejected, result.Results[1].Status);
        Assert.Contains(reason, result.Results[1].Error);
        Assert.Equal(2, result.Accepted);
    }

    [Fact]
    public async Task Ingest_PlatformCaller_MustNameAKnownTenant()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme");
        var ingestor = h.Get<UsageIngestor>();
        var result = await ingestor.IngestAsync([Events.Call("a"), Events.Call("b", tenant: "nobody"), Events.Call("c", tenant: "acme")], keyTenant: null);
        Assert.Equal("tenant_id is required with a platform key", result.Results[0].Error);
        Assert.Equal("unknown tenant 'nobody'", result.Results[1].Error);
        Assert.Equal(IngestStatus.Accepted, result.Results[2].Status);
    }

    [Fact]
    public async Task Ingest_Meter_IsRatedPerUnit()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme");
        await h.IngestAsync("acme", Events.Meter("img", "image_generation", 3));
        var balance = h.Balance("acme");
        Assert.Equal(14_400_000, balance.ConsumedMicroCredits); // 3 × $0.04 × 1.2 / 0.01
        Assert.Equal(3, balance.UnitsByMeter["image_generation"]);
        Assert.Equal(0, balance.TotalTokens);
    }

    // SQLite only: WAL and synchronous=FULL are SQLite's (PostgreSQL commits with fsync on and synchronous_commit, its defaults).
    [Trait("Engine", "Sqlite")]
    [Fact]
    public async Task Ingest_Acknowledged_IsCommittedWithWalAndFullSync()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme");
        await h.IngestAsync("acme", Events.Call("durable"));

        // A connection of our own (not the writer's) sees the row: it was committed before the answer.
        Assert.Equal(1, h.Scalar("SELECT COUNT(*) FROM usage_events WHERE event_id = 'durable'"));
        Assert.Equal("wal", (string)new SqliteCommand("PRAGMA journal_mode", h.OpenRaw()).ExecuteScalar()!);
        using var appConnection = h.Get<SqliteDatabase>().OpenSqlite();
        Assert.Equal(2L, new SqliteCommand("PRAGMA synchronous", appConnection).ExecuteScalar()); // 2 = FULL
    }

    [Fact]
    public async Task UsageEvents_UpdateOrDelete_IsRefusedByTheDatabase()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme");
        await h.IngestAsync("acme", Events.Call("a"));
        Assert.Contains("append-only", Assert.ThrowsAny<System.Data.Common.DbException>(() => h.Execute("UPDATE usage_events SET micro_credits = 0")).Message);
        Assert.Contains("append-only", Assert.ThrowsAny<System.Data.Common.DbException>(() => h.Execute("DELETE FROM usage_events")).Message);
        Assert.Equal(1, h.Scalar("SELECT COUNT(*) FROM usage_events"));
    }
}
