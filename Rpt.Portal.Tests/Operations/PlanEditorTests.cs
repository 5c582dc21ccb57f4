using Bunit;
using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Billing;
using Rpt.Portal.Ledger;
using Rpt.Portal.Operations;
using Rpt.Portal.Operations.Pages;
using Rpt.Portal.Plans;

namespace Rpt.Portal.Tests.Operations;

/// <summary>The plan catalog as operators change it, and what the tenants on a plan then get.</summary>
[Trait("Kind", "Sqlite")]
public sealed class PlanEditorTests
{
    private static readonly AuditActor Operator = new("ops@rpt.test", "browser@127.0.0.1");

    private static PlanInput Team(long credits = 40_000, string? stripe = "price_team_1") => new("team", "Team", 149m, credits, OveragePolicy.Overage, 0.011m, stripe,
        [new("email_alerts", EntitlementKind.Boolean, "true"), new("team_seats", EntitlementKind.Quantity, "15"), new("model_access_tier", EntitlementKind.Custom, "standard")]);

    [Fact]
    public async Task APlan_IsCreatedEditedAndRetired_TheTenantsOnItRenewOnItWithTheNewAllocation_AndNoOneElseGetsIt()
    {
        await using var h = await PortalHarness.StartAsync(); // 1 Apr 2026
        var editor = h.Get<PlanEditor>();
        Assert.NotNull((await editor.CreateAsync(Operator, Team())).Plan);
        Assert.Equal("code", (await editor.CreateAsync(Operator, Team())).Field); // exists already
        await h.CreateTenantAsync("acme", "team");
        Assert.Equal(40_000, h.Balance("acme").Allocated);

        Assert.NotNull((await editor.UpdateAsync(Operator, Team(credits: 50_000))).Plan);
        Assert.Equal(40_000, h.Balance("acme").Allocated); // granted this period already: it stays
        Assert.NotNull((await editor.RetireAsync(Operator, "team")).Plan);

        // Retired: not offered to a new tenant, nor in the published catalog ...
        var refused = await h.Get<CreateTenant>().ExecuteAsync("Globex", "team", "globex");
        Assert.Contains("retired plan 'team'", refused.Error);
        var published = await Rpt.Portal.Api.CreditsApi.GetPlans(h.Get<IDbContextFactory<Rpt.Portal.Data.ApplicationDbContext>>(), default);
        Assert.DoesNotContain("team", published.Value!.Select(p => p.Code));
        // ... while acme keeps it and renews on it, with the edited allocation.
        h.Time.SetUtcNow(new DateTimeOffset(2026, 5, 1, 0, 5, 0, TimeSpan.Zero));
        await h.Get<RenewPeriods>().ExecuteAsync();
        var may = h.Balance("acme");
        Assert.Equal(("team", 50_000L), (may.PlanCode, may.Allocated!.Value));

        var records = (await h.Get<AuditLog>().ListAsync()).OrderBy(r => r.Seq).ToList();
        Assert.Equal(["plan.create", "plan.update", "plan.retire"], records.Select(r => r.Action));
        Assert.All(records, r => Assert.Equal("team", r.Subject));
        Assert.Contains("\"monthly_credits\":40000", records[1].OldValue);
        Assert.Contains("\"monthly_credits\":50000", records[1].NewValue);
        Assert.Contains("\"tenants_keeping_it\":1", records[2].NewValue);
    }

    [Fact]
    public async Task BadInput_IsRefusedNamingTheField_AndTheFreePlanCannotBeRetired()
    {
        await using var h = await PortalHarness.StartAsync();
        var editor = h.Get<PlanEditor>();
        Assert.Equal("code", (await editor.CreateAsync(Operator, Team() with { Code = "Team Plan" })).Field);
        Assert.Equal("monthly_credits", (await editor.CreateAsync(Operator, Team(credits: 0))).Field);
        Assert.Equal("monthly_credits", (await editor.CreateAsync(Operator, Team() with { Overage = OveragePolicy.Unlimited })).Field);
        Assert.Equal("stripe_price_id", (await editor.CreateAsync(Operator, Team(stripe: "prod_123"))).Field);
        Assert.Equal("monthly_price_usd", (await editor.CreateAsync(Operator, Team() with { MonthlyPriceUsd = 9.999m })).Field);
        Assert.Equal("entitlements", (await editor.CreateAsync(Operator, Team() with { Entitlements = [new("team_seats", EntitlementKind.Quantity, "many")] })).Field);
        Assert.Contains("every sign-up starts on", (await editor.RetireAsync(Operator, PlanCatalog.Free)).Error);
        Assert.Empty(await h.Get<AuditLog>().ListAsync());
    }
}

/// <summary>The plans page: a plan created and retired from the console.</summary>
[Trait("Kind", "Component")]
public sealed class PlansPageTests : OperatorComponentTest
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task AnOperator_CreatesAPlan_ThenRetiresIt_AndEachIsRecorded()
    {
        await SignInOperatorAsync("ops@rpt.test", twoFactor: true);
        var page = Render<PlansPage>();
        page.WaitForAssertion(() => Assert.Contains("professional", page.Find("[data-testid=plans]").TextContent), Wait);
        await page.Find("input[data-testid=plan-code]").ChangeAsync("team");
        await page.Find("input[data-testid=plan-name]").ChangeAsync("Team");
        await page.Find("input[data-testid=plan-price]").ChangeAsync("149");
        await page.Find("input[data-testid=plan-credits]").ChangeAsync("40000");
        await page.Find("textarea[data-testid=plan-entitlements]").ChangeAsync("email_alerts = true\nteam_seats = 15");
        page.Find("[data-testid=plan-save]").Click();
        page.WaitForAssertion(() => Assert.Contains("Created team", page.Find("[data-testid=plan-result]").TextContent), Wait);
        Assert.Contains("40,000", page.FindAll("[data-testid=plans] tbody tr").Single(r => r.TextContent.Contains("team")).TextContent);

        page.Find("[data-testid=plan-retire-team]").Click();
        page.WaitForAssertion(() => page.Find("[data-testid=plan-retire-confirm-team]"), Wait);
        page.Find("[data-testid=plan-retire-confirm-team]").Click();
        page.WaitForAssertion(() => Assert.Contains("retired", page.FindAll("[data-testid=plans] tbody tr").Single(r => r.TextContent.Contains("team")).TextContent), Wait);
        Assert.Equal(["plan.create", "plan.retire"], (await Harness.Get<AuditLog>().ListAsync()).OrderBy(r => r.Seq).Select(r => r.Action));
    }
}

/// <summary>A Stripe price id set on a plan in the console is the one its checkout sells, and the one a webhook is read by.</summary>
[Trait("Kind", "Http")]
public sealed class PlanStripePriceTests
{
    [Fact]
    public async Task TheStripePriceSetOnAPlan_IsWhatItsCheckoutSells_AndWhatAWebhookIsReadBy()
    {
        await using var stripe = await StripeDouble.StartAsync();
        await using var app = new ApiFactory(stripe.Settings());
        Assert.Null((await app.Get<CreateTenant>().ExecuteAsync("Acme", "free", "acme")).Error);
        var team = new PlanInput("team", "Team", 149m, 40_000, OveragePolicy.Overage, 0.011m, "price_team_2027", []);
        Assert.NotNull((await app.Get<PlanEditor>().CreateAsync(new AuditActor("ops@rpt.test", "cli@host"), team)).Plan);

        var step = await app.Get<StartPlanChange>().ExecuteAsync("acme", Rpt.Portal.Tenants.PortalRoles.Owner, "team", new Uri("https://portal.example/"));
        Assert.True(step.Succeeded, step.Message);
        var checkout = Assert.Single(stripe.RequestsTo("POST", "/v1/checkout/sessions"));
        Assert.Equal("price_team_2027", checkout.Form["line_items[0][price]"]);
        Assert.Equal("team", app.Get<StripePrices>().PlanOf("price_team_2027"));
        Assert.Equal("professional", app.Get<StripePrices>().PlanOf("price_professional")); // the configured ones still count
    }
}
