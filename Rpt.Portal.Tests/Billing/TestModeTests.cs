using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Billing;
using Rpt.Portal.Components;
using Rpt.Portal.Data;
using Rpt.Portal.Ledger;
using Rpt.Portal.Plans;
using Rpt.Portal.Tenants;

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
}
