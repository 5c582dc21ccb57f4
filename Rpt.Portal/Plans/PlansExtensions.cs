namespace Rpt.Portal.Plans;

public static class PlansExtensions
{
    public static IHostApplicationBuilder AddPlans(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<PlansOptions>().BindConfiguration("Rpt:Plans").ValidateDataAnnotations().ValidateOnStart();
        return builder;
    }
}
