using Rpt.Portal.Tenants;

namespace Rpt.Portal.Plans;

public static class PlansExtensions
{
    public static IHostApplicationBuilder AddPlans(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<PlansOptions>().BindConfiguration("Rpt:Plans").ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<QuotaCheck>();
        builder.Services.AddSingleton<ChangePlan>();
        builder.Services.AddSingleton<CreateTenant>();
        return builder;
    }
}
