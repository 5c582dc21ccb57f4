namespace Rpt.Portal.Api;

public static class ApiExtensions
{
    public static IHostApplicationBuilder AddCreditsApi(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<ApiKeyService>();
        return builder;
    }
}
