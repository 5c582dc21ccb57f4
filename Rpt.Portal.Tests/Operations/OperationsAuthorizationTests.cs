using System.Net;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Rpt.Portal.Data;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Tests.Operations;

/// <summary>
/// Every route under /operations, as the app itself lists its endpoints (pages and downloads alike), refuses everyone but an
/// operator with two-factor sign-in: a new page or endpoint added without the Operator policy fails here.
/// </summary>
[Trait("Kind", "Http")]
public sealed class OperationsAuthorizationTests : IAsyncLifetime
{
    private readonly ApiFactory _app = new();

    public Task InitializeAsync() => Task.CompletedTask;
    public async Task DisposeAsync() => await _app.DisposeAsync();

    private async Task UserAsync(string email, string? tenant, string role)
    {
        using var scope = _app.Services.CreateScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>();
        var user = new ApplicationUser { UserName = email, Email = email, EmailConfirmed = true, TenantId = tenant };
        Assert.True((await users.CreateAsync(user, "Secret-123!")).Succeeded);
        Assert.True((await users.AddToRoleAsync(user, role)).Succeeded);
    }

    [Fact]
    public async Task EveryOperationsRoute_RequiresTheOperatorRole_AndOpensOnlyWithTwoFactor()
    {
        var routes = _app.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText?.TrimStart('/').StartsWith("operations", StringComparison.Ordinal) == true)
            .ToList();
        var paths = routes.Select(e => "/" + e.RoutePattern.RawText!.TrimStart('/')).Distinct().Order(StringComparer.Ordinal).ToList();
        Assert.Equal(["/operations/audit", "/operations/audit.csv", "/operations/ledger", "/operations/plans", "/operations/prices",
            "/operations/tenants", "/operations/tenants/{TenantId}"], paths);
        foreach (var endpoint in routes)
        {
            // [Authorize(Roles = …)] on a page, or a policy with the role on an endpoint.
            var roles = endpoint.Metadata.GetOrderedMetadata<IAuthorizeData>().Select(a => a.Roles)
                .Concat(endpoint.Metadata.GetOrderedMetadata<AuthorizationPolicy>().SelectMany(p => p.Requirements)
                    .OfType<Microsoft.AspNetCore.Authorization.Infrastructure.RolesAuthorizationRequirement>().Select(r => string.Join(',', r.AllowedRoles)))
                .ToList();
            Assert.True(roles.Contains(PortalRoles.Operator), $"{endpoint.RoutePattern.RawText} does not require the Operator role");
        }

        var (tenant, _) = await _app.TenantAsync("acme");
        await UserAsync("owner@acme.test", tenant, PortalRoles.Owner);
        await UserAsync("ops@rpt.test", null, PortalRoles.Operator); // no two-factor sign-in yet
        var http = _app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = false });
        var owner = await SignIn.WithPasswordAsync(http, "owner@acme.test", "Secret-123!");
        var operatorWithoutTwoFactor = await SignIn.WithPasswordAsync(http, "ops@rpt.test", "Secret-123!");

        foreach (var path in paths.Select(p => p.Replace("{TenantId}", "acme", StringComparison.Ordinal)))
        {
            var anonymous = await http.GetAsync(path);
            Assert.True(anonymous.StatusCode is HttpStatusCode.Redirect or HttpStatusCode.Unauthorized, $"{path} answered {(int)anonymous.StatusCode} to no one");
            if (anonymous.StatusCode == HttpStatusCode.Redirect) Assert.Contains("/Account/Login", anonymous.Headers.Location!.ToString());

            var asOwner = await SignIn.GetAsync(http, path, owner);
            Assert.True(asOwner.StatusCode is HttpStatusCode.Redirect or HttpStatusCode.Forbidden, $"{path} answered {(int)asOwner.StatusCode} to a tenant's owner");
            if (asOwner.StatusCode == HttpStatusCode.Redirect) Assert.Contains("AccessDenied", asOwner.Headers.Location!.ToString());

            var asOperator = await SignIn.GetAsync(http, path, operatorWithoutTwoFactor);
            var body = await asOperator.Content.ReadAsStringAsync();
            if (path.EndsWith(".csv", StringComparison.Ordinal))
            {
                Assert.True(asOperator.StatusCode is HttpStatusCode.Forbidden or HttpStatusCode.Redirect, $"{path} answered {(int)asOperator.StatusCode} to an operator without two-factor sign-in");
                if (asOperator.StatusCode == HttpStatusCode.Redirect) Assert.Contains("AccessDenied", asOperator.Headers.Location!.ToString());
                Assert.DoesNotContain("seq,at,actor", body);
            }
            else
            {
                Assert.Equal(HttpStatusCode.OK, asOperator.StatusCode);
                Assert.Contains("two-factor-required", body); // the console stays closed: no data is rendered
            }
        }
    }
}
