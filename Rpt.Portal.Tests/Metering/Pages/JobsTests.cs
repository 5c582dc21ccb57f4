using Bunit;
using Rpt.Portal.Api.Pages;
using Rpt.Portal.Components;
using Rpt.Portal.Components.Shared;
using Rpt.Portal.Ledger;
using Rpt.Portal.Ledger.Pages;
using Rpt.Portal.Metering.Pages;
using Rpt.Portal.Plans;
using Rpt.Portal.Tenants.Pages;

namespace Rpt.Portal.Tests.Metering.Pages;

[Trait("Kind", "Component")]
public class JobsTests : PortalComponentTest
{
    [Fact]
    public async Task JobDetail_UnknownJob_SaysSo_AndAKnownJobExplainsEachCall()
    {
        await Harness.CreateTenantAsync("acme");
        await Harness.IngestAsync("acme", Events.Call("c1", job: "job_9"), Events.Call("c2", job: "job_9", status: "failed"));
        SignIn("acme", PortalRoles.Member);
        var missing = Render<JobDetail>(p => p.Add(j => j.JobId, "nope"));
        missing.WaitForAssertion(() => Assert.Contains("No usage was recorded for job “nope”", missing.Markup));
        var job = Render<JobDetail>(p => p.Add(j => j.JobId, "job_9"));
        job.WaitForAssertion(() => Assert.Contains("0.11088 credits", job.Find("[data-testid=job-summary]").TextContent));
        Assert.Contains("failed (free)", job.Markup);
        Assert.Contains("in $0.15 · out $0.60 · cached $0.075 per 1M tokens", job.Markup); // prices as published, to the cent at least
    }
    [Fact]
    public async Task JobDetail_ShowsTheJobsHold_BesideWhatTheJobReallyCost()
    {
        await Harness.CreateTenantAsync("acme");
        var reservations = Harness.Get<Rpt.Portal.Ledger.Reservations>();
        Assert.Equal(Rpt.Portal.Ledger.ReservationOutcome.Held, (await reservations.ReserveAsync("acme", "render-7", 500, "job_7", 3600)).Outcome);
        await Harness.IngestAsync("acme", Events.Call("h1", "gpt-4o", 100_000, 0, job: "job_7"), Events.Call("h2", "gpt-4o", 100_000, 0, job: "job_7")); // 60 credits
        await reservations.ReleaseAsync("acme", "render-7");
        SignIn("acme", PortalRoles.Member);
        var job = Render<JobDetail>(p => p.Add(j => j.JobId, "job_7"));
        job.WaitForAssertion(() => Assert.Single(job.FindAll("[data-testid=job-hold]")), TimeSpan.FromSeconds(10));
        var hold = job.Find("[data-testid=job-hold]").TextContent;
        Assert.Contains("render-7", hold);
        Assert.Contains("500 credits held, 60 used of it", hold);
        Assert.Contains("released", hold);
        Assert.Contains("The job cost 60 credits in all", job.Find("[data-testid=job-holds]").TextContent);
    }

    [Fact]
    public async Task Jobs_ListsTokenUsagePerJob_AndSaysWhenThereIsNone()
    {
        await Harness.CreateTenantAsync("acme");
        SignIn("acme", PortalRoles.Member);
        var empty = Render<Jobs>();
        empty.WaitForAssertion(() => Assert.Contains("No billed usage in this period yet.", empty.Markup));
        await Harness.IngestAsync("acme", Events.Call("j1", job: "job_big", input: 10_000, at: PortalHarness.DefaultStart),
            Events.Call("j2", job: "job_small", input: 10, at: PortalHarness.DefaultStart.AddMinutes(1)));
        var jobs = Render<Jobs>();
        jobs.WaitForAssertion(() => Assert.Contains("job_big", jobs.Markup));
        // The costliest job first; then by the start, newest first, and turned around by a second click.
        Assert.True(Before(jobs.Markup, "job_big", "job_small"), "most credits first");
        Assert.Equal("descending", jobs.Find("th:has([data-testid=sort-credits])").GetAttribute("aria-sort"));
        Assert.Contains("10,740", jobs.Markup); // 10,000 + 740 tokens
        jobs.Find("[data-testid=sort-started]").Click();
        Assert.True(Before(jobs.Markup, "job_small", "job_big"), "newest first");
        jobs.Find("[data-testid=sort-started]").Click();
        Assert.True(Before(jobs.Markup, "job_big", "job_small"), "oldest first");
        Assert.Equal("ascending", jobs.Find("th:has([data-testid=sort-started])").GetAttribute("aria-sort"));
        jobs.Find("[data-testid=sort-credits]").Click();
        jobs.Find("[data-testid=sort-credits]").Click();
        Assert.True(Before(jobs.Markup, "job_small", "job_big"), "fewest credits first");
    }

    private static bool Before(string markup, string first, string second) =>
        markup.IndexOf(first, StringComparison.Ordinal) < markup.IndexOf(second, StringComparison.Ordinal);
}
