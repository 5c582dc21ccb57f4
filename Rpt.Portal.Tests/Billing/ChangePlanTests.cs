using Rpt.Portal.Billing;
using Rpt.Portal.Ledger;
using Rpt.Portal.Plans;

namespace Rpt.Portal.Tests.Billing;

[Trait("Kind", "Sqlite")]
public class ChangePlanTests
{
    /// <summary>The plan and its grant are one transaction: before, the plan was saved first, a failed grant left the
    /// tenant upgraded without its credits, and a retry saw the plan already changed and never granted.</summary>
    [Fact]
    public async Task Upgrade_GrantFails_NothingChanges_AndARetryUpgradesAndGrants()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme", "starter");
        h.FailInserts("ledger_entries", "NEW.source = 'plan_change'");

        await Assert.ThrowsAnyAsync<Exception>(() => h.Get<ChangePlan>().ExecuteAsync("acme", "professional"));
        Assert.Equal("starter", h.Balance("acme").PlanCode);
        Assert.Equal(5_000, h.Balance("acme").Allocated);

        h.StopFailingInserts("ledger_entries");
        var retry = await h.Get<ChangePlan>().ExecuteAsync("acme", "professional");
        Assert.True(retry.Changed);
        Assert.Equal(20_000, retry.GrantedCredits);
        Assert.Equal(("professional", 25_000L), (h.Balance("acme").PlanCode, h.Balance("acme").Allocated!.Value));
    }
}
