using Microsoft.Extensions.Options;
using Rpt.Portal.Data;
using Stripe;

namespace Rpt.Portal.Billing;

public static class BillingExtensions
{
    public static IHostApplicationBuilder AddBilling(this IHostApplicationBuilder builder)
    {
        var development = builder.Environment.IsDevelopment();
        builder.Services.AddOptions<StripeOptions>().BindConfiguration("Rpt:Stripe")
            .PostConfigure(o => o.InDevelopment = development)
            .ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddHostedService<PaymentsStartupWarning>();
        builder.Services.AddSingleton<StripePrices>();
        builder.Services.AddSingleton<BillingEvents>();
        builder.Services.AddSingleton<ChangePlan>();
        builder.Services.AddSingleton<CreateTenant>();
        builder.Services.AddSingleton<StartPlanChange>();
        builder.Services.AddSingleton<StartTopUp>();
        builder.Services.AddSingleton<BillingStatus>();
        builder.Services.AddSingleton<TestModeGateway>();
        builder.Services.AddSingleton<IStripeClient>(sp =>
        {
            var o = sp.GetRequiredService<IOptions<StripeOptions>>().Value;
            return new StripeClient(apiKey: o.SecretKey ?? "", apiBase: string.IsNullOrWhiteSpace(o.ApiBase) ? null : o.ApiBase.TrimEnd('/'));
        });
        builder.Services.AddSingleton<StripeGateway>();
        builder.Services.AddSingleton<IBillingGateway>(sp => sp.GetRequiredService<IOptions<StripeOptions>>().Value switch
        {
            { TestMode: true } => sp.GetRequiredService<TestModeGateway>(),
            { Configured: true } => sp.GetRequiredService<StripeGateway>(),
            _ => new UnavailableGateway(),
        });
        builder.Services.AddHostedService<TestModeRenewals>();
        builder.Services.AddSingleton<AutoTopUps>();
        builder.Services.AddHostedService<AutoTopUpMonitor>();
        builder.Services.AddSingleton<ReportOverage>();
        builder.Services.AddHostedService<OverageReportScheduler>();
        return builder;
    }
}

/// <summary>In test mode, pays each new period of a test subscription as Stripe would (see <see cref="TestModeGateway.RenewAsync"/>).</summary>
public sealed class TestModeRenewals(IOptions<StripeOptions> stripe, IOptions<Ledger.LedgerOptions> ledger, TestModeGateway gateway,
    TimeProvider time, ILogger<TestModeRenewals> logger, IWorkLeases leases) : PeriodicJob(time, logger, leases)
{
    protected override string? Lease => Data.Lease.TestModeRenewals;

    protected override TimeSpan Interval => ledger.Value.RenewalInterval;
    protected override string FailureMessage => "Renewing test-mode subscriptions failed";

    protected override async Task RunOnceAsync(CancellationToken cancellationToken)
    {
        if (!stripe.Value.TestMode) return;
        var renewed = await gateway.RenewAsync(CancellationToken.None);
        if (renewed > 0) logger.LogInformation("Renewed {Count} test-mode subscriptions", renewed);
    }
}

/// <summary>Tells the operator at start-up which settings turn payments on, when neither Stripe nor test mode is configured.</summary>
public sealed class PaymentsStartupWarning(IOptions<StripeOptions> options, ILogger<PaymentsStartupWarning> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        var o = options.Value;
        if (o.PaymentsUnavailable)
            logger.LogWarning("Payments are unavailable: set Rpt:Stripe:SecretKey and Rpt:Stripe:WebhookSecret (and Rpt:Stripe:PlanPrices, Rpt:Stripe:PackPrices) to take payments through Stripe, or Rpt:Stripe:TestMode=true for a test checkout that grants credits without payment");
        else if (o.TestMode && !o.InDevelopment)
            logger.LogWarning("Rpt:Stripe:TestMode is on outside Development: any owner can take plans and credits through the test checkout without paying");
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>Neither Stripe nor test mode is configured: every payment is refused with a message for the owner.</summary>
public sealed class UnavailableGateway : IBillingGateway
{
    public bool TestMode => false;

    private static BillingException Refused() => new(StripeOptions.UnavailableMessage);

    public Task<string> StartCheckoutAsync(Tenants.Tenant tenant, string planCode, Uri portalBase, CancellationToken cancellationToken) => throw Refused();
    public Task<string> StartTopUpCheckoutAsync(Tenants.Tenant tenant, TopUpPack pack, Uri portalBase, CancellationToken cancellationToken) => throw Refused();
    public Task ChargeAutoTopUpAsync(Tenants.Tenant tenant, TopUpPack pack, string key, CancellationToken cancellationToken) => throw Refused();
    public Task ReportMeterEventAsync(string eventName, string customerId, long quantity, string identifier, DateTimeOffset at, CancellationToken cancellationToken) => throw Refused();
    public Task<string> ChangeSubscriptionAsync(Tenants.Tenant tenant, string planCode, bool upgrade, CancellationToken cancellationToken) => throw Refused();
    public Task<string> CancelSubscriptionAsync(Tenants.Tenant tenant, CancellationToken cancellationToken) => throw Refused();
    public Task<string> CustomerPortalUrlAsync(Tenants.Tenant tenant, Uri portalBase, CancellationToken cancellationToken) => throw Refused();
    public Task<IReadOnlyList<InvoiceSummary>> InvoicesAsync(Tenants.Tenant tenant, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<InvoiceSummary>>([]);
    /// <summary>No payment can have been taken: the reconciliation still lists every Stripe-keyed grant as without its object.</summary>
    public Task<IReadOnlyList<PaidObject>> PaidObjectsAsync(DateTimeOffset since, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<PaidObject>>([]);
}
