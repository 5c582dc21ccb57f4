using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Data;

using Rpt.Portal.Plans;

namespace Rpt.Portal.Tenants;

public static class PlanQueries
{
    /// <summary>The plan a tenant is on (one indexed join); null for an unknown tenant.</summary>
    public static Task<Plan?> PlanOfAsync(this ApplicationDbContext db, string tenantId, CancellationToken ct = default) =>
        db.Tenants.Where(t => t.Id == tenantId).Join(db.Plans, t => t.PlanCode, p => p.Code, (t, p) => p).AsNoTracking().FirstOrDefaultAsync(ct);
}
