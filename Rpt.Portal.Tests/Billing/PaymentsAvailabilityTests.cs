using Rpt.Portal.Billing;
using Rpt.Portal.Components;

namespace Rpt.Portal.Tests.Billing;

/// <summary>
/// Test mode hands out real credits for a pretend payment, so it belongs to Development, and to another
/// environment only when an operator turns it on by name. A production portal without Stripe refuses to sell.
/// </summary>
[Trait("Kind", "Http")]
public sealed class PaymentsAvailabilityTests
{
    private static readonly Uri Base = new("https://portal.example/");

    [Fact]
    public async Task Production_WithoutAStripeKey_RefusesPlansAndPacks_WithAMessageForTheOwner_AndGrantsNothing()
    {
        await using var app = new ApiFactory(environment: "Production");
        await app.TenantAsync("acme", "free");
        var options = app.Get<Microsoft.Extensions.Options.IOptions<StripeOptions>>().Value;
        Assert.False(options.TestMode);
        Assert.True(options.PaymentsUnavailable);
        Assert.IsType<UnavailableGateway>(app.Get<IBillingGateway>());

        var pack = await app.Get<StartTopUp>().ExecuteAsync("acme", PortalRoles.Owner, "topup_5k", Base);
        Assert.False(pack.Succeeded);
        Assert.Null(pack.RedirectUrl);
        Assert.Equal(StripeOptions.UnavailableMessage, pack.Message);
        var plan = await app.Get<StartPlanChange>().ExecuteAsync("acme", PortalRoles.Owner, "professional", Base);
        Assert.False(plan.Succeeded);
        Assert.Equal(StripeOptions.UnavailableMessage, plan.Message);

        Assert.True((await app.Get<BillingStatus>().ExecuteAsync("acme"))!.PaymentsUnavailable);
        var balance = app.Get<Rpt.Portal.Ledger.GetBalance>().Execute("acme")!;
        Assert.Equal(1_000L, balance.Allocated); // the sign-up grant alone
    }

    [Fact]
    public async Task Production_WithTestModeTurnedOnByName_RunsTheTestCheckout()
    {
        await using var app = new ApiFactory(new() { ["Rpt:Stripe:TestMode"] = "true" }, environment: "Production");
        await app.TenantAsync("acme", "free");
        Assert.IsType<TestModeGateway>(app.Get<IBillingGateway>());
        var pack = await app.Get<StartTopUp>().ExecuteAsync("acme", PortalRoles.Owner, "topup_5k", Base);
        Assert.StartsWith("https://portal.example/billing/test-checkout/", pack.RedirectUrl);
    }

    [Fact]
    public void Options_TestModeIsDevelopmentsDefault_AndAKeyWithTestModeIsRefused()
    {
        Assert.True(new StripeOptions { InDevelopment = true }.TestMode);
        Assert.False(new StripeOptions { InDevelopment = true, TestModeSetting = false }.TestMode);
        Assert.False(new StripeOptions().TestMode);
        Assert.True(new StripeOptions { TestModeSetting = true }.TestMode);
        var both = new StripeOptions { SecretKey = "sk_test_x", WebhookSecret = "whsec_x", TestModeSetting = true };
        Assert.Contains(both.Validate(new System.ComponentModel.DataAnnotations.ValidationContext(both)),
            r => r.ErrorMessage!.Contains("Rpt:Stripe:TestMode", StringComparison.Ordinal));
    }
}
