using Rpt.Portal.Billing;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Rpt.Portal.Alerts;
using Rpt.Portal.Components;
using Rpt.Portal.Data;
using Rpt.Portal.Ledger;
using Rpt.Portal.Plans;

namespace Rpt.Portal.Tests.Alerts;

/// <summary>
/// Alerts on a fake clock, mailed through a real SMTP listener on loopback: each threshold fires once a period,
/// in order, re-arms with the next period, and two service instances on one database send each alert once.
/// </summary>
[Trait("Kind", "Sqlite")]
public sealed class EvaluateAlertsTests : IAsyncLifetime
{
    private readonly SmtpListener _smtp = new();
    private PortalHarness _h = default!;

    public async Task InitializeAsync()
    {
        _h = await PortalHarness.StartAsync(_smtp.Settings());
        await _h.CreateTenantAsync("acme", "starter"); // 5,000 credits
        await AddUserAsync(_h, "owner@acme.test", PortalRoles.Owner);
        await AddUserAsync(_h, "member@acme.test", PortalRoles.Member);
    }

    public async Task DisposeAsync()
    {
        await _h.DisposeAsync();
        await _smtp.DisposeAsync();
    }

    private static async Task AddUserAsync(PortalHarness h, string email, string role)
    {
        using var scope = h.Services.CreateScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>();
        var user = new ApplicationUser { UserName = email, Email = email, EmailConfirmed = true, TenantId = "acme" };
        Assert.True((await users.CreateAsync(user, "Secret-123!")).Succeeded);
        Assert.True((await users.AddToRoleAsync(user, role)).Succeeded);
    }

    private async Task SpendAsync(PortalHarness h, int calls) // 30 credits a call
    {
        await h.IngestAsync("acme", Enumerable.Range(0, calls).Select(i => Events.Call($"s{h.Time.GetUtcNow().Ticks}-{i}", "gpt-4o", 100_000, 0, at: h.Time.GetUtcNow())).ToArray());
        await h.FlushAsync();
        h.Time.Advance(TimeSpan.FromSeconds(1));
    }

    private List<string> Subjects() => _smtp.Messages.Select(m => m.Subject ?? "").ToList();

    [Fact]
    public async Task AMailServerThatRefuses_DelaysTheAlertMail_ItIsRetriedOnTheSchedule_AndArrivesOnce()
    {
        _smtp.RefuseNext = 2;
        await SpendAsync(_h, 84); // 2,520 of 5,000: the 50 % rule
        Assert.Single(await _h.Get<EvaluateAlerts>().ExecuteAsync("acme"));
        Assert.Empty(_smtp.Messages); // refused at once

        var mails = _h.Get<AlertMails>();
        Assert.Equal(0, await mails.DeliverDueAsync()); // not due before 5 s
        _h.Time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(0, await mails.DeliverDueAsync()); // refused again
        _h.Time.Advance(TimeSpan.FromMinutes(4));
        Assert.Equal(0, await mails.DeliverDueAsync()); // the third attempt waits 5 min
        _h.Time.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(1, await mails.DeliverDueAsync());
        _h.Time.Advance(TimeSpan.FromHours(1));
        Assert.Equal(0, await mails.DeliverDueAsync());

        Assert.Equal(["Rpt Portal: 50 % of your credits are used"], Subjects());
        await using var db = await _h.Get<IDbContextFactory<ApplicationDbContext>>().CreateDbContextAsync();
        var attempts = await db.AlertDeliveries.Where(d => d.Channel == AlertChannels.Email).OrderBy(d => d.Id).ToListAsync();
        Assert.Equal([false, false, true], attempts.Select(a => a.Succeeded));
        Assert.All(attempts.Take(2), a => Assert.False(string.IsNullOrEmpty(a.Error)));
        Assert.Equal(AlertMailStatus.Sent, (await db.AlertMails.SingleAsync()).Status);
    }

    [Fact]
    public async Task AProjectsHardBudget_AlertsAt50_75And90PercentOfItself_OnceEach_ByEmailToOwners()
    {
        var budgets = _h.Get<Rpt.Portal.Budgets.BudgetService>();
        Assert.NotNull((await budgets.CreateAsync("acme", new("project", Project: "search", Credits: 100, Window: "day"), "owner@acme.test")).Budget);
        Assert.NotNull((await budgets.CreateAsync("acme", new("project", Project: "billing", Credits: 1_000, Window: "period", Mode: "soft"), "owner@acme.test")).Budget);
        var calls = Enumerable.Range(0, 3).Select(i =>
        {
            var e = Events.Call($"p{i}", "gpt-4o", 100_000, 0, at: _h.Time.GetUtcNow()); // 30 credits each
            e.Project = "search";
            return e;
        }).ToArray();
        await _h.IngestAsync("acme", calls);
        await _h.FlushAsync();

        var fired = await _h.Get<EvaluateAlerts>().ExecuteAsync("acme");
        Assert.Equal(3, fired.Count); // 90 of 100: 50, 75 and 90 %; the account (90 of 5,000) and the soft budget (0 of 1,000) are far from theirs
        Assert.Equal(["Rpt Portal: 50 % of a budget is used", "Rpt Portal: 75 % of a budget is used", "Rpt Portal: 90 % of a budget is used"], Subjects());
        Assert.All(_smtp.Messages, m => Assert.Equal("owner@acme.test", m.To.Mailboxes.Single().Address));
        Assert.Contains("Project search has used 90 % of its hard budget of 100 credits a day: 90 used on", _smtp.Messages.Last().TextBody);
        Assert.Contains("10 left. Past it, quota checks and new holds for it are refused", _smtp.Messages.Last().TextBody);
        Assert.Empty(await _h.Get<EvaluateAlerts>().ExecuteAsync("acme")); // once per window
    }

    [Fact]
    public async Task EachEndUsersBudget_AlertsNameTheEndUserWhoUsedMost_WithinAMinute_WhileItsHardCapRefusesAtOnce()
    {
        var budgets = _h.Get<Rpt.Portal.Budgets.BudgetService>();
        Assert.NotNull((await budgets.CreateAsync("acme", new("user", UserId: "*", Credits: 100, Window: "day"), "owner@acme.test")).Budget);
        async Task SpendAsUserAsync(string user, int calls) // 30 credits a call
        {
            await _h.IngestAsync("acme", Enumerable.Range(0, calls).Select(i =>
            {
                var e = Events.Call($"{user}-{_h.Time.GetUtcNow().Ticks}-{i}", "gpt-4o", 100_000, 0, at: _h.Time.GetUtcNow());
                e.UserId = user;
                return e;
            }).ToArray());
            await _h.FlushAsync();
        }
        var evaluate = _h.Get<EvaluateAlerts>();

        await SpendAsUserAsync("u1", 2); // 60 of 100: the 50 % share
        Assert.Single(await evaluate.ExecuteAsync("acme"));
        Assert.Contains("End user u1 (each end user's budget) has used 50 % of its hard budget of 100 credits a day: 60 used", _smtp.Messages.Last().TextBody);

        _h.Time.Advance(TimeSpan.FromSeconds(10));
        await SpendAsUserAsync("u2", 3); // 90 of 100
        // The alerts reuse who used most for up to a minute (one pass over every end user's row); the cap does not wait.
        Assert.Empty(await evaluate.ExecuteAsync("acme"));
        // What a quota check of 20 credits finds: the budgets that name the end user are read with the balance.
        async Task<Rpt.Portal.Budgets.BudgetRefusal?> CheckAsync(string user)
        {
            var lookup = budgets.Lookup("acme", null, null, user);
            Assert.True((await _h.Get<Rpt.Portal.Ledger.QuotaCheck>().ExecuteAsync("acme", 20, default, null, lookup)).Allowed);
            return budgets.Check(lookup, Rpt.Portal.Metering.Credit.ToMicro(20));
        }
        var refusal = await CheckAsync("u2");
        Assert.Contains("The hard budget of 100 credits a day for end user 'u2' (each end user's budget) is reached: 90 used", refusal!.Message);
        Assert.Null(await CheckAsync("u1"));

        _h.Time.Advance(Rpt.Portal.Budgets.BudgetService.EachUserForAlerts);
        Assert.Equal(2, (await evaluate.ExecuteAsync("acme")).Count); // 75 and 90 %, for u2
        Assert.Equal(["Rpt Portal: 50 % of a budget is used", "Rpt Portal: 75 % of a budget is used", "Rpt Portal: 90 % of a budget is used"], Subjects());
        Assert.Contains("End user u2 (each end user's budget) has used 90 % of its hard budget of 100 credits a day: 90 used", _smtp.Messages.Last().TextBody);
        Assert.Empty(await evaluate.ExecuteAsync("acme")); // once per window
    }

    [Fact]
    public async Task OneFlushCrossing50_75And90Percent_FiresEachOnce_InOrder_ByPlainEmailToOwners()
    {
        await SpendAsync(_h, 154); // 4,620 of 5,000 = 92.4 %
        var fired = await _h.Get<EvaluateAlerts>().ExecuteAsync("acme");

        Assert.Equal(3, fired.Count);
        Assert.Equal(["Rpt Portal: 50 % of your credits are used", "Rpt Portal: 75 % of your credits are used", "Rpt Portal: 90 % of your credits are used"], Subjects());
        Assert.All(_smtp.Messages, m => Assert.Equal("owner@acme.test", m.To.Mailboxes.Single().Address)); // owners, not members
        var body = _smtp.Messages.Last().TextBody;
        Assert.Contains("90 % of the credits are used: 4,620 of 5,000", body);
        Assert.Contains("380 left", body);
        Assert.Contains("See the dashboard: http://localhost:5000/", body);
        Assert.Null(_smtp.Messages.Last().HtmlBody);
        var dir = Path.Combine(Browser.BrowserFixture.RepositoryRoot(), "artifacts");
        Directory.CreateDirectory(dir);
        var m = _smtp.Messages.Last();
        await File.WriteAllTextAsync(Path.Combine(dir, "alert-mail.txt"), $"From: {m.From}\nTo: {m.To}\nSubject: {m.Subject}\nContent-Type: {m.Body?.ContentType.MimeType}\n\n{m.TextBody}");

        Assert.Empty(await _h.Get<EvaluateAlerts>().ExecuteAsync("acme")); // once a period
        await SpendAsync(_h, 5);
        Assert.Empty(await _h.Get<EvaluateAlerts>().ExecuteAsync("acme"));
        Assert.Equal(3, _smtp.Messages.Count);
        await using var db = await _h.Get<IDbContextFactory<ApplicationDbContext>>().CreateDbContextAsync();
        Assert.Equal(3, await db.AlertDeliveries.CountAsync(d => d.Succeeded));
    }

    [Fact]
    public async Task AnUpgradeThatLowersTheShare_DoesNotFireAgain_AndTheNextPeriodReArms()
    {
        await SpendAsync(_h, 90); // 2,700 = 54 %
        Assert.Single(await _h.Get<EvaluateAlerts>().ExecuteAsync("acme"));
        await _h.Get<ChangePlan>().ExecuteAsync("acme", "business"); // 100,000: 2.7 %
        await SpendAsync(_h, 1_700); // 53,700 of 100,000 = 53.7 %: past 50 % again, in the same period
        Assert.Empty(await _h.Get<EvaluateAlerts>().ExecuteAsync("acme"));
        Assert.Single(_smtp.Messages);

        _h.Time.SetUtcNow(new DateTimeOffset(2026, 5, 1, 0, 5, 0, TimeSpan.Zero));
        await _h.Get<RenewPeriods>().ExecuteAsync();
        await SpendAsync(_h, 1_700); // 51,000 of 100,000
        var fired = Assert.Single(await _h.Get<EvaluateAlerts>().ExecuteAsync("acme"));
        Assert.EndsWith(":2026-05-01", fired.Key);
        Assert.Equal(2, _smtp.Messages.Count);
    }

    [Fact]
    public async Task RunwayDays_FiresWhenTheForecastRunsOutWithinNDays()
    {
        await using (var db = await _h.Get<IDbContextFactory<ApplicationDbContext>>().CreateDbContextAsync())
        {
            db.AlertRules.Add(new AlertRule("acme", AlertKind.RunwayDays, 10, AlertChannels.Email, _h.Time.GetUtcNow()));
            await db.SaveChangesAsync();
        }
        await _h.Get<EvaluateAlerts>().RulesAsync("acme"); // the rule exists, so no defaults are added
        _h.Time.Advance(TimeSpan.FromDays(2));
        await SpendAsync(_h, 20); // 600 credits in 2 days: 300 a day, 4,400 left = 14.7 days; the period has 28 left
        Assert.Empty(await _h.Get<EvaluateAlerts>().ExecuteAsync("acme"));
        await SpendAsync(_h, 30); // 1,500 in 2 days: 750 a day, 3,500 left = 4.7 days
        var fired = Assert.Single(await _h.Get<EvaluateAlerts>().ExecuteAsync("acme"));
        Assert.Contains("the credits run out on", fired.Message);
        Assert.Equal("Rpt Portal: your credits run out soon", Assert.Single(_smtp.Messages).Subject);
    }

    [Fact]
    public async Task TwoInstancesOnOneDatabase_SendEachAlertOnce()
    {
        await using var second = await PortalHarness.StartAsync(_smtp.Settings(), directory: _h.Directory);
        await SpendAsync(_h, 154);
        var both = await Task.WhenAll(
            Task.Run(() => _h.Get<EvaluateAlerts>().ExecuteAsync("acme")),
            Task.Run(() => second.Get<EvaluateAlerts>().ExecuteAsync("acme")));

        Assert.Equal(3, both.Sum(f => f.Count));
        Assert.Equal(3, _smtp.Messages.Count);
        Assert.Equal(3, Subjects().Distinct().Count());
    }

    [Fact]
    public async Task Anomaly_AfterAQuietWeek_FiresAHintOnceADay_OnlyOnPlansWithAnomalyHints()
    {
        var alerts = _h.Get<EvaluateAlerts>();
        Assert.Equal("anomaly hints are not in the Starter plan.", (await alerts.AddRuleAsync("acme", PortalRoles.Owner, "anomaly", 3, ["email"])).Error);
        await _h.Get<ChangePlan>().ExecuteAsync("acme", "professional");
        Assert.Equal("threshold", (await alerts.AddRuleAsync("acme", PortalRoles.Owner, "anomaly", 1, ["email"])).Field);
        Assert.Equal("Only admins and owners change alerts.", (await alerts.AddRuleAsync("acme", PortalRoles.Member, "anomaly", 3, ["email"])).Error);
        Assert.NotNull((await alerts.AddRuleAsync("acme", PortalRoles.Admin, "anomaly", 3, ["email"])).Rule);

        // A steady week: 60 credits a day. Then 150 on the eighth day: 2.5× the mean, no hint.
        for (var day = 0; day < 7; day++)
        {
            await SpendAsync(_h, 2);
            Assert.Empty(await alerts.ExecuteAsync("acme"));
            _h.Time.Advance(TimeSpan.FromDays(1));
        }
        await SpendAsync(_h, 5);
        Assert.Empty(await alerts.ExecuteAsync("acme"));
        await SpendAsync(_h, 2); // 210 today: 3.5× the mean of 60
        var hint = Assert.Single(await alerts.ExecuteAsync("acme"));
        Assert.Equal("Unusual usage: 210 credits today, 3.5× the daily mean of the 7 days before (60).", hint.Message);
        await SpendAsync(_h, 10);
        Assert.Empty(await alerts.ExecuteAsync("acme")); // once a day

        // A quiet week, then 120 credits in a day.
        _h.Time.Advance(TimeSpan.FromDays(8));
        await SpendAsync(_h, 2);
        Assert.Empty(await alerts.ExecuteAsync("acme")); // 60: under the minimum of 100
        await SpendAsync(_h, 2);
        Assert.Equal("Unusual usage: 120 credits today after a quiet week (no credits used in the 7 days before).",
            Assert.Single(await alerts.ExecuteAsync("acme")).Message);
        Assert.Equal(["Rpt Portal: unusual usage today", "Rpt Portal: unusual usage today"], Subjects());
    }

    [Fact]
    public async Task ARuleMailsTheMembersChosen_AndRefusesAStranger()
    {
        var alerts = _h.Get<EvaluateAlerts>();
        var stranger = await alerts.AddRuleAsync("acme", PortalRoles.Admin, "credits_consumed", 1_000, ["email"], recipients: ["someone@else.test"]);
        Assert.Equal(("recipients", "'someone@else.test' is not a member of the account."), (stranger.Field, stranger.Error));
        var rule = (await alerts.AddRuleAsync("acme", PortalRoles.Admin, "credits_consumed", 1_000, ["email"], recipients: ["MEMBER@acme.test"])).Rule!;
        Assert.Equal(["member@acme.test"], rule.RecipientList);

        await SpendAsync(_h, 40); // 1,200 credits: 24 %, past the 1,000 of the rule, under the 50 % default
        Assert.Single(await alerts.ExecuteAsync("acme"));
        var mail = Assert.Single(_smtp.Messages);
        Assert.Equal(("member@acme.test", "Rpt Portal: 1,200 credits used"), (mail.To.Mailboxes.Single().Address, mail.Subject));
        Assert.Contains("an admin chose you for this alert", mail.TextBody);
    }

    [Fact]
    public async Task ARuleIsEdited_InPlace_TheKindStays()
    {
        var alerts = _h.Get<EvaluateAlerts>();
        var fifty = (await alerts.RulesAsync("acme")).Single(r => r.Threshold == 50);
        Assert.Equal("the kind of a rule does not change; add another rule.",
            (await alerts.AddRuleAsync("acme", PortalRoles.Admin, "credits_consumed", 40, ["email"], replaces: fifty.Id)).Error);
        var edited = (await alerts.AddRuleAsync("acme", PortalRoles.Admin, "percent_consumed", 40, ["email"], replaces: fifty.Id)).Rule!;
        Assert.Equal((fifty.Id, 40m), (edited.Id, edited.Threshold));
        Assert.Equal([40m, 75m, 90m], (await alerts.RulesAsync("acme")).Select(r => r.Threshold).Order());
        await SpendAsync(_h, 70); // 2,100 = 42 %
        Assert.Equal("Rpt Portal: 40 % of your credits are used", Assert.Single(await alerts.ExecuteAsync("acme")) is { } ? Assert.Single(_smtp.Messages).Subject : "");
    }
}
