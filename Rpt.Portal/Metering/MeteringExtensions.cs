using Microsoft.Extensions.DependencyInjection.Extensions;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Metering;

public static class MeteringExtensions
{
    public static IHostApplicationBuilder AddMetering(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<CreditsOptions>().BindConfiguration("Rpt:Credits").ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddOptions<MeteringOptions>().BindConfiguration("Rpt:Metering").ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<PriceBookProvider>();
        builder.Services.TryAddSingleton<IIngestGate, OpenIngestGate>();
        builder.Services.AddSingleton<RateUsage>();
        builder.Services.AddSingleton<UsageIngestor>();
        builder.Services.AddSingleton<UsageReports>();
        builder.Services.AddHostedService<PriceBookRefresher>();
        return builder;
    }
}
