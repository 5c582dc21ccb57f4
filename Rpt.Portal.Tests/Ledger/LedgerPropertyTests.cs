using FsCheck;
using FsCheck.Fluent;
using Rpt.Portal.Ledger;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Tests.Ledger;

/// <summary>
/// For any sequence of events with duplicates, failures and internal calls, sent in any batches with
/// flushes in between: consumption equals the sum of the distinct billable calls rated independently,
/// never decreases, and the chain verifies; and altering any stored ledger row is found.
/// </summary>
[Trait("Kind", "Sqlite")]
public class LedgerPropertyTests
{
    private static readonly string[] Models = ["gpt-4o-mini", "gpt-4o", "gemini-1.5-flash", "claude-3-5-haiku", "claude-sonnet-4"];

    public sealed record Call(int Id, int Model, long Input, long Output, long Cached, bool Failed, bool Internal, bool FlushAfter);

    private static Gen<Call> CallGen =>
        from id in Gen.Choose(0, 40)      // a small id space forces duplicates
        from model in Gen.Choose(0, Models.Length - 1)
        from input in Gen.Choose(0, 200_000)
        from output in Gen.Choose(0, 20_000)
        from cached in Gen.Choose(0, 5_000)
        from failed in Gen.Frequency((1, Gen.Constant(true)), (8, Gen.Constant(false)))
        from @internal in Gen.Frequency((1, Gen.Constant(true)), (8, Gen.Constant(false)))
        from flush in Gen.Frequency((1, Gen.Constant(true)), (6, Gen.Constant(false)))
        select new Call(id, model, input, output, cached, failed, @internal, flush);

    [Fact]
    public void AnySequence_ConsumptionEqualsDistinctBillableCalls_NeverDecreases_AndTheChainVerifies()
    {
        Prop.ForAll(CallGen.ListOf().Select(l => l.ToArray()).ToArbitrary(), calls => CheckAsync(calls).GetAwaiter().GetResult())
            .Check(Config.QuickThrowOnFailure.WithMaxTest(25));
    }

    private static async Task<bool> CheckAsync(Call[] calls)
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme");
        var book = h.Get<PriceBookProvider>().Current;
        var seen = new HashSet<int>();
        long expected = 0, lastConsumed = 0, lastLedger = 0;
        foreach (var c in calls)
        {
            var e = Events.Call($"call_{c.Id}", Models[c.Model], c.Input, c.Output, c.Cached,
                status: c.Failed ? "failed" : "succeeded", @internal: c.Internal);
            var result = await h.IngestAsync("acme", e);
            var first = seen.Add(c.Id);
            Assert.Equal(first ? IngestStatus.Accepted : IngestStatus.Duplicate, result.Results[0].Status);
            if (first && !c.Failed && !c.Internal)
            {
                var price = book.Find(null, Models[c.Model], false, e.OccurredAt!.Value).Price!;
                expected += Rating.MicroCredits(Rating.CostUsd(price, c.Input, c.Output, c.Cached, null), book.RuleAt(e.OccurredAt.Value));
            }
            var consumed = h.Balance("acme").ConsumedMicroCredits;
            Assert.True(consumed >= lastConsumed, "consumption decreased");
            Assert.Equal(expected, consumed);
            lastConsumed = consumed;
            if (c.FlushAfter)
            {
                await h.FlushAsync();
                var ledger = h.Scalar("SELECT COALESCE(SUM(amount_micro_credits), 0) FROM ledger_entries WHERE kind = 'consumption'");
                Assert.True(ledger >= lastLedger, "ledger consumption decreased");
                Assert.Equal(expected, ledger); // reconcilable: Σ consumption entries = Σ rated audit records
                lastLedger = ledger;
            }
        }
        await h.FlushAsync();
        Assert.Equal(expected, h.Scalar("SELECT COALESCE(SUM(amount_micro_credits), 0) FROM ledger_entries WHERE kind = 'consumption'"));
        var v = await h.Get<VerifyLedger>().ExecuteAsync("acme", deep: true);
        Assert.True(v.Intact, string.Join("; ", v.Problems));
        return true;
    }

    private static readonly string[] Columns =
        ["tenant_id", "seq", "kind", "source", "amount_micro_credits", "period_start", "idempotency_key", "description",
         "covers_from_seq", "covers_to_seq", "event_count", "events_digest", "created_at", "prev_hash"];

    [Fact]
    public async Task AlteringAnyStoredLedgerRowInAnyColumn_IsDetected()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme");
        for (var round = 0; round < 3; round++)
        {
            await h.IngestAsync("acme", Events.Call($"e{round}"), Events.Call($"f{round}", model: "gpt-4o"));
            await h.FlushAsync();
            await h.Get<GrantCredits>().ExecuteAsync("acme", EntrySource.Adjustment, 7, $"adj:{round}");
        }
        var entries = (int)h.Scalar("SELECT COUNT(*) FROM ledger_entries");
        h.AllowChanges("ledger_entries");
        var verify = h.Get<VerifyLedger>();

        var gen = from id in Gen.Choose(1, entries) from column in Gen.Elements(Columns) select (id, column);
        Prop.ForAll(gen.ToArbitrary(), t =>
        {
            var (id, column) = t;
            var original = Tamper.Literal(h, "ledger_entries", column, $"id = {id}");
            var alter = column switch
            {
                "kind" => "kind = CASE kind WHEN 'allocation' THEN 'consumption' ELSE 'allocation' END",
                "source" => "source = CASE source WHEN 'adjustment' THEN 'top_up' ELSE 'adjustment' END",
                "period_start" => TestEngine.IsPostgres ? "period_start = period_start + INTERVAL '1 month'" : "period_start = date(period_start, '+1 month')",
                "tenant_id" or "idempotency_key" or "description" or "events_digest" or "prev_hash"
                    => $"{column} = 'x' || substr(COALESCE({column}, ''), 2)", // the same length: a hash stays within its column's 64
                _ => $"{column} = COALESCE({column}, 0) + 1000", // far enough that seq stays unique
            };
            h.Execute($"UPDATE ledger_entries SET {alter} WHERE id = {id}");
            try
            {
                // A changed tenant_id moves the row out of the acme chain: acme loses a link (or, for the last
                // row, its tail, which the all-chains check finds as an orphan chain).
                return !verify.ExecuteAsync("acme").GetAwaiter().GetResult().Intact
                    || verify.ExecuteAllAsync(false).GetAwaiter().GetResult().Any(r => !r.Intact);
            }
            finally
            {
                h.Execute($"UPDATE ledger_entries SET {column} = {original} WHERE id = {id}");
                Assert.True(verify.ExecuteAsync("acme").GetAwaiter().GetResult().Intact, $"restoring {column} of row {id} failed");
            }
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(60));
    }
}
