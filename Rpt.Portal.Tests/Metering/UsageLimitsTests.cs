using FsCheck;
using FsCheck.Fluent;
using Rpt.Portal.Ledger;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Tests.Metering;

/// <summary>
/// No accepted input can break the sums (docs/RULES.md "Limits"): an event over a limit is rejected by itself,
/// naming the limit, and one tenant's usage never stops or skews another's.
/// </summary>
[Trait("Kind", "Sqlite")]
public class UsageLimitsTests
{
    [Fact]
    public async Task Ingest_TokensOverThePerCallLimit_RejectsThatEventAloneNamingTheLimit()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme");
        var result = await h.IngestAsync("acme",
            Events.Call("ok"),
            Events.Call("huge", model: "claude-opus-4", input: 10_000_000_000, output: 10_000_000_000, cached: 10_000_000_000),
            Events.Call("ok2"));
        Assert.Equal([IngestStatus.Accepted, IngestStatus.Rejected, IngestStatus.Accepted], result.Results.Select(r => r.Status));
        Assert.Equal("input_tokens 10,000,000,000 exceeds the per-call limit of 100,000,000 tokens", result.Results[1].Error);
    }

    [Fact]
    public async Task Ingest_MeterQuantityOverTheLimit_RejectsNamingTheLimit()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme");
        var result = await h.IngestAsync("acme", Events.Meter("img", "image_generation", 1_000_001m));
        Assert.Equal(IngestStatus.Rejected, result.Results[0].Status);
        Assert.Contains("per-event limit of 1,000,000", result.Results[0].Error);
    }

    /// <summary>The hostile client of the report, in full: batches of 10,000 events worth as much as one event
    /// may be, far past a tenant's period limit. Before the limits the running total saturated at 2^63 − 1 and
    /// every tenant's flush failed from then on.</summary>
    [Fact]
    public async Task Ingest_HostileTenantPastItsPeriodLimit_IsCappedWhileEveryOtherTenantFlushesExactly()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("hostile");
        await h.CreateTenantAsync("honest");
        var max = UsageLimits.MaxTokensPerField;
        var perEvent = 1_098_000_000_000L; // claude-opus-4 at 10^8 tokens in each field, with the published rule
        long accepted = 0, rejected = 0;
        for (var batch = 0; batch < 10; batch++)
        {
            var events = Enumerable.Range(0, 10_000)
                .Select(i => Events.Call($"h{batch}_{i}", model: "claude-opus-4", input: max, output: max, cached: max)).ToArray();
            var result = await h.IngestAsync("hostile", events);
            accepted += result.Accepted;
            rejected += result.Rejected;
            foreach (var r in result.Results.Where(r => r.Status == IngestStatus.Rejected))
                Assert.Contains("per-period limit of 100,000,000,000,000,000 µcr", r.Error);
            await h.IngestAsync("honest", Events.Call($"n{batch}"));
        }
        Assert.Equal(UsageLimits.MaxMicroCreditsPerTenantPeriod / perEvent, accepted);
        Assert.Equal(100_000 - accepted, rejected);
        // A duplicate of an accepted event is still a duplicate, not a limit rejection.
        Assert.Equal(IngestStatus.Duplicate, (await h.IngestAsync("hostile", Events.Call("h0_0", model: "claude-opus-4", input: max, output: max, cached: max))).Results[0].Status);

        var outcome = await h.FlushAsync();
        Assert.Empty(outcome.LaggingTenants);
        Assert.Equal(accepted * perEvent, h.Balance("hostile").ConsumedMicroCredits);
        var honest = Rating.MicroCredits(Rating.CostUsd(h.Get<PriceBookProvider>().Current.Find(null, "gpt-4o-mini", false, PortalHarness.DefaultStart).Price!, 3200, 740, 0, null),
            h.Get<PriceBookProvider>().Current.RuleAt(PortalHarness.DefaultStart));
        Assert.Equal(10 * honest, h.Balance("honest").ConsumedMicroCredits);
        Assert.Equal(10 * honest, h.Balance("honest").FlushedMicroCredits);
        foreach (var tenant in new[] { "hostile", "honest" })
        {
            var v = await h.Get<VerifyLedger>().ExecuteAsync(tenant, deep: true);
            Assert.True(v.Intact, string.Join("; ", v.Problems));
        }
    }

    public sealed record Hostile(long Input, long Output, long Cached, int Model, bool Internal);

    private static readonly string[] Models = ["gpt-4o-mini", "claude-opus-4", "gemini-2.5-pro", "gpt-4o"];

    private static Gen<long> Tokens => Gen.Frequency(
        (3, Gen.Choose(0, 1_000_000).Select(i => (long)i)),
        (3, Gen.Constant(UsageLimits.MaxTokensPerField)),
        (1, Gen.Constant(UsageLimits.MaxTokensPerField + 1)),
        (1, Gen.Constant(long.MaxValue)),
        (1, Gen.Constant(-1L)));

    private static Gen<Hostile> HostileGen =>
        from input in Tokens
        from output in Tokens
        from cached in Tokens
        from model in Gen.Choose(0, Models.Length - 1)
        from @internal in Gen.Frequency((1, Gen.Constant(true)), (4, Gen.Constant(false)))
        select new Hostile(input, output, cached, model, @internal);

    /// <summary>
    /// For any sequence of events a hostile tenant sends (any token counts, up to and past every limit), with a
    /// period limit set low enough to be reached: no sum overflows, the hostile tenant's totals stay within the
    /// limit and equal what was accepted, and an honest tenant's balance stays exact and flushed.
    /// </summary>
    [Fact]
    public void AnyHostileSequence_NoSumOverflows_AndAnotherTenantsBalanceStaysExact()
    {
        const long cap = 20_000_000_000_000; // two maximal opus calls' worth, so that sequences reach it
        Prop.ForAll(HostileGen.ListOf().Select(l => l.ToArray()).ToArbitrary(), calls => CheckAsync(calls, cap).GetAwaiter().GetResult())
            .Check(Config.QuickThrowOnFailure.WithMaxTest(25));
    }

    private static async Task<bool> CheckAsync(Hostile[] calls, long cap)
    {
        await using var h = await PortalHarness.StartAsync(new Dictionary<string, string?> { ["Rpt:Metering:MaxMicroCreditsPerTenantPeriod"] = cap.ToString() });
        await h.CreateTenantAsync("hostile");
        await h.CreateTenantAsync("honest");
        var book = h.Get<PriceBookProvider>().Current;
        var rule = book.RuleAt(PortalHarness.DefaultStart);
        long acceptedMicro = 0, honestMicro = 0;
        for (var i = 0; i < calls.Length; i++)
        {
            var c = calls[i];
            var result = await h.IngestAsync("hostile", Events.Call($"x{i}", Models[c.Model], c.Input, c.Output, c.Cached, @internal: c.Internal));
            var inLimits = new[] { c.Input, c.Output, c.Cached }.All(t => t is >= 0 and <= UsageLimits.MaxTokensPerField);
            if (result.Results[0].Status == IngestStatus.Accepted)
            {
                Assert.True(inLimits);
                var micro = Rating.MicroCredits(Rating.CostUsd(book.Find(null, Models[c.Model], false, PortalHarness.DefaultStart).Price!, c.Input, c.Output, c.Cached, null), rule);
                acceptedMicro += c.Internal ? 0 : micro;
            }
            else
            {
                Assert.Equal(IngestStatus.Rejected, result.Results[0].Status);
                Assert.False(string.IsNullOrEmpty(result.Results[0].Error));
            }
            var honest = await h.IngestAsync("honest", Events.Call($"n{i}"));
            Assert.Equal(IngestStatus.Accepted, honest.Results[0].Status);
            honestMicro += Rating.MicroCredits(Rating.CostUsd(book.Find(null, "gpt-4o-mini", false, PortalHarness.DefaultStart).Price!, 3200, 740, 0, null), rule);
            if (i % 5 == 4) Assert.Empty((await h.FlushAsync()).LaggingTenants);
        }
        Assert.Empty((await h.FlushAsync()).LaggingTenants);
        Assert.True(h.Scalar("SELECT COALESCE(SUM(micro_credits), 0) FROM usage_totals WHERE tenant_id = 'hostile'") <= cap);
        Assert.Equal(acceptedMicro, h.Balance("hostile").ConsumedMicroCredits);
        Assert.Equal(acceptedMicro, h.Balance("hostile").FlushedMicroCredits);
        Assert.Equal(honestMicro, h.Balance("honest").ConsumedMicroCredits);
        Assert.Equal(honestMicro, h.Balance("honest").FlushedMicroCredits);
        foreach (var tenant in new[] { "hostile", "honest" })
        {
            var v = await h.Get<VerifyLedger>().ExecuteAsync(tenant, deep: true);
            Assert.True(v.Intact, string.Join("; ", v.Problems));
        }
        return true;
    }
}
