using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;
using Rpt.Portal.Components;
using Rpt.Portal.Data;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Tests.Tenants;

[Trait("Kind", "Sqlite")]
public class TeamMembersTests : IAsyncLifetime
{
    private PortalHarness _h = default!;
    private IServiceScope _scope = default!;
    private TeamMembers Team => _scope.ServiceProvider.GetRequiredService<TeamMembers>();
    private UserManager<ApplicationUser> Users => _scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>();
    private const string ResetPage = "http://localhost/Account/ResetPassword";

    public async Task InitializeAsync()
    {
        _h = await PortalHarness.StartAsync();
        _scope = _h.Services.CreateScope();
    }

    public async Task DisposeAsync()
    {
        _scope.Dispose();
        await _h.DisposeAsync();
    }

    [Fact]
    public async Task Invite_ByAnAdmin_CreatesAMemberOfTheTenantWithTheRole()
    {
        await _h.CreateTenantAsync("acme", "starter");
        var result = await Team.InviteAsync("acme", PortalRoles.Admin, "new@acme.test", PortalRoles.Member, ResetPage);
        Assert.True(result.Succeeded, result.Error);
        var user = await Users.FindByEmailAsync("new@acme.test");
        Assert.Equal("acme", user!.TenantId);
        Assert.True(await Users.IsInRoleAsync(user, PortalRoles.Member));
        Assert.Equal([new TeamMember(user.Id, "new@acme.test", PortalRoles.Member, Invited: true)], await Team.ListAsync("acme"));
    }

    [Fact]
    public async Task Invite_ByAMember_OrAnAdminMakingAnOwner_IsRefused()
    {
        await _h.CreateTenantAsync("acme", "starter");
        Assert.Equal("Only an owner or an admin can invite members.", (await Team.InviteAsync("acme", PortalRoles.Member, "x@acme.test", PortalRoles.Member, ResetPage)).Error);
        Assert.Equal("Only an owner can make another owner.", (await Team.InviteAsync("acme", PortalRoles.Admin, "x@acme.test", PortalRoles.Owner, ResetPage)).Error);
        Assert.Null(await Users.FindByEmailAsync("x@acme.test"));
    }

    [Fact]
    public async Task Invite_BeyondThePlansSeats_IsRefusedNamingTheLimit()
    {
        await _h.CreateTenantAsync("acme", "free"); // 1 seat
        Assert.True((await Team.InviteAsync("acme", PortalRoles.Owner, "first@acme.test", PortalRoles.Member, ResetPage)).Succeeded);
        var second = await Team.InviteAsync("acme", PortalRoles.Owner, "second@acme.test", PortalRoles.Member, ResetPage);
        Assert.Equal("The plan has 1 seat, all taken. Upgrade the plan to add members.", second.Error);
    }

    [Fact]
    public async Task ChangeRole_ByAnOwner_Works_ButNobodyChangesTheirOwnRole()
    {
        await _h.CreateTenantAsync("acme", "business");
        await Team.InviteAsync("acme", PortalRoles.Owner, "a@acme.test", PortalRoles.Member, ResetPage);
        await Team.InviteAsync("acme", PortalRoles.Owner, "b@acme.test", PortalRoles.Member, ResetPage);
        var a = await Users.FindByEmailAsync("a@acme.test");
        var b = await Users.FindByEmailAsync("b@acme.test");
        Assert.True((await Team.ChangeRoleAsync("acme", b!.Id, PortalRoles.Owner, a!.Id, PortalRoles.Admin)).Succeeded);
        Assert.True(await Users.IsInRoleAsync(await Users.FindByIdAsync(a.Id) ?? a, PortalRoles.Admin));
        Assert.False(await Users.IsInRoleAsync(await Users.FindByIdAsync(a.Id) ?? a, PortalRoles.Member));
        Assert.Equal("You cannot change your own role.", (await Team.ChangeRoleAsync("acme", a.Id, PortalRoles.Admin, a.Id, PortalRoles.Owner)).Error);
        Assert.Equal("No such member.", (await Team.ChangeRoleAsync("globex", b.Id, PortalRoles.Owner, a.Id, PortalRoles.Member)).Error);
    }
}
