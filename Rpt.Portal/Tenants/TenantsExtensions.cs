namespace Rpt.Portal.Tenants;

public static class TenantsExtensions
{
    /// <summary>Accounts, their people, the tenant lookups every feature uses, and the notifier of what moved in an account.</summary>
    public static IHostApplicationBuilder AddTenants(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<TenantChanges>();
        builder.Services.AddSingleton<TenantDirectory>();
        builder.Services.AddScoped<TeamMembers>();
        return builder;
    }
}
