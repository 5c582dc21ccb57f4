namespace Rpt.Portal.Ledger;

public static class LedgerExtensions
{
    public static IHostApplicationBuilder AddLedger(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<LedgerOptions>().BindConfiguration("Rpt:Ledger").ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<GrantCredits>();
        builder.Services.AddSingleton<VoidGrant>();
        builder.Services.AddSingleton<Reservations>();
        builder.Services.AddSingleton<Budgets.BudgetService>();
        builder.Services.AddSingleton<FlushUsage>();
        builder.Services.AddSingleton<VerifyLedger>();
        builder.Services.AddSingleton<GetBalance>();
        builder.Services.AddSingleton<LedgerStatement>();
        builder.Services.AddSingleton<QuotaCheck>();
        builder.Services.AddSingleton<CreditGrants>();
        builder.Services.AddSingleton<ExpireGrants>();
        builder.Services.AddSingleton<DashboardSnapshots>();
        builder.Services.AddSingleton<LedgerHistory>();
        builder.Services.AddSingleton<ExplainJob>();
        builder.Services.AddSingleton<RenewPeriods>();
        builder.Services.AddHostedService<UsageFlusher>();
        builder.Services.AddHostedService<RenewalScheduler>();
        builder.Services.AddHostedService<GrantExpiryScheduler>();
        return builder;
    }
}
