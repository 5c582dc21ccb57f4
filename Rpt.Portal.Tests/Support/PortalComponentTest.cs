using System.Security.Claims;
using Bunit;
using Bunit.TestDoubles;
using Microsoft.Extensions.DependencyInjection;
using MudBlazor;
using MudBlazor.Services;
using Rpt.Portal.Components;

namespace Rpt.Portal.Tests.Support;

/// <summary>
/// The shared bUnit set-up: loose JS interop, MudBlazor without transitions, and Rpt Portal's real
/// services over a real SQLite file (with a fake clock) behind the test's own.
/// </summary>
public abstract class PortalComponentTest : BunitContext, IAsyncLifetime
{
    protected PortalHarness Harness { get; private set; } = default!;

    public async Task InitializeAsync()
    {
        Harness = await PortalHarness.StartAsync();
        JSInterop.Mode = JSRuntimeMode.Loose;
        Services.AddMudServices(o => o.SnackbarConfiguration.ShowTransitionDuration = 0);
        // The harness's fake clock for components too (the test context brings a clock of its own, which would win over the fallback).
        Services.AddSingleton<TimeProvider>(Harness.Time);
        Services.AddFallbackServiceProvider(Harness.Services);
    }

    async Task IAsyncLifetime.DisposeAsync()
    {
        await base.DisposeAsync();
        await Harness.DisposeAsync();
    }

    /// <summary>Signs a user of <paramref name="tenantId"/> in, with the given roles.</summary>
    protected void SignIn(string tenantId, params string[] roles)
    {
        var auth = AddAuthorization();
        auth.SetAuthorized($"user@{tenantId}.test");
        auth.SetRoles(roles); // before the claims: setting roles afterwards would drop them
        auth.SetClaims(new Claim(PortalClaimsFactory.TenantClaim, tenantId));
        // Last: it starts the renderer, after which no service can be added. The portal runs interactive on the server.
        SetRendererInfo(new Microsoft.AspNetCore.Components.RendererInfo("Server", isInteractive: true));
    }
}
