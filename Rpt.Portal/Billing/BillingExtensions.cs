using Microsoft.Extensions.Options;
using Rpt.Portal.Data;
using Stripe;

namespace Rpt.Portal.Billing;

public static class BillingExtensions
{
    public static IHostApplicationBuilder AddBilling(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<StripeOptions>().BindConfiguration("Rpt:Stripe").ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<StripePrices>();
        builder.Services.AddSingleton<BillingEvents>();
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
        builder.Services.AddSingleton<IBillingGateway>(sp => sp.GetRequiredService<IOptions<StripeOptions>>().Value.TestMode
            ? sp.GetRequiredService<TestModeGateway>()
            : sp.GetRequiredService<StripeGateway>());
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
    TimeProvider time, ILogger<TestModeRenewals> logger) : PeriodicJob(time, logger)
{
    protected override TimeSpan Interval => ledger.Value.RenewalInterval;
    protected override string FailureMessage => "Renewing test-mode subscriptions failed";

    protected override void RunOnce()
    {
        if (!stripe.Value.TestMode) return;
        var renewed = gateway.RenewAsync(CancellationToken.None).GetAwaiter().GetResult();
        if (renewed > 0) logger.LogInformation("Renewed {Count} test-mode subscriptions", renewed);
    }
}
