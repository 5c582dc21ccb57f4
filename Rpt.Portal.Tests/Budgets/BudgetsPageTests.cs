using Bunit;
using Rpt.Portal.Budgets;
using Rpt.Portal.Budgets.Pages;
using Rpt.Portal.Components.Shared;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Tests.Budgets;

[Trait("Kind", "Component")]
public class BudgetsPageTests : PortalComponentTest
{
    private async Task SpendAsync(string project, string user, int calls)
    {
        var events = Enumerable.Range(0, calls).Select(i =>
        {
            var e = Events.Call($"{project}-{user}-{i}-{Guid.NewGuid():N}", model: "gpt-4o", input: 100_000, output: 0); // 30 credits
            e.Project = project;
            e.UserId = user;
            return e;
        }).ToArray();
        Assert.Equal(calls, (await Harness.IngestAsync("acme", events)).Accepted);
    }

    // The page follows the tenant's changes live (a commit of usage re-renders it), so each find and its click or change
    // run in one turn of the renderer: a re-render between them would leave the click on a handler that is gone.
    [Fact]
    public async Task AnAdminAddsAProjectBudget_SeesItsGaugeFillWithTheProjectsUse_AndTheUseByProjectAndUser_ThenDeletesIt()
    {
        await Harness.CreateTenantAsync("acme");
        SignIn("acme", PortalRoles.Admin);
        var page = Render<BudgetsPage>();
        page.WaitForAssertion(() => Assert.Single(page.FindAll("[data-testid=no-budgets]")), TimeSpan.FromSeconds(10));

        await page.InvokeAsync(() => page.Find("input[data-testid=budget-subject]").Change("search"));
        await page.InvokeAsync(() => page.Find("input[data-testid=budget-credits]").Change("200"));
        await page.InvokeAsync(() => page.Find("button[data-testid=add-budget]").Click());
        page.WaitForAssertion(() => Assert.Contains("Added: Project search, 200 credits a day, hard.", page.Find("[data-testid=budget-message]").TextContent), TimeSpan.FromSeconds(10));

        await SpendAsync("search", "u_1", 4);  // 120 credits
        await SpendAsync("search", "u_2", 1);  // 30
        await SpendAsync("billing", "u_2", 2); // 60, another project
        page = Render<BudgetsPage>(); // a fresh visit reads the use
        page.WaitForAssertion(() => Assert.Contains("150 used (75 %) · 50 left", page.Find("[data-testid=budget-use]").TextContent), TimeSpan.FromSeconds(10));
        Assert.Contains("75", page.Find("[data-testid=budget-gauge]").OuterHtml);
        var byProject = page.Find("[data-testid=use-by-project] tbody").TextContent;
        Assert.True(byProject.IndexOf("search", StringComparison.Ordinal) < byProject.IndexOf("billing", StringComparison.Ordinal), byProject);
        Assert.Contains("150", byProject);
        Assert.Contains("u_1", page.Find("[data-testid=use-by-user] tbody").TextContent);
        Assert.Equal("portal/usage-groups.csv?group_by=user", page.Find("[data-testid=csv-user]").GetAttribute("href"));

        // A bad value is refused with the field named, and nothing is added.
        await page.InvokeAsync(() => page.Find("input[data-testid=budget-credits]").Change("0"));
        await page.InvokeAsync(() => page.Find("input[data-testid=budget-subject]").Change("other"));
        await page.InvokeAsync(() => page.Find("button[data-testid=add-budget]").Click());
        page.WaitForAssertion(() => Assert.Contains("Credits: must be more than 0", page.Find("[data-testid=budget-message]").TextContent), TimeSpan.FromSeconds(10));
        Assert.Single(page.FindAll("[data-testid=budget]"));

        await page.InvokeAsync(() => page.FindAll("button").Single(b => b.GetAttribute("aria-label") == "Delete the budget for Project search").Click());
        page.WaitForAssertion(() => Assert.Single(page.FindAll("[data-testid=no-budgets]")), TimeSpan.FromSeconds(10));
        Assert.Empty(await Harness.Get<BudgetService>().ListAsync("acme"));
    }

    [Fact]
    public async Task AMember_SeesTheBudgetsAndTheirGauges_ButCannotChangeThem()
    {
        await Harness.CreateTenantAsync("acme");
        var created = await Harness.Get<BudgetService>().CreateAsync("acme", new BudgetRequest("user", UserId: "*", Credits: 50, Window: "day"), "owner@acme.test");
        Assert.NotNull(created.Budget);
        await SpendAsync("search", "u_9", 2); // 60 of each end user's 50
        SignIn("acme", PortalRoles.Member);
        var page = Render<BudgetsPage>();
        page.WaitForAssertion(() => Assert.Single(page.FindAll("[data-testid=budget]")), TimeSpan.FromSeconds(10));
        Assert.Single(page.FindAll("[data-testid=budgets-read-only]"));
        Assert.Contains("Each end user", page.Markup);
        Assert.Contains("Most: u_9. At or past the budget: 1 end user(s).", page.Markup);
        Assert.Contains("60 used (120 %) · 0 left", page.Find("[data-testid=budget-use]").TextContent);
        Assert.Empty(page.FindAll("button[data-testid=add-budget]"));
        Assert.DoesNotContain(page.FindAll("button"), b => b.TextContent.Trim() == "Delete");
    }
}
