using FsCheck;
using FsCheck.Fluent;
using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Data;
using Rpt.Portal.Ledger;

namespace Rpt.Portal.Tests.Ledger;

/// <summary>
/// For any sequence of grants (sources, amounts, expiries), consumption, flushes, renewals and expiries on a
/// fake clock: the draw-down follows the published order (checked against a model written here, apart from
/// the portal's code), no credit is granted twice or lost (Σ granted = Σ drawn + Σ expired + Σ remaining),
/// the balance agrees with the grants, and the chain verifies deep after every step.
/// </summary>
[Trait("Kind", "Sqlite")]
public class CreditGrantsPropertyTests
{
    public abstract record Step;
    public sealed record TopUp(int Credits, int? ExpiresInDays) : Step;
    public sealed record Adjust(int Credits, int? ExpiresInDays) : Step;
    public sealed record Consume(int Calls) : Step;   // each call: 100,000 gpt-4o input tokens = 30 credits
    public sealed record Flush : Step;
    public sealed record Advance(int Days) : Step;

    private static Gen<Step> StepGen => Gen.Frequency(
        (2, from c in Gen.Choose(1, 3_000) from e in Gen.Frequency((2, Gen.Constant<int?>(null)), (1, Gen.Choose(1, 90).Select(d => (int?)d))) select (Step)new TopUp(c, e)),
        (1, from c in Gen.Choose(1, 2_000) from e in Gen.Frequency((1, Gen.Constant<int?>(null)), (1, Gen.Choose(1, 60).Select(d => (int?)d))) select (Step)new Adjust(c, e)),
        (4, Gen.Choose(1, 40).Select(n => (Step)new Consume(n))),
        (2, Gen.Constant((Step)new Flush())),
        (2, Gen.Choose(1, 35).Select(d => (Step)new Advance(d))));

    [Fact]
    public void AnySequence_DrawsDownInThePublishedOrder_LosesNothing_AndTheChainVerifies()
    {
        Prop.ForAll(StepGen.ListOf().Select(l => l.Take(30).ToArray()).ToArbitrary(), steps => CheckAsync(steps).GetAwaiter().GetResult())
            .Check(Config.QuickThrowOnFailure.WithMaxTest(20));
    }

    /// <summary>The model: grants in the published order, drawn by each consumption entry in ledger order.</summary>
    private sealed class ModelGrant
    {
        public long Seq, Granted, Remaining, Expired;
        public int Rank;
        public DateOnly Period;
        public DateTimeOffset Expires;
        public bool Closed;
    }

    private static async Task<bool> CheckAsync(Step[] steps)
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme", "professional");
        var dbFactory = h.Get<IDbContextFactory<ApplicationDbContext>>();
        var model = new Dictionary<long, ModelGrant>();
        long seenSeq = 0, uncovered = 0, n = 0;
        var uncoveredByPeriod = new Dictionary<DateOnly, long>();

        foreach (var step in steps.Append(new Flush()))
        {
            switch (step)
            {
                case TopUp t:
                    Assert.NotEqual(GrantStatus.Rejected, (await h.Get<GrantCredits>().ExecuteAsync("acme", EntrySource.TopUp, t.Credits, $"top_up:{++n}",
                        expiresAt: t.ExpiresInDays is { } d ? h.Time.GetUtcNow().AddDays(d) : null)).Status);
                    break;
                case Adjust a:
                    Assert.NotEqual(GrantStatus.Rejected, (await h.Get<GrantCredits>().ExecuteAsync("acme", EntrySource.Adjustment, a.Credits, $"adjustment:{++n}",
                        expiresAt: a.ExpiresInDays is { } days ? h.Time.GetUtcNow().AddDays(days) : null)).Status);
                    break;
                case Consume c:
                    await h.IngestAsync("acme", Enumerable.Range(0, c.Calls)
                        .Select(_ => Events.Call($"c{++n}", "gpt-4o", 100_000, 0, at: h.Time.GetUtcNow())).ToArray());
                    break;
                case Flush:
                    await h.FlushAsync();
                    break;
                case Advance adv:
                    await h.FlushAsync();
                    h.Time.Advance(TimeSpan.FromDays(adv.Days));
                    await h.Get<RenewPeriods>().ExecuteAsync();
                    await h.Get<ExpireGrants>().ExecuteAsync();
                    break;
            }

            // Feed the model every new entry, in ledger order.
            await using (var db = await dbFactory.CreateDbContextAsync())
            {
                foreach (var e in await db.LedgerEntries.AsNoTracking().Where(e => e.TenantId == "acme" && e.Seq > seenSeq).OrderBy(e => e.Seq).ToListAsync())
                {
                    seenSeq = e.Seq;
                    switch (e.Kind)
                    {
                        case EntryKind.Allocation:
                            Assert.NotNull(e.ExpiresAt);
                            var added = model[e.Seq] = new ModelGrant
                            {
                                Seq = e.Seq, Granted = e.AmountMicroCredits, Remaining = e.AmountMicroCredits, Period = e.PeriodStart,
                                Expires = e.ExpiresAt!.Value, Rank = e.Source switch { EntrySource.TopUp => 1, EntrySource.Adjustment => 2, _ => 0 },
                            };
                            // DOMAIN: allocated = … + what was granted during the period; remaining = allocated − consumed. So a
                            // grant first covers what its period consumed beyond every grant before it came.
                            var owed = uncoveredByPeriod.GetValueOrDefault(e.PeriodStart);
                            var covered = Math.Min(owed, added.Remaining);
                            added.Remaining -= covered;
                            uncoveredByPeriod[e.PeriodStart] = owed - covered;
                            uncovered -= covered;
                            break;
                        case EntryKind.Consumption:
                            var periodStart = new DateTimeOffset(e.PeriodStart.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);
                            var left = e.AmountMicroCredits;
                            foreach (var g in model.Values.Where(g => !g.Closed && g.Remaining > 0 && g.Period <= e.PeriodStart && g.Expires > periodStart)
                                         .OrderBy(g => g.Expires).ThenBy(g => g.Rank).ThenBy(g => g.Seq))
                            {
                                var take = Math.Min(left, g.Remaining);
                                g.Remaining -= take;
                                left -= take;
                            }
                            uncovered += left;
                            uncoveredByPeriod[e.PeriodStart] = uncoveredByPeriod.GetValueOrDefault(e.PeriodStart) + left;
                            break;
                        case EntryKind.Expiry:
                            var lapsed = model[e.GrantSeq!.Value];
                            Assert.Equal(lapsed.Remaining, e.AmountMicroCredits); // expired exactly what the grant still held
                            Assert.True(lapsed.Expires <= e.CreatedAt, "a grant expired before its expiry");
                            lapsed.Expired = e.AmountMicroCredits;
                            lapsed.Remaining = 0;
                            lapsed.Closed = true;
                            break;
                    }
                }
            }

            // The portal's derivation agrees with the model, grant by grant.
            var derived = h.Get<CreditGrants>().Current("acme");
            Assert.Empty(derived.Discrepancies);
            foreach (var g in derived.Grants)
            {
                var m = model[g.Seq];
                Assert.Equal((m.Granted, m.Remaining, m.Expired), (g.GrantedMicro, g.RemainingMicro, g.ExpiredMicro));
            }

            // Nothing granted twice or lost: Σ granted = Σ drawn + Σ expired + Σ remaining, where Σ drawn is the consumption grants covered.
            await using (var db = await dbFactory.CreateDbContextAsync())
            {
                var consumed = await db.LedgerEntries.Where(e => e.TenantId == "acme" && e.Kind == EntryKind.Consumption).SumAsync(e => e.AmountMicroCredits);
                var granted = derived.Grants.Sum(g => g.GrantedMicro);
                Assert.Equal(granted, (consumed - uncovered) + derived.Grants.Sum(g => g.ExpiredMicro) + derived.Grants.Sum(g => g.RemainingMicro));
                Assert.Equal(uncovered, derived.UncoveredMicroByPeriod.Values.Sum());
            }

            // Once everything is flushed, this period's balance is what its active grants hold.
            var balance = h.Balance("acme");
            if (balance.UnflushedMicroCredits == 0)
            {
                var now = h.Time.GetUtcNow();
                var active = derived.Grants.Where(g => !g.ExpiryWritten && (g.ExpiresAt ?? CreditGrants.Never) > balance.Period.StartInstant
                                                       && g.PeriodStart <= balance.Period.Start).Sum(g => g.RemainingMicro);
                Assert.Equal(active - derived.UncoveredMicroByPeriod.GetValueOrDefault(balance.Period.Start),
                    balance.AllocatedMicroCredits - balance.ConsumedMicroCredits);
            }
            Assert.True((await h.Get<VerifyLedger>().ExecuteAsync("acme", deep: true)).Intact);
        }
        return true;
    }
}
