using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Data;
using Rpt.Portal.Ledger;
using Rpt.Portal.Operations;

namespace Rpt.Portal.Tests.Ledger;

/// <summary>An operator voids what a grant still holds: what the tenant, an auditor and the verifier then see.</summary>
[Trait("Kind", "Sqlite")]
public class VoidGrantTests
{
    private static readonly AuditActor Operator = new("ops@rpt.example", "127.0.0.1");

    private static Task ConsumeAsync(PortalHarness h, string tenant, int events) =>
        h.IngestAsync(tenant, Enumerable.Range(0, events).Select(i => Events.Call($"{tenant}-{h.Time.GetUtcNow().Ticks}-{i}", "gpt-4o", 100_000, 0, at: h.Time.GetUtcNow())).ToArray());

    [Fact]
    public async Task Void_ClosesTheGrantWithWhatItHeld_OncePerKey_AndTheBalanceGrantsAndAuditLogAccountForIt()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme", "starter"); // seq 1: 5,000 credits, expiring with the period
        h.Time.Advance(TimeSpan.FromDays(2));
        await h.Get<GrantCredits>().ExecuteAsync("acme", EntrySource.Adjustment, 2_000, "adjustment:goodwill", "Goodwill"); // seq 2, never expires
        await ConsumeAsync(h, "acme", 200); // 6,000 credits: the signup's 5,000, then 1,000 of the adjustment
        await h.FlushAsync(); // seq 3
        Assert.Equal(1_000_000_000, h.Get<CreditGrants>().Current("acme").Grants.Single(g => g.Seq == 2).RemainingMicro);

        var corrections = h.Get<Corrections>();
        var voided = await corrections.VoidAsync(Operator, "acme", 2, "ticket-4711", "Granted to the wrong account");
        Assert.True(voided.Done);
        Assert.False(voided.Repeated);
        var entry = voided.Entry!;
        Assert.Equal((4L, EntryKind.Void, 1_000_000_000L, 2L, "Granted to the wrong account"),
            (entry.Seq, entry.Kind, entry.AmountMicroCredits, entry.GrantSeq!.Value, entry.Description));

        // The same key again: the same entry, nothing added, one audit record.
        var again = await corrections.VoidAsync(Operator, "acme", 2, "ticket-4711", "Granted to the wrong account");
        Assert.Equal((true, true, 4L), (again.Done, again.Repeated, again.Entry!.Seq));
        Assert.Equal(4, h.Scalar("SELECT COUNT(*) FROM ledger_entries WHERE tenant_id = 'acme'"));
        var records = await h.Get<AuditLog>().ListAsync("acme");
        var record = Assert.Single(records, r => r.Action == Corrections.VoidAction);
        Assert.Equal(("ops@rpt.example", "127.0.0.1", "ledger seq 4"), (record.Actor, record.Origin, record.Subject));
        Assert.Contains("\"remaining_credits\":1000", record.OldValue);
        Assert.Contains("\"reason\":\"Granted to the wrong account\"", record.NewValue);

        // Another key cannot void it twice; nor can a key void what it did not name.
        var twice = await corrections.VoidAsync(Operator, "acme", 2, "ticket-4712", "again");
        Assert.Equal(("grant", false), (twice.Field, twice.Done));
        Assert.Contains("already voided by entry #4", twice.Error);
        Assert.Equal("reason", (await corrections.VoidAsync(Operator, "acme", 1, "k", "  ")).Field);
        Assert.Equal("grant", (await corrections.VoidAsync(Operator, "acme", 3, "k", "not a grant")).Field);
        Assert.Equal("grant", (await corrections.VoidAsync(Operator, "acme", 99, "k", "no such entry")).Field);

        // The grants list and the balance: granted 7,000, voided 1,000; consumed 6,000; nothing remains.
        var grant = h.Get<CreditGrants>().Current("acme").Grants.Single(g => g.Seq == 2);
        Assert.Equal((CreditGrantStatus.Voided, 0L, 1_000_000_000L, "Granted to the wrong account"),
            (grant.StatusAt(h.Time.GetUtcNow()), grant.RemainingMicro, grant.VoidedMicro, grant.VoidReason));
        var balance = h.Balance("acme");
        Assert.Equal((6_000L, 6_000L, 0L), (balance.Allocated!.Value, balance.Consumed, balance.Remaining!.Value));

        // Later usage draws from no voided grant: the starter plan is blocked, so it is past every grant.
        await ConsumeAsync(h, "acme", 1);
        await h.FlushAsync();
        Assert.Equal(0, h.Get<CreditGrants>().Current("acme").Grants.Single(g => g.Seq == 2).RemainingMicro);
        Assert.True((await h.Get<VerifyLedger>().ExecuteAsync("acme", deep: true)).Intact);
    }

    [Fact]
    public async Task AVoidedTopUp_CarriesNothingIntoTheNextPeriod()
    {
        await using var h = await PortalHarness.StartAsync(); // 1 Apr 2026
        await h.CreateTenantAsync("acme", "starter");
        await h.Get<GrantCredits>().ExecuteAsync("acme", EntrySource.TopUp, 25_000, "top_up:pack"); // seq 2, 12 months
        await h.Get<GrantCredits>().ExecuteAsync("acme", EntrySource.TopUp, 1_000, "top_up:small"); // seq 3
        Assert.True((await h.Get<Corrections>().VoidAsync(Operator, "acme", 2, "chargeback", "Payment disputed")).Done);
        Assert.Equal(6_000, h.Balance("acme").Allocated);

        h.Time.SetUtcNow(new DateTimeOffset(2026, 5, 1, 0, 5, 0, TimeSpan.Zero));
        await h.Get<RenewPeriods>().ExecuteAsync();
        await h.Get<ExpireGrants>().ExecuteAsync();
        Assert.Equal(6_000, h.Balance("acme").Allocated); // 5,000 renewal + the 1,000 top-up; nothing of the voided pack
        Assert.Equal(0, h.Scalar("SELECT COUNT(*) FROM ledger_entries WHERE tenant_id = 'acme' AND kind = 'expiry' AND grant_seq = 2"));
        Assert.True((await h.Get<VerifyLedger>().ExecuteAsync("acme", deep: true)).Intact);
    }

    /// <summary>A tamperer who lowers a void's amount, recomputes every hash after it and mends the period's sum passes the quick check; the deep check derives the grants again and finds it.</summary>
    [Fact]
    public async Task DeepVerify_FindsAVoidRewrittenWithItsHashesRecomputed()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme", "starter");
        await h.Get<GrantCredits>().ExecuteAsync("acme", EntrySource.TopUp, 1_000, "top_up:pack");
        await h.Get<Corrections>().VoidAsync(Operator, "acme", 2, "k1", "Payment disputed");
        h.AllowChanges("ledger_entries");
        await using (var db = await h.Get<IDbContextFactory<ApplicationDbContext>>().CreateDbContextAsync())
        {
            var v = await db.LedgerEntries.AsNoTracking().SingleAsync(e => e.TenantId == "acme" && e.Seq == 3);
            var rewritten = new LedgerEntry("acme", 3, EntryKind.Void, v.Source, 400_000_000, v.PeriodStart, v.IdempotencyKey, v.Description,
                null, null, null, null, v.CreatedAt, v.PrevHash, grantSeq: 2);
            h.Execute($"UPDATE ledger_entries SET amount_micro_credits = 400000000, hash = '{rewritten.Hash}' WHERE tenant_id = 'acme' AND seq = 3");
            // and the period's sum of voids that balances read, which the quick check compares with the entries
            h.Execute("UPDATE ledger_period_sums SET micro_credits = 400000000 WHERE tenant_id = 'acme' AND kind = 'void'");
        }
        h.Get<CreditGrants>().Forget("acme");

        var quick = await h.Get<VerifyLedger>().ExecuteAsync("acme");
        Assert.True(quick.Intact, string.Join("; ", quick.Problems)); // the chain is consistent again
        var deep = await h.Get<VerifyLedger>().ExecuteAsync("acme", deep: true);
        Assert.False(deep.Intact);
        Assert.Contains(deep.Problems, p => p.Contains("void entry #3 says grant #2 held 400000000 µcr; the draw-down says 1000000000 µcr"));
    }

    [Fact]
    public async Task TheGrantsApiAndTheStatement_ShowTheVoid_AndTheCustomersVerifierAgrees()
    {
        await using var app = new ApiFactory();
        var (tenant, client) = await app.TenantAsync("acme");
        await app.Get<GrantCredits>().ExecuteAsync(tenant, EntrySource.TopUp, 5_000, "top_up:pack");
        Assert.True((await app.Get<Corrections>().VoidAsync(Operator, tenant, 2, "chargeback", "Payment disputed")).Done);

        var grants = JsonNode.Parse(await client.GetStringAsync("/v1/credits/grants"))!["items"]!.AsArray();
        var pack = grants.Single(g => (long)g!["id"]! == 2)!;
        Assert.Equal(("voided", 0L, 5_000L, "Payment disputed"), ((string?)pack["status"], (long)pack["remaining"]!, (long)pack["voided"]!, (string?)pack["void_reason"]));

        var now = app.Time.GetUtcNow();
        var text = await client.GetStringAsync($"/v1/ledger/statement?period={now:yyyy-MM-dd}");
        var statement = JsonNode.Parse(text)!;
        Assert.Equal(["allocation", "allocation", "void"], statement["entries"]!.AsArray().Select(e => (string?)e!["kind"]));
        Assert.Equal((5_000_000_000L, 25_000_000_000L), ((long)statement["balance"]!["voided_micro_credits"]!, (long)statement["balance"]!["allocated_micro_credits"]!));
        var file = Path.Combine(app.Directory, "statement.json");
        await File.WriteAllTextAsync(file, text);
        var (code, output) = await StatementVerifier.RunAsync(file);
        Assert.True(code == 0, output);
        Assert.Contains("voided 5000000000 = the period's void entries 5000000000", output);
    }
}
