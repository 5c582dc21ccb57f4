using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Data;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Tests.Metering;

[Trait("Kind", "Sqlite")]
public class UsageReportsTests
{
    /// <summary>Calls are listed a page at a time without an index of their own: both plans the store chooses between
    /// list the same calls, newest first, for a tenant dense among all calls and for one that is rare.</summary>
    [Fact]
    public async Task Calls_PageByPage_BothPlansListTheSameCallsNewestFirst()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("big");
        await h.CreateTenantAsync("small");
        for (var i = 0; i < 300; i++)
        {
            await h.IngestAsync("big", Events.Call($"b{i}", model: i % 2 == 0 ? "gpt-4o" : "gpt-4o-mini", job: $"job_{i % 7}"));
            if (i % 60 == 0) await h.IngestAsync("small", Events.Call($"s{i}", job: "only"));
        }
        var reports = h.Get<UsageReports>();
        foreach (var (tenant, filter) in new[] { ("big", new UsageFilter()), ("big", new UsageFilter(Model: "gpt-4o")), ("big", new UsageFilter(JobId: "job_3")),
            ("small", new UsageFilter()), ("small", new UsageFilter(JobId: "only")) })
        {
            var expected = Seqs(h, tenant, filter);
            foreach (var (matching, stored) in new[] { (1L, 1_000_000L), (1_000_000L, 1L) }) // force each plan
            {
                await using var db = await h.Get<IDbContextFactory<ApplicationDbContext>>().CreateDbContextAsync();
                var listed = new List<long>();
                long? before = null;
                while (true)
                {
                    var (sql, args) = h.Get<IUsageStore>().CallsQuery(tenant, matching, stored, 25, true, filter.From, filter.To, filter.Model, filter.Feature, filter.JobId, before, null, 26);
                    var page = await db.UsageEvents.FromSqlRaw(sql, args).AsNoTracking().ToListAsync();
                    listed.AddRange(page.Take(25).Select(e => e.Seq));
                    if (page.Count <= 25) break;
                    before = page[24].Seq;
                }
                Assert.Equal(expected, listed);
            }
            // And through the report, which picks the plan itself.
            var all = new List<long>();
            long? cursor = null;
            do
            {
                var page = await reports.CallsAsync(tenant, filter, cursor, 25);
                all.AddRange(page.Items.Select(e => e.Seq));
                cursor = page.NextCursor is { } c ? long.Parse(c) : null;
            } while (cursor is not null);
            Assert.Equal(expected, all);
        }
        Assert.Equal(150, (await reports.CallsAsync("big", new UsageFilter(Model: "gpt-4o"), null, 25)).Total);
    }

    private static List<long> Seqs(PortalHarness h, string tenant, UsageFilter f)
    {
        using var c = h.OpenDb();
        using var cmd = c.Command("SELECT seq FROM usage_events WHERE tenant_id = @t" + (f.Model is null ? "" : " AND model = @m")
            + (f.JobId is null ? "" : " AND job_id = @j") + " ORDER BY seq DESC").With("t", tenant).With("m", f.Model).With("j", f.JobId);
        using var r = cmd.ExecuteReader();
        var list = new List<long>();
        while (r.Read()) list.Add(r.GetInt64(0));
        return list;
    }

    /// <summary>The Jobs page's four orders, a page at a time through the cursor: every job once, in order, ties broken alike.</summary>
    [Theory]
    [InlineData(JobOrder.MostCredits)]
    [InlineData(JobOrder.FewestCredits)]
    [InlineData(JobOrder.Newest)]
    [InlineData(JobOrder.Oldest)]
    public async Task Jobs_PageByPage_InEachOrder_ListEveryJobOnceInOrder(JobOrder order)
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme");
        // 40 jobs of 1 to 5 calls (many ties in credits), started five seconds apart.
        for (var j = 0; j < 40; j++)
            for (var c = 0; c <= j % 5; c++)
                await h.IngestAsync("acme", Events.Call($"j{j}c{c}", job: $"job_{j:00}", at: PortalHarness.DefaultStart.AddSeconds(j * 5 + c)));
        var reports = h.Get<UsageReports>();
        var period = (PortalHarness.DefaultStart, PortalHarness.DefaultStart.AddDays(28));
        var listed = new List<TokenUsageGroup>();
        string? cursor = null;
        for (var page = 1; page < 20; page++)
        {
            var groups = reports.Tokens("acme", TokenGrouping.Job, period.Item1, period.Item2, page, 7, cursor, order).Groups;
            listed.AddRange(groups.Items);
            cursor = groups.NextCursor;
            if (cursor is null) break;
        }
        Assert.Equal(40, listed.Count);
        Assert.Equal(40, listed.Select(g => g.Key).Distinct().Count());
        var keys = order switch
        {
            JobOrder.MostCredits => listed.Select(g => (double)-g.MicroCredits),
            JobOrder.FewestCredits => listed.Select(g => (double)g.MicroCredits),
            JobOrder.Newest => listed.Select(g => (double)-g.FirstAt!.Value.ToUnixTimeMilliseconds()),
            _ => listed.Select(g => (double)g.FirstAt!.Value.ToUnixTimeMilliseconds()),
        };
        Assert.Equal(keys.Order(), keys);
    }
}
