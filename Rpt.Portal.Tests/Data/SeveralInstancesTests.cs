using Microsoft.AspNetCore.DataProtection;
using Npgsql;
using Rpt.Portal.Data;
using Rpt.Portal.Data.Postgres;
using Rpt.Portal.Ledger;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Tests.Data;

/// <summary>
/// Two instances on one PostgreSQL database, as two hosts of the portal in one test process, each with its own
/// connections: background work is done by the holder of its lease and passes on when the holder's connection dies;
/// a change on one reaches the pages of the other; one flush, never two, whatever both try.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Kind", "Postgres")]
public sealed class SeveralInstancesTests(PostgresCluster cluster)
{
    private async Task<Dictionary<string, string?>> SharedDatabaseAsync() => new()
    {
        ["Rpt:Data:Provider"] = "Postgres", ["ConnectionStrings:Rpt"] = await cluster.CreateDatabaseAsync(),
    };

    /// <summary>Starts each host's NOTIFY/LISTEN relay (the harness runs no hosted services); stopped when disposed.</summary>
    private static async Task<IAsyncDisposable> RelaysAsync(params PortalHarness[] hosts)
    {
        var stop = new CancellationTokenSource();
        foreach (var h in hosts) await h.Get<PostgresChangeRelay>().StartAsync(stop.Token);
        return new Relays(hosts, stop);
    }

    private sealed class Relays(PortalHarness[] hosts, CancellationTokenSource stop) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await stop.CancelAsync();
            foreach (var h in hosts) await h.Get<PostgresChangeRelay>().StopAsync(CancellationToken.None);
            stop.Dispose();
        }
    }

    [Fact]
    public async Task ALease_IsHeldByOneInstance_AndTakenByAnotherWhenItsHoldersConnectionDies()
    {
        var settings = await SharedDatabaseAsync();
        await using var a = await PortalHarness.StartAsync(settings);
        await using var b = await PortalHarness.StartAsync(settings);
        var leasesA = a.Get<IWorkLeases>();
        var leasesB = b.Get<IWorkLeases>();

        Assert.True(await leasesA.HoldAsync(Lease.Flush));
        Assert.True(await leasesA.HoldAsync(Lease.Flush)); // still its own
        Assert.False(await leasesB.HoldAsync(Lease.Flush));
        // Holding a lease holds back nothing: no statement of the instances stays open, keeping a snapshot that would stop
        // PostgreSQL from removing dead rows (ingestion updates its running totals many times a second).
        await Task.Delay(TimeSpan.FromSeconds(6));
        await using (var watcher = new NpgsqlConnection(settings["ConnectionStrings:Rpt"]))
        {
            await watcher.OpenAsync();
            await using var open = new NpgsqlCommand("""
                SELECT string_agg(query, '; ') FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
                  AND state <> 'idle' AND backend_xmin IS NOT NULL AND query_start < now() - interval '5 seconds'
                """, watcher);
            Assert.Null(await open.ExecuteScalarAsync() as string);
        }

        // The holder's connection dies, as when its process is killed or its network goes.
        await using (var admin = new NpgsqlConnection(settings["ConnectionStrings:Rpt"]))
        {
            await admin.OpenAsync();
            await using var kill = new NpgsqlCommand("""
                SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()
                """, admin);
            await kill.ExecuteNonQueryAsync();
        }
        var taken = false;
        for (var i = 0; i < 60 && !taken; i++)
        {
            taken = await leasesB.HoldAsync(Lease.Flush);
            if (!taken) await Task.Delay(500);
        }
        Assert.True(taken, "instance B did not take the flush lease within 30 s of A's connection dying");
        // A learns of its loss at its next ask, when its lease's connection does not answer (until then both may run the
        // work, which every such job is safe against); then it finds B's lease in place.
        var lost = false;
        for (var i = 0; i < 60 && !lost; i++)
        {
            lost = !await leasesA.HoldAsync(Lease.Flush);
            if (!lost) await Task.Delay(500);
        }
        Assert.True(lost, "instance A still believed it held the flush lease 30 s after its connection died");
        Assert.True(await leasesA.HoldAsync(Lease.Renewals)); // another kind of work is another lease
        Assert.False(await leasesB.HoldAsync(Lease.Renewals));
    }

    [Fact]
    public async Task UsageAcceptedOnOneInstance_ReachesAPageOpenOnTheOther_WithinTwoSeconds()
    {
        var settings = await SharedDatabaseAsync();
        await using var a = await PortalHarness.StartAsync(settings);
        await using var b = await PortalHarness.StartAsync(settings);
        await using var relays = await RelaysAsync(a, b);
        await a.CreateTenantAsync("acme");

        var seen = new TaskCompletionSource<TenantChange>(TaskCreationOptions.RunContinuationsAsynchronously);
        var others = 0;
        using var page = b.Get<TenantChanges>().Subscribe("acme", c =>
        {
            if (c == TenantChange.UsageCommitted) seen.TrySetResult(c);
            return Task.CompletedTask;
        });
        using var otherTenant = b.Get<TenantChanges>().Subscribe("globex", _ => { Interlocked.Increment(ref others); return Task.CompletedTask; });
        await Task.Delay(300); // both listening
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Assert.Equal(1, (await a.IngestAsync("acme", Events.Call("x1"))).Accepted);
        var reached = await Task.WhenAny(seen.Task, Task.Delay(TimeSpan.FromSeconds(2))) == seen.Task;
        Assert.True(reached, $"the page on B heard nothing of A's usage in {clock.ElapsedMilliseconds} ms");
        Assert.Equal(0, others); // another tenant's page is not woken
    }

    /// <summary>A key revoked on A is refused by B at once, though B had it cached as valid (it would otherwise wait out its 30 s cache).</summary>
    [Fact]
    public async Task AKeyRevokedOnOneInstance_IsRefusedByTheOther_WithinTwoSeconds()
    {
        var settings = await SharedDatabaseAsync();
        await using var a = await PortalHarness.StartAsync(settings);
        await using var b = await PortalHarness.StartAsync(settings);
        await using var relays = await RelaysAsync(a, b);
        await a.CreateTenantAsync("acme");
        var created = await a.Get<Rpt.Portal.Api.ApiKeyService>().TryCreateAsync("acme", "ci", Rpt.Portal.Api.ApiScopes.Read | Rpt.Portal.Api.ApiScopes.Ingest);
        var keysB = b.Get<Rpt.Portal.Api.ApiKeyService>();
        Assert.NotNull(await keysB.AuthenticateAsync(created.Secret!)); // B now holds it in its cache as valid
        await Task.Delay(300); // both listening

        Assert.True(await a.Get<Rpt.Portal.Api.ApiKeyService>().RevokeAsync("acme", created.Key!.Id));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (await keysB.AuthenticateAsync(created.Secret!) is not null && clock.Elapsed < TimeSpan.FromSeconds(2)) await Task.Delay(50);
        Assert.Null(await keysB.AuthenticateAsync(created.Secret!));
    }

    /// <summary>Stripe retries a webhook, and a load balancer may hand the two deliveries to two instances at the same moment.</summary>
    [Fact]
    public async Task AStripeEventDeliveredToTwoInstancesAtOnce_IsAppliedByOne_AndFoundAppliedByTheOther()
    {
        var settings = await SharedDatabaseAsync();
        await using var a = await PortalHarness.StartAsync(settings);
        await using var b = await PortalHarness.StartAsync(settings);
        await a.CreateTenantAsync("acme");
        for (var i = 0; i < 5; i++)
        {
            var session = StripeWire.CheckoutSession($"cs_twice_{i}", "acme", "cus_acme", $"sub_twice_{i}", "professional");
            session["mode"] = "payment";
            session["metadata"] = new System.Text.Json.Nodes.JsonObject { ["tenant_id"] = "acme", ["kind"] = "top_up", ["pack"] = "topup_5k" };
            var json = StripeWire.Event($"evt_twice_{i}", "checkout.session.completed", session, DateTimeOffset.UtcNow);
            var results = await Task.WhenAll(
                Task.Run(() => a.Get<Rpt.Portal.Billing.BillingEvents>().ReceiveAsync(json)),
                Task.Run(() => b.Get<Rpt.Portal.Billing.BillingEvents>().ReceiveAsync(json)));
            Assert.Equal([Rpt.Portal.Billing.StripeEventStatus.Processed, Rpt.Portal.Billing.StripeEventStatus.AlreadyProcessed], results.Select(r => r.Status).Order());
            Assert.Equal(1, a.Scalar($"SELECT COUNT(*) FROM ledger_entries WHERE idempotency_key = 'stripe:checkout:cs_twice_{i}'"));
            Assert.Contains("granted", results.Single(r => r.Status == Rpt.Portal.Billing.StripeEventStatus.Processed).Outcome);
        }
    }

    [Fact]
    public async Task TwoInstancesFlushingAtOnce_WriteEachEventIntoTheLedgerOnce()
    {
        var settings = await SharedDatabaseAsync();
        await using var a = await PortalHarness.StartAsync(settings);
        await using var b = await PortalHarness.StartAsync(settings);
        await a.CreateTenantAsync("acme");
        for (var round = 0; round < 5; round++)
        {
            await a.IngestAsync("acme", Enumerable.Range(0, 50).Select(i => Events.Call($"a{round}-{i}")).ToArray());
            await b.IngestAsync("acme", Enumerable.Range(0, 50).Select(i => Events.Call($"b{round}-{i}")).ToArray());
            await Task.WhenAll(Task.Run(() => a.FlushAsync()), Task.Run(() => b.FlushAsync()), Task.Run(() => b.FlushAsync()));
        }
        await a.FlushAsync();
        var verified = await b.Get<VerifyLedger>().ExecuteAsync("acme", deep: true);
        Assert.True(verified.Intact, string.Join("; ", verified.Problems));
        var balance = b.Balance("acme");
        Assert.Equal(500, a.Scalar("SELECT COUNT(*) FROM usage_events"));
        // Every event is in exactly one consumption entry: the entries' event counts add up to the events.
        Assert.Equal(500, a.Scalar("SELECT COALESCE(SUM(event_count), 0) FROM ledger_entries WHERE kind = 'consumption'"));
        Assert.Equal(balance.ConsumedMicroCredits, a.Scalar("SELECT COALESCE(SUM(micro_credits), 0) FROM usage_events WHERE billable"));
    }

    /// <summary>
    /// What a sign-in cookie and an antiforgery token are protected with is shared: what instance A protects (a cookie
    /// it issued), instance B reads, and a key stays in the database when both are gone (a restart signs nobody out).
    /// </summary>
    [Fact]
    public async Task WhatOneInstanceProtects_AnotherReads_FromKeysKeptInTheDatabase()
    {
        var settings = await SharedDatabaseAsync();
        string ticket;
        await using (var a = await PortalHarness.StartAsync(settings))
            ticket = a.Get<IDataProtectionProvider>().CreateProtector("Microsoft.AspNetCore.Authentication.Cookies").Protect("signed in as owner@acme");
        await using var b = await PortalHarness.StartAsync(settings);
        Assert.Equal("signed in as owner@acme", b.Get<IDataProtectionProvider>().CreateProtector("Microsoft.AspNetCore.Authentication.Cookies").Unprotect(ticket));
        Assert.Equal(1, b.Scalar("SELECT COUNT(*) FROM data_protection_keys"));
        Assert.False(Directory.Exists(Path.Combine(b.Directory, "App_Data", "keys")), "no key file is written beside a PostgreSQL portal");
    }
}
