using Microsoft.AspNetCore.Identity;

namespace Rpt.Portal.Data;

/// <summary>A person who signs in to the portal; belongs to exactly one tenant.</summary>
public class ApplicationUser : IdentityUser
{
    public string? TenantId { get; set; }

    /// <summary>Who invited this person (their email), for the invitation page; null for whoever registered.</summary>
    [PersonalData]
    public string? InvitedBy { get; set; }
}
