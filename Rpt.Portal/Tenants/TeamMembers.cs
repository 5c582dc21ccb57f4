using Rpt.Portal.Plans;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Data;

namespace Rpt.Portal.Tenants;

public sealed record TeamMember(string UserId, string Email, string Role, bool Invited);

public sealed record TeamResult(bool Succeeded, string? Error = null)
{
    public static readonly TeamResult Ok = new(true);
    public static TeamResult Fail(string error) => new(false, error);
}

/// <summary>
/// The people of a tenant. Owners and Admins invite members by email (the invitation is a link to choose a
/// password, which also proves the address) and change roles; only an Owner makes another Owner, and
/// nobody changes their own role. The plan's team_seats entitlement caps the team.
/// </summary>
public sealed class TeamMembers(UserManager<ApplicationUser> users, IDbContextFactory<ApplicationDbContext> dbFactory,
    Mail.PortalEmailSender mail)
{
    public static readonly string[] TenantRoles = [PortalRoles.Member, PortalRoles.Admin, PortalRoles.Owner];

    public async Task<IReadOnlyList<TeamMember>> ListAsync(string tenantId)
    {
        var list = new List<TeamMember>();
        foreach (var u in await users.Users.Where(u => u.TenantId == tenantId).OrderBy(u => u.Email).ToListAsync())
        {
            var roles = await users.GetRolesAsync(u);
            list.Add(new TeamMember(u.Id, u.Email ?? u.UserName ?? "", TenantRoles.Reverse().FirstOrDefault(roles.Contains) ?? PortalRoles.Member,
                !await users.HasPasswordAsync(u)));
        }
        return list;
    }

    /// <param name="joinPageUrl">The absolute address of the page that takes the invitation (Account/Join).</param>
    /// <param name="inviter">The email of whoever invites, named in the invitation.</param>
    public async Task<TeamResult> InviteAsync(string tenantId, string actorRole, string email, string role, string joinPageUrl, string? inviter = null)
    {
        if (actorRole is not (PortalRoles.Owner or PortalRoles.Admin)) return TeamResult.Fail("Only an owner or an admin can invite members.");
        if (!TenantRoles.Contains(role)) return TeamResult.Fail($"'{role}' is not one of: {string.Join(", ", TenantRoles)}.");
        if (role == PortalRoles.Owner && actorRole != PortalRoles.Owner) return TeamResult.Fail("Only an owner can make another owner.");
        email = email.Trim();
        if (!new System.ComponentModel.DataAnnotations.EmailAddressAttribute().IsValid(email)) return TeamResult.Fail($"'{email}' is not an email address.");
        if (await users.FindByEmailAsync(email) is not null) return TeamResult.Fail($"{email} already has an Rpt Portal account.");

        var seats = await SeatsAsync(tenantId);
        var members = await users.Users.CountAsync(u => u.TenantId == tenantId);
        if (seats is { } max && members >= max)
            return TeamResult.Fail($"The plan has {max} seat{(max == 1 ? "" : "s")}, all taken. Upgrade the plan to add members.");

        var user = new ApplicationUser { UserName = email, Email = email, EmailConfirmed = true, TenantId = tenantId, InvitedBy = inviter };
        var created = await users.CreateAsync(user);
        if (!created.Succeeded) return TeamResult.Fail(string.Join(" ", created.Errors.Select(e => e.Description)));
        await users.AddToRoleAsync(user, role);
        await SendInvitationAsync(tenantId, user, role, joinPageUrl);
        return TeamResult.Ok;
    }

    /// <summary>Sends a member who has not joined yet a fresh invitation (the earlier link keeps working until it expires).</summary>
    public async Task<TeamResult> ResendInvitationAsync(string tenantId, string actorRole, string userId, string joinPageUrl)
    {
        if (actorRole is not (PortalRoles.Owner or PortalRoles.Admin)) return TeamResult.Fail("Only an owner or an admin can invite members.");
        var user = await users.FindByIdAsync(userId);
        if (user is null || user.TenantId != tenantId) return TeamResult.Fail("No such member.");
        if (await users.HasPasswordAsync(user)) return TeamResult.Fail($"{user.Email} has joined already.");
        var roles = await users.GetRolesAsync(user);
        await SendInvitationAsync(tenantId, user, TenantRoles.Reverse().FirstOrDefault(roles.Contains) ?? PortalRoles.Member, joinPageUrl);
        return TeamResult.Ok;
    }

    private async Task SendInvitationAsync(string tenantId, ApplicationUser user, string role, string joinPageUrl)
    {
        var code = Tenants.AccountCodes.Encode(await users.GenerateUserTokenAsync(user,
            Tenants.InvitationTokenProvider.ProviderName, Tenants.InvitationTokenProvider.Purpose));
        var link = Microsoft.AspNetCore.WebUtilities.QueryHelpers.AddQueryString(joinPageUrl, new Dictionary<string, string?> { ["userId"] = user.Id, ["code"] = code });
        await using var db = await dbFactory.CreateDbContextAsync();
        var organisation = await db.Tenants.Where(t => t.Id == tenantId).Select(t => t.Name).FirstAsync();
        var inviter = user.InvitedBy ?? $"The {organisation} team";
        await mail.SendTextAsync(user.Email!, $"{inviter} invited you to {organisation} on Rpt Portal", InvitationText(organisation, inviter, role, link));
    }

    /// <summary>
    /// An invitation names the organisation and who invites, and says what the link does, so that it does not
    /// read as a password reset nobody asked for.
    /// </summary>
    internal static string InvitationText(string organisation, string inviter, string role, string link) =>
        $"""
        {inviter} invited you to join {organisation} on Rpt Portal as {(role == PortalRoles.Admin ? "an admin" : role == PortalRoles.Owner ? "an owner" : "a member")}.

        Rpt Portal shows {organisation}'s AI usage and credits. To join, choose your password here:

        {link}

        The link works once, for {InvitationTokenProvider.Lifetime.TotalDays:0} days. If you did not expect this invitation, ignore this email: nothing happens without the link.
        """;

    public async Task<TeamResult> ChangeRoleAsync(string tenantId, string actorUserId, string actorRole, string userId, string role)
    {
        if (actorRole is not (PortalRoles.Owner or PortalRoles.Admin)) return TeamResult.Fail("Only an owner or an admin can change roles.");
        if (userId == actorUserId) return TeamResult.Fail("You cannot change your own role.");
        if (!TenantRoles.Contains(role)) return TeamResult.Fail($"'{role}' is not one of: {string.Join(", ", TenantRoles)}.");
        var user = await users.FindByIdAsync(userId);
        if (user is null || user.TenantId != tenantId) return TeamResult.Fail("No such member.");
        var current = await users.GetRolesAsync(user);
        if (actorRole != PortalRoles.Owner && (role == PortalRoles.Owner || current.Contains(PortalRoles.Owner)))
            return TeamResult.Fail("Only an owner can make or unmake an owner.");
        await users.RemoveFromRolesAsync(user, current.Where(TenantRoles.Contains));
        await users.AddToRoleAsync(user, role);
        await users.UpdateSecurityStampAsync(user); // the member's sessions pick up the new role
        return TeamResult.Ok;
    }

    private async Task<long?> SeatsAsync(string tenantId)
    {
        await using var db = await dbFactory.CreateDbContextAsync();
        var plan = await db.PlanOfAsync(tenantId);
        if (plan is null || plan.Unlimited) return null;
        return plan.Entitlement("team_seats") is { } e && long.TryParse(e.Value, out var n) ? n : null;
    }
}
