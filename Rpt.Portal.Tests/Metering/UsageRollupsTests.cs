using FsCheck;
using FsCheck.Fluent;
using Rpt.Portal.Ledger;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Tests.Metering;

/// <summary>The rollups every report reads are derived data: for any sequence of events they equal a recomputation.</summary>
[Trait("Kind", "Sqlite")]
public class UsageRollupsTests
{
    private static readonly string[] Models = ["gpt-4o-mini", "gpt-4o", "claude-sonnet-4"];
    private static readonly string?[] Features = [null, "summary", "chat"];
    private static readonly string?[] Jobs = [null, "job_a", "job_b", "job_c"];

    public sealed record Call(int Id, int Model, bool Meter, int Input, int Output, int Cached, int DaysAgo, int Minute, int Feature, int Job,
        bool Failed, bool Internal, bool FlushAfter);

    private static Gen<Call> CallGen =>
        from id in Gen.Choose(0, 30)                     // a small id space: duplicates
        from model in Gen.Choose(0, Models.Length - 1)
        from meter in Gen.Frequency((1, Gen.Constant(true)), (6, Gen.Constant(false)))
        from input in Gen.Choose(0, 100_000)
        from output in Gen.Choose(0, 10_000)
        from cached in Gen.Choose(0, 5_000)
        from daysAgo in Gen.Choose(0, 40)                // late arrivals, across the period boundary
        from minute in Gen.Choose(0, 1439)
        from feature in Gen.Choose(0, Features.Length - 1)
        from job in Gen.Choose(0, Jobs.Length - 1)
        from failed in Gen.Frequency((1, Gen.Constant(true)), (6, Gen.Constant(false)))
        from @internal in Gen.Frequency((1, Gen.Constant(true)), (6, Gen.Constant(false)))
        from flush in Gen.Frequency((1, Gen.Constant(true)), (5, Gen.Constant(false)))
        select new Call(id, model, meter, input, output, cached, daysAgo, minute, feature, job, failed, @internal, flush);

    [Fact]
    public void AnySequence_EveryRollupEqualsARecomputationFromTheEvents_AndTheDeepVerifierAgrees()
    {
        Prop.ForAll(CallGen.ListOf().Select(l => l.ToArray()).ToArbitrary(), calls => CheckAsync(calls).GetAwaiter().GetResult())
            .Check(Config.QuickThrowOnFailure.WithMaxTest(25));
    }

    private static async Task<bool> CheckAsync(Call[] calls)
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme");
        h.Time.Advance(TimeSpan.FromDays(45)); // periods: 1 Apr – 30 Apr, 1 May – …
        var now = h.Time.GetUtcNow();
        var book = h.Get<PriceBookProvider>().Current;
        var accepted = new Dictionary<int, (UsageEventInput Event, Call Call, long Micro)>();
        foreach (var c in calls)
        {
            var at = new DateTimeOffset(now.UtcDateTime.Date, TimeSpan.Zero).AddDays(-c.DaysAgo).AddMinutes(c.Minute);
            if (at > now) at = now;
            var e = c.Meter
                ? Events.Meter($"e{c.Id}", "image_generation", c.Input % 7 + 1, at: at, job: Jobs[c.Job])
                : Events.Call($"e{c.Id}", Models[c.Model], c.Input, c.Output, c.Cached, at: at, status: c.Failed ? "failed" : "succeeded",
                    @internal: c.Internal, job: Jobs[c.Job], feature: Features[c.Feature]);
            if (c.Meter) { e.Feature = Features[c.Feature]; e.Internal = c.Internal; e.Status = c.Failed ? "failed" : "succeeded"; }
            var result = await h.IngestAsync("acme", e);
            Assert.Equal(accepted.ContainsKey(c.Id) ? IngestStatus.Duplicate : IngestStatus.Accepted, result.Results[0].Status);
            if (!accepted.ContainsKey(c.Id))
            {
                var price = book.Find(e.Provider, c.Meter ? "image_generation" : Models[c.Model], c.Meter, at).Price!;
                var micro = c.Failed ? 0 : Rating.MicroCredits(Rating.CostUsd(price, e.InputTokens ?? 0, e.OutputTokens ?? 0, e.CachedInputTokens ?? 0, e.Quantity), book.RuleAt(at));
                accepted[c.Id] = (e, c, micro);
            }
            if (c.FlushAfter) await h.FlushAsync();
        }
        await h.FlushAsync();

        // The oracle: the rollups computed here from what was accepted, independently of the store.
        var expectedDaily = accepted.Values
            .GroupBy(a => (Day: DateOnly.FromDateTime(a.Event.OccurredAt!.Value.UtcDateTime), Category: UsageCategory.Of(a.Call.Failed, a.Call.Internal),
                Name: a.Event.Model ?? a.Event.Meter!, Feature: a.Event.Feature))
            .ToDictionary(g => g.Key, g => (Calls: (long)g.Count(), Input: g.Sum(a => a.Event.InputTokens ?? 0), Output: g.Sum(a => a.Event.OutputTokens ?? 0),
                Cached: g.Sum(a => a.Event.CachedInputTokens ?? 0), Micro: g.Sum(a => a.Micro), Quantity: g.Sum(a => (long)((a.Event.Quantity ?? 0) * 1_000_000))));
        using (var c = h.OpenDb())
        {
            var rows = h.Get<IUsageStore>().Daily(c, null, "acme", DateOnly.MinValue, DateOnly.MaxValue, null);
            Assert.Equal(expectedDaily.Count, rows.Count);
            foreach (var r in rows)
            {
                var e = expectedDaily[(r.Day, r.Category, r.Name, r.Feature)];
                Assert.Equal(e, (r.Calls, r.InputTokens, r.OutputTokens, r.CachedInputTokens, r.MicroCredits, r.QuantityMicro));
            }

            var expectedJobs = accepted.Values.Where(a => a.Event.JobId is not null).GroupBy(a => a.Event.JobId!)
                .ToDictionary(g => g.Key, g => (Calls: (long)g.Count(), Billable: (long)g.Count(a => !a.Call.Failed && !a.Call.Internal),
                    Micro: g.Where(a => !a.Call.Failed && !a.Call.Internal).Sum(a => a.Micro),
                    First: g.Min(a => a.Event.OccurredAt!.Value.ToUnixTimeMilliseconds()), Last: g.Max(a => a.Event.OccurredAt!.Value.ToUnixTimeMilliseconds())));
            var jobs = h.Get<IUsageStore>().Jobs(c, "acme", long.MinValue, long.MaxValue, null, 0, 100);
            Assert.Equal(expectedJobs.Count, jobs.Count);
            foreach (var j in jobs) Assert.Equal(expectedJobs[j.JobId], (j.Calls, j.BillableCalls, j.MicroCredits, j.FirstAtMs, j.LastAtMs));
        }

        // Reports read the rollups and agree with the balance, which reads the running totals.
        var balance = h.Balance("acme");
        var report = h.Get<UsageReports>().Tokens("acme", TokenGrouping.Model, balance.Period.StartInstant, balance.Period.EndInstant, 1, 50);
        Assert.Equal(balance.ConsumedMicroCredits, report.MicroCredits);
        Assert.Equal(balance.TotalTokens, report.Groups.Items.Where(g => balance.TokensByModel.ContainsKey(g.Key!)).Sum(g => g.TotalTokens));
        var v = await h.Get<VerifyLedger>().ExecuteAsync("acme", deep: true);
        Assert.True(v.Intact, string.Join("; ", v.Problems));
        return true;
    }

    [Fact]
    public async Task DeepVerify_AlteredRollup_IsFound()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme");
        var withUser = Events.Call("c", job: "job_3");
        withUser.UserId = "u_7";
        withUser.Project = "search";
        await h.IngestAsync("acme", Events.Call("a"), Events.Call("b", job: "job_2"), withUser);
        await h.FlushAsync();
        var intact = await h.Get<VerifyLedger>().ExecuteAsync("acme", deep: true);
        Assert.True(intact.Intact, string.Join("; ", intact.Problems));
        h.Execute("UPDATE usage_daily SET micro_credits = micro_credits + 1");
        h.Execute("UPDATE usage_jobs SET calls = calls + 1 WHERE job_id = 'job_2'");
        h.Execute("UPDATE usage_scopes SET day_micro_credits = day_micro_credits - 1 WHERE scope = 'user'");
        var v = await h.Get<VerifyLedger>().ExecuteAsync("acme", deep: true);
        Assert.Contains(v.Problems, p => p.StartsWith("usage by key, project and end user rollup user|", StringComparison.Ordinal));
        Assert.Contains(v.Problems, p => p.StartsWith("daily usage rollup", StringComparison.Ordinal));
        Assert.Contains(v.Problems, p => p.StartsWith("job rollup job_2", StringComparison.Ordinal));
    }
}
