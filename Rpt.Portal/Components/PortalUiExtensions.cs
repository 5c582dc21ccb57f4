using Microsoft.AspNetCore.Components.Authorization;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using MudBlazor.Services;
using Rpt.Portal.Components.Account;
using Rpt.Portal.Mail;
using Rpt.Portal.Tenants;
using Rpt.Portal.Components.Layout;
using Rpt.Portal.Data;

namespace Rpt.Portal.Components;

public static class PortalUiExtensions
{
    public static IHostApplicationBuilder AddPortalUi(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddRazorComponents().AddInteractiveServerComponents();
        services.AddMudServices();
        services.AddSingleton<Shared.SeriesColours>();
        services.AddCascadingAuthenticationState();
        services.AddScoped<IdentityRedirectManager>();
        services.AddScoped<AuthenticationStateProvider, IdentityRevalidatingAuthenticationStateProvider>();
        services.AddAuthentication(options =>
            {
                options.DefaultScheme = IdentityConstants.ApplicationScheme;
                options.DefaultSignInScheme = IdentityConstants.ExternalScheme;
            })
            .AddIdentityCookies();
        services.AddScoped(sp => sp.GetRequiredService<IDbContextFactory<ApplicationDbContext>>().CreateDbContext());
        services.AddIdentityCore<ApplicationUser>(options =>
            {
                options.SignIn.RequireConfirmedAccount = true;
                options.Password.RequiredLength = 8; // as the account pages say
                options.Stores.SchemaVersion = IdentitySchemaVersions.Version3;
            })
            .AddRoles<IdentityRole>()
            .AddClaimsPrincipalFactory<PortalClaimsFactory>()
            .AddEntityFrameworkStores<ApplicationDbContext>()
            .AddSignInManager()
            .AddDefaultTokenProviders()
            .AddTokenProvider<InvitationTokenProvider>(InvitationTokenProvider.ProviderName);
        services.AddOptions<EmailOptions>().BindConfiguration("Rpt:Email").ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<PortalEmailSender>();
        services.AddSingleton<RegistrationTicket>();
        services.AddSingleton<IEmailSender<ApplicationUser>>(sp => sp.GetRequiredService<PortalEmailSender>());
        return builder;
    }

    public static WebApplication MapPortalUi(this WebApplication app)
    {
        // The portal's HTML error pages are for people; the API answers its own errors (ApiProblems).
        app.UseWhen(http => !Api.ApiProblems.IsApi(http), ui =>
        {
            if (!app.Environment.IsDevelopment()) ui.UseExceptionHandler("/Error", createScopeForErrors: true);
            ui.UseStatusCodePagesWithReExecute("/not-found", createScopeForStatusCodePages: true);
        });
        app.UseAntiforgery();
        app.MapStaticAssets();
        // frame-ancestors is part of our own policy (SecurityHeaders), which forbids framing altogether.
        app.MapRazorComponents<App>().AddInteractiveServerRenderMode(o => o.ContentSecurityFrameAncestorsPolicy = null);
        app.MapAdditionalIdentityEndpoints();
        app.MapThemeChoice();
        app.MapGet("/portal/usage.csv", Metering.Pages.UsageCsv.ExportAsync).RequireAuthorization().ExcludeFromDescription();
        app.MapGet("/portal/usage-groups.csv", Budgets.Pages.UsageGroupsCsv.ExportAsync).RequireAuthorization().ExcludeFromDescription();
        app.MapGet("/operations/audit.csv", Operations.AuditCsv.ExportAsync).RequireAuthorization(p => p.RequireRole(Tenants.PortalRoles.Operator)).ExcludeFromDescription();
        app.MapGet("/portal/statement.json", Ledger.Pages.StatementDownload.StatementAsync).RequireAuthorization().ExcludeFromDescription();
        app.MapGet("/portal/statement-records.txt", Ledger.Pages.StatementDownload.RecordsAsync).RequireAuthorization().ExcludeFromDescription();
        return app;
    }
}
