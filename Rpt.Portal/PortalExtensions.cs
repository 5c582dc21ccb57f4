using Rpt.Portal.Billing.Marketplace;
using Rpt.Portal.Alerts;
using Rpt.Portal.Api;
using Rpt.Portal.Billing;
using Rpt.Portal.Components;
using Rpt.Portal.Data;
using Rpt.Portal.Ledger;
using Rpt.Portal.Metering;
using Rpt.Portal.Operations;
using Rpt.Portal.Observability;
using Rpt.Portal.Plans;
using Rpt.Portal.Tenants;

namespace Rpt.Portal;

public static class PortalExtensions
{
    /// <summary>Every feature of Rpt Portal, each registering its own services and validated options.</summary>
    public static IHostApplicationBuilder AddPortal(this IHostApplicationBuilder builder) => builder
        .AddPortalObservability()
        .AddPortalData()
        .AddPortalHealth()
        .AddTenants()
        .AddMetering()
        .AddLedger()
        .AddPlans()
        .AddBilling()
        .AddMarketplace()
        .AddAlerts()
        .AddOperations()
        .AddCreditsApi()
        .AddApiProblems()
        .AddPortalUi()
        .AddPortalSecurity();

    public static WebApplication UsePortal(this WebApplication app)
    {
        app.UseApiProblems();
        app.MapPortalHealth();
        app.MapPortalMetrics();
        app.UsePortalSecurityHeaders();
        app.MapPortalApi();
        app.MapStripeWebhook();
        app.MapMarketplace();
        app.MapPortalUi();
        return app;
    }
}
