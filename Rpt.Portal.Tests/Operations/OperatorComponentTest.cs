using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;
using Rpt.Portal.Data;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Tests.Operations;

/// <summary>A component test signed in as an operator (platform staff), with or without two-factor sign-in.</summary>
public abstract class OperatorComponentTest : PortalComponentTest
{
    protected async Task SignInOperatorAsync(string email, bool twoFactor)
    {
        using (var scope = Harness.Services.CreateScope())
        {
            var users = scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>();
            var user = new ApplicationUser { UserName = email, Email = email, EmailConfirmed = true };
            Assert.True((await users.CreateAsync(user, "Operator-Secret-1!")).Succeeded);
            await users.AddToRoleAsync(user, PortalRoles.Operator);
            await users.SetTwoFactorEnabledAsync(user, twoFactor);
        }
        var auth = AddAuthorization();
        auth.SetAuthorized(email);
        auth.SetRoles(PortalRoles.Operator);
        SetRendererInfo(new RendererInfo("Server", isInteractive: true));
    }

}
