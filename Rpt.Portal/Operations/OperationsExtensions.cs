namespace Rpt.Portal.Operations;

/// <summary>The operators' feature: the audit log every operator action writes (the console's pages follow).</summary>
public static class OperationsExtensions
{
    public static IHostApplicationBuilder AddOperations(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<AuditLog>();
        builder.Services.AddSingleton<OperatorGate>();
        builder.Services.AddSingleton<Corrections>();
        builder.Services.AddSingleton<TenantOverview>();
        builder.Services.AddOptions<PriceChangeOptions>().Bind(builder.Configuration.GetSection("Rpt:Prices"))
            .Validate(o => o.NoticeDays is >= 0 and <= 365, "Rpt:Prices:NoticeDays: 0 to 365 days").ValidateOnStart();
        builder.Services.AddSingleton<PriceChanges>();
        builder.Services.AddSingleton<PlanEditor>();
        builder.Services.AddSingleton<Reconciliation>();
        builder.Services.AddSingleton<PriceNotices>();
        builder.Services.AddHostedService<PriceNoticeScheduler>();
        builder.Services.AddScoped<ConsoleOrigin>();
        builder.Services.AddScoped<Microsoft.AspNetCore.Components.Server.Circuits.CircuitHandler, ConsoleOriginCircuitHandler>();
        builder.Services.AddHttpContextAccessor();
        return builder;
    }
}
