using System.Security.Claims;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;
using Rpt.Portal.Data;

namespace Rpt.Portal.Tenants;

/// <summary>Puts the user's tenant into the sign-in cookie, so pages know whose ledger to read.</summary>
public sealed class PortalClaimsFactory(UserManager<ApplicationUser> users, RoleManager<IdentityRole> roles, IOptions<IdentityOptions> options)
    : UserClaimsPrincipalFactory<ApplicationUser, IdentityRole>(users, roles, options)
{
    public const string TenantClaim = "rpt:tenant";

    protected override async Task<ClaimsIdentity> GenerateClaimsAsync(ApplicationUser user)
    {
        var identity = await base.GenerateClaimsAsync(user);
        if (user.TenantId is not null) identity.AddClaim(new Claim(TenantClaim, user.TenantId));
        return identity;
    }
}

public static class PortalRoles
{
    public const string Member = "Member";
    public const string Owner = "Owner";
    public const string Admin = "Admin";
    public const string Operator = "Operator";
    public static readonly string[] All = [Member, Owner, Admin, Operator];

    public static string? TenantId(this ClaimsPrincipal user) => user.FindFirst(PortalClaimsFactory.TenantClaim)?.Value;
    public static bool CanManageKeys(this ClaimsPrincipal user) => user.IsInRole(Owner);

    /// <summary>The highest of the user's roles within the tenant.</summary>
    public static string TenantRole(this ClaimsPrincipal user) =>
        user.IsInRole(Owner) ? Owner : user.IsInRole(Admin) ? Admin : Member;
}
