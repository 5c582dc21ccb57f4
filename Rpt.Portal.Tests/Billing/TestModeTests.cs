using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Billing;
using Rpt.Portal.Components;
using Rpt.Portal.Data;
using Rpt.Portal.Ledger;
using Rpt.Portal.Plans;
using Rpt.Portal.Tenants;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Tests.Billing;

/// <summary>
/// Without a Stripe key the portal plays Stripe's part: the same events, through the same processing,
/// on a real SQLite file and a fake clock. What `dotnet run` shows an owner is what Stripe would do.
/// </summary>
[Trait("Kind", "Sqlite")]
public sealed class TestModeTests
{
    private static readonly Uri Base = new("https://portal.example/");

    private static Tenant Tenant(PortalHarness h, string id)
    {
        using var db = h.Get<IDbContextFactory<ApplicationDbContext>>().CreateDbContext();
        return db.Tenants.AsNoTracking().First(t => t.Id == id);
    }

    private static List<(EntrySource Source, string Key, long Credits)> Grants(PortalHarness h, string id)
    {
        using var db = h.Get<IDbContextFactory<ApplicationDbContext>>().CreateDbContext();
        return db.LedgerEntries.AsNoTracking().Where(e => e.TenantId == id && e.Kind == EntryKind.Allocation).OrderBy(e => e.Seq)
            .AsEnumerable().Select(e => (e.Source, e.IdempotencyKey, Credit.FloorCredits(e.AmountMicroCredits))).ToList();
    }

    [Fact]
    public async Task AMonthInTestMode_Checkout_Renewal_FailedPayment_Cancellation()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme", "free");
        var gateway = Assert.IsType<TestModeGateway>(h.Get<IBillingGateway>());

        h.Time.Advance(TimeSpan.FromDays(10));
        // The owner picks Professional: a labelled in-portal checkout, nothing changes before it is paid.
        var step = await h.Get<StartPlanChange>().ExecuteAsync("acme", PortalRoles.Owner, "professional", Base);
        Assert.StartsWith("https://portal.example/billing/test-checkout/cs_test_", step.RedirectUrl);
        var checkoutId = step.RedirectUrl!.Split('/')[^1];
        Assert.Equal("free", Tenant(h, "acme").PlanCode);
        Assert.Null(gateway.FindCheckout(checkoutId, "someone-else"));

        var account = (await h.Get<BillingStatus>().ExecuteAsync("acme"))!;
        var due = gateway.DueToday(account.Catalog.First(p => p.Code == "professional"), account.Tenant);
        Assert.Equal(decimal.Round(99m * 472m / 720m, 2), due); // from 11 Apr 08:00, 472 of April's 720 hours are left
        await gateway.CompleteCheckoutAsync(checkoutId, "acme", default);
        Assert.Equal("professional", Tenant(h, "acme").PlanCode);
        Assert.Equal([(EntrySource.Signup, "signup:acme", 1_000L), (EntrySource.PlanChange, $"stripe:checkout:{checkoutId}", 24_000L)], Grants(h, "acme"));
        await Assert.ThrowsAsync<BillingException>(() => gateway.CompleteCheckoutAsync(checkoutId, "acme", default)); // paid once

        // Test mode's clock pays each new period once; the scheduler leaves a subscribed tenant to its invoice.
        h.Time.SetUtcNow(new DateTimeOffset(2026, 5, 1, 0, 5, 0, TimeSpan.Zero));
        Assert.Equal(0, await h.Get<RenewPeriods>().ExecuteAsync());
        Assert.Equal(1, await gateway.RenewAsync(default));
        Assert.Equal(0, await gateway.RenewAsync(default));
        var renewal = Grants(h, "acme")[^1];
        Assert.Equal((EntrySource.Renewal, 25_000L), (renewal.Source, renewal.Credits));
        Assert.StartsWith("stripe:invoice:in_test_", renewal.Key);
        Assert.Equal(25_000, h.Balance("acme").Allocated);

        // A failed payment is flagged for owners; paying it clears the flag and grants nothing more.
        await gateway.FailRenewalPaymentAsync(Tenant(h, "acme"), default);
        Assert.NotNull(Tenant(h, "acme").PaymentFailedInvoiceId);
        Assert.NotNull(await h.Get<BillingStatus>().FailedPaymentAsync("acme"));
        await gateway.PayFailedInvoiceAsync(Tenant(h, "acme"), default);
        Assert.Null(await h.Get<BillingStatus>().FailedPaymentAsync("acme"));
        Assert.Equal(25_000, h.Balance("acme").Allocated);
        var invoices = await gateway.InvoicesAsync(Tenant(h, "acme"), default);
        Assert.Equal(3, invoices.Count);
        Assert.All(invoices, i => Assert.Equal("paid", i.Status));

        // A downgrade is previewed by the code that applies it, then scheduled; moving to Free ends the subscription.
        var preview = (await h.Get<ChangePlan>().PreviewAsync("acme", "starter"))!;
        Assert.Equal((PlanChangeKind.Downgrade, 0L, new DateOnly(2026, 6, 1), 25_000L, 25_000L),
            (preview.Kind, preview.CreditsGrantedNow, preview.EffectiveFrom, preview.AllocatedBefore!.Value, preview.AllocatedAfter!.Value));
        var free = await h.Get<StartPlanChange>().ExecuteAsync("acme", PortalRoles.Owner, "free", Base);
        Assert.Equal("The account moves to Free on 1 Jun 2026; until then it keeps this plan and its credits.", free.Message);
        Assert.Equal(("professional", null, "free"), (Tenant(h, "acme").PlanCode, Tenant(h, "acme").StripeSubscriptionId, Tenant(h, "acme").PendingPlanCode));

        h.Time.SetUtcNow(new DateTimeOffset(2026, 6, 1, 0, 5, 0, TimeSpan.Zero));
        Assert.Equal(0, await gateway.RenewAsync(default)); // no subscription any more
        Assert.Equal(1, await h.Get<RenewPeriods>().ExecuteAsync());
        Assert.Equal(("free", 1_000L), (Tenant(h, "acme").PlanCode, h.Balance("acme").Allocated!.Value));
        Assert.Equal((EntrySource.Renewal, "renewal:acme:2026-06-01", 1_000L), Grants(h, "acme")[^1]);
        Assert.True((await h.Get<VerifyLedger>().ExecuteAsync("acme", deep: true)).Intact);
    }

    [Fact]
    public async Task PreviewAndChange_Agree_ForAnUpgradeMidPeriod()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme", "starter");
        await h.IngestAsync("acme", Events.Call("c1", model: "gpt-4o", input: 1_000_000, output: 0)); // 300 credits
        var preview = (await h.Get<ChangePlan>().PreviewAsync("acme", "business"))!;
        var result = await h.Get<ChangePlan>().ExecuteAsync("acme", "business");
        var balance = h.Balance("acme");

        Assert.Equal((PlanChangeKind.Upgrade, 95_000L), (preview.Kind, preview.CreditsGrantedNow));
        Assert.Equal(preview.CreditsGrantedNow, result.GrantedCredits);
        Assert.Equal(preview.AllocatedAfter, balance.Allocated);
        Assert.Equal(preview.RemainingAfter, balance.Remaining);
        Assert.Equal(preview.PercentAfter, balance.PercentConsumed);
        Assert.Equal((4_700L, 6m), (preview.RemainingBefore!.Value, preview.PercentBefore));
    }

    [Fact]
    public async Task AutoTopUp_ABurstThatCrossesOnce_BuysOnce_ReArmsAboveTheThreshold_AndHoldsNPerPeriod()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme", "starter"); // 5,000 credits
        using (var db = h.Get<IDbContextFactory<ApplicationDbContext>>().CreateDbContext())
        {
            db.Tenants.First(t => t.Id == "acme").LinkStripeCustomer("cus_test_acme"); // a card was saved by an earlier purchase
            db.SaveChanges();
        }
        var auto = h.Get<AutoTopUps>();
        Assert.Equal("threshold must be between 1 and 1,000,000,000 credits.", (await auto.ConfigureAsync("acme", PortalRoles.Owner, true, 0, "topup_5k", 2)).Message);
        Assert.Equal("max_per_period must be between 1 and 10.", (await auto.ConfigureAsync("acme", PortalRoles.Owner, true, 1_000, "topup_5k", 11)).Message);
        Assert.StartsWith("pack 'gold' is not one of", (await auto.ConfigureAsync("acme", PortalRoles.Owner, true, 1_000, "gold", 2)).Message);
        Assert.False((await auto.ConfigureAsync("acme", PortalRoles.Admin, true, 1_000, "topup_5k", 2)).Succeeded);
        Assert.True((await auto.ConfigureAsync("acme", PortalRoles.Owner, true, 1_000, "topup_5k", 2)).Succeeded);

        async Task BurnAsync(int credits30)
        {
            for (var batch = 0; batch < credits30; batch += 10)
            {
                await h.IngestAsync("acme", Enumerable.Range(batch, Math.Min(10, credits30 - batch))
                    .Select(i => Events.Call($"b{h.Time.GetUtcNow().Ticks}-{i}", "gpt-4o", 100_000, 0, at: h.Time.GetUtcNow())).ToArray());
                await h.FlushAsync();
                // Every flush is evaluated, here from 8 callers at once: the burst crosses the threshold once.
                await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => auto.EvaluateAsync("acme"))));
            }
            h.Time.Advance(TimeSpan.FromMinutes(1));
        }

        await BurnAsync(150); // 4,500 credits: 500 left, under 1,000
        var attempts = (await auto.ViewAsync("acme")).Attempts;
        var first = Assert.Single(attempts);
        Assert.Equal(("auto_top_up:acme:2026-04-01:1", AutoTopUpStatus.Succeeded), (first.Key, first.Status));
        Assert.Equal(10_000, h.Balance("acme").Allocated); // 5,000 + one 5,000 pack

        await BurnAsync(150); // 4,500 more: 1,000 left → not under the threshold, no purchase
        Assert.Single((await auto.ViewAsync("acme")).Attempts);
        await BurnAsync(50);  // 1,500 more: under again, re-armed since → the second purchase
        Assert.Equal(2, (await auto.ViewAsync("acme")).Attempts.Count);
        await BurnAsync(200); // under again: max 2 a period holds
        Assert.Equal(2, (await auto.ViewAsync("acme")).Attempts.Count);
        Assert.Equal(15_000, h.Balance("acme").Allocated);
        var keys = Grants(h, "acme").Where(g => g.Source == EntrySource.TopUp).Select(g => g.Key).ToList();
        Assert.Equal(["auto_top_up:acme:2026-04-01:1", "auto_top_up:acme:2026-04-01:2"], keys);
        Assert.True((await h.Get<VerifyLedger>().ExecuteAsync("acme", deep: true)).Intact);
    }

    /// <summary>
    /// One tenant through a month in test mode: signup, a pack, consumption past the plan, an auto top-up, renewal,
    /// expiry. After each step the new ledger entries and the balance are written to artifacts/month-walk.md.
    /// </summary>
    [Fact]
    public async Task AMonthOfOneTenant_EveryStepExplainedByTheLedger()
    {
        await using var h = await PortalHarness.StartAsync(); // 1 Apr 2026 08:00 UTC
        static string Fmt(long micro) => (micro / (decimal)Credit.MicroPerCredit).ToString("#,0.######", System.Globalization.CultureInfo.InvariantCulture);
        var log = new System.Text.StringBuilder("# One tenant through a month (test mode, fake clock)\n");
        long seen = 0;
        async Task StepAsync(string what)
        {
            await h.FlushAsync();
            await using var db = await h.Get<IDbContextFactory<ApplicationDbContext>>().CreateDbContextAsync();
            log.Append($"\n## {h.Time.GetUtcNow():d MMM yyyy HH:mm} — {what}\n\n| # | kind | source | key | credits | expires |\n|---|---|---|---|---|---|\n");
            foreach (var e in await db.LedgerEntries.AsNoTracking().Where(e => e.TenantId == "acme" && e.Seq > seen).OrderBy(e => e.Seq).ToListAsync())
            {
                seen = e.Seq;
                log.Append($"| {e.Seq} | {e.Kind.ToString().ToLowerInvariant()} | {EnumText.ToText(e.Source)} | `{e.IdempotencyKey}` | {Fmt(e.AmountMicroCredits)} | {(e.ExpiresAt is { } x && x < CreditGrants.Never ? x.ToString("d MMM yyyy") : e.Kind == EntryKind.Allocation ? "never" : "")} |\n");
            }
            var b = h.Balance("acme");
            log.Append($"\nBalance ({b.Period.Start:d MMM}–{b.Period.End:d MMM}): allocated {b.Allocated:N0}, consumed {b.Consumed:N0}, remaining {b.Remaining:N0}.\n");
            Assert.True((await h.Get<VerifyLedger>().ExecuteAsync("acme", deep: true)).Intact);
        }
        async Task ConsumeAsync(int credits30)
        {
            for (var i = 0; i < credits30; i += 50)
                await h.IngestAsync("acme", Enumerable.Range(i, Math.Min(50, credits30 - i))
                    .Select(n => Events.Call($"w{h.Time.GetUtcNow().Ticks}-{n}", "gpt-4o", 100_000, 0, at: h.Time.GetUtcNow())).ToArray());
            await h.FlushAsync();
            await h.Get<AutoTopUps>().EvaluateAsync("acme"); // as the server does on every flush
        }

        await h.CreateTenantAsync("acme", "starter");
        await StepAsync("signup on Starter (5,000 credits a month, blocked past them)");

        h.Time.Advance(TimeSpan.FromDays(9));
        var gateway = h.Get<TestModeGateway>();
        var buy = await h.Get<StartTopUp>().ExecuteAsync("acme", PortalRoles.Owner, "topup_5k", Base);
        await gateway.CompleteCheckoutAsync(buy.RedirectUrl!.Split('/')[^1], "acme", default);
        await StepAsync("the owner buys a 5,000-credit pack (test-mode checkout)");

        Assert.True((await h.Get<AutoTopUps>().ConfigureAsync("acme", PortalRoles.Owner, true, 1_000, "topup_5k", 2)).Succeeded);
        h.Time.Advance(TimeSpan.FromDays(10));
        await ConsumeAsync(310); // 9,300 credits
        await StepAsync("9,300 credits of usage, past the plan's 5,000; remaining falls to 700, under the auto top-up threshold of 1,000");
        Assert.Single((await h.Get<AutoTopUps>().ViewAsync("acme")).Attempts);

        h.Time.SetUtcNow(new DateTimeOffset(2026, 5, 1, 0, 5, 0, TimeSpan.Zero));
        await h.Get<RenewPeriods>().ExecuteAsync();
        await h.Get<ExpireGrants>().ExecuteAsync();
        await StepAsync("renewal on 1 May; April's plan allocation was used up, so nothing expires");

        h.Time.Advance(TimeSpan.FromDays(9));
        await ConsumeAsync(67); // 2,010 credits, drawn from May's renewal first
        await StepAsync("2,010 credits of usage in May");

        h.Time.SetUtcNow(new DateTimeOffset(2026, 6, 1, 0, 5, 0, TimeSpan.Zero));
        await h.Get<RenewPeriods>().ExecuteAsync();
        Assert.Equal(1, await h.Get<ExpireGrants>().ExecuteAsync());
        await StepAsync("renewal on 1 June; the 2,990 credits May's allocation still held expire, and the ledger says so");

        var grants = h.Get<CreditGrants>().Current("acme");
        log.Append("\n## The grants on 1 June\n\n| # | source | granted | left | expired | expires | status |\n|---|---|---|---|---|---|---|\n");
        foreach (var g in grants.Grants.OrderBy(g => g.Seq))
            log.Append($"| {g.Seq} | {EnumText.ToText(g.Source)} | {Fmt(g.GrantedMicro)} | {Fmt(g.RemainingMicro)} | {Fmt(g.ExpiredMicro)} | {g.ExpiresAt?.ToString("d MMM yyyy") ?? "never"} | {EnumText.ToText(g.StatusAt(h.Time.GetUtcNow()))} |\n");
        var expiry = grants.Grants.Single(g => g.ExpiryWritten && g.ExpiredMicro > 0);
        Assert.Equal((EntrySource.Renewal, 2_990_000_000L), (expiry.Source, expiry.ExpiredMicro));
        Assert.Equal(grants.Grants.Sum(g => g.GrantedMicro), (9_300_000_000L + 2_010_000_000L) + grants.Grants.Sum(g => g.ExpiredMicro) + grants.Grants.Sum(g => g.RemainingMicro));
        var june = h.Balance("acme");
        Assert.Equal((5_000L + 5_000L + 700L, 0L), (june.Allocated!.Value, june.Consumed)); // June's 5,000, the auto top-up's 5,000 and the pack's 700
        var dir = Path.Combine(Browser.BrowserFixture.RepositoryRoot(), "artifacts");
        Directory.CreateDirectory(dir);
        await File.WriteAllTextAsync(Path.Combine(dir, "month-walk.md"), log.ToString());
    }
}
