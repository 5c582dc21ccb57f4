using System.ComponentModel.DataAnnotations;
using System.Globalization;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Rpt.Portal.Mail;
using Rpt.Portal.Data;
using Rpt.Portal.Ledger;
using Rpt.Portal.Plans;
using Rpt.Portal.Tenants;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Alerts;

/// <summary>Rpt:Alerts.</summary>
public sealed class AlertOptions
{
    /// <summary>Where the links in alert mail point.</summary>
    [Required(ErrorMessage = "Rpt:Alerts:PortalUrl is required."), Url(ErrorMessage = "Rpt:Alerts:PortalUrl must be an absolute URL.")]
    public string PortalUrl { get; set; } = "http://localhost:5000/";
}

/// <summary>
/// Evaluates a tenant's alert rules against its balance (O(1) running totals) when the balance moves — a flush,
/// a grant, a plan change — never by polling every tenant. A rule fires at most once per billing period: the
/// firing is inserted under a unique key before anything is sent, so a restart, a replay or a second instance on
/// the same database never sends it twice; the next period re-arms it. Rules crossed by one flush fire in the
/// order of their thresholds. Every tenant starts with the defaults: 50, 75 and 90 % consumed, by email to owners.
/// </summary>
public sealed class EvaluateAlerts(IDbContextFactory<ApplicationDbContext> dbFactory, GetBalance balances, Metering.UsageReports reports, IServiceScopeFactory scopes,
    AlertMails alertMails, Webhooks webhooks, IOptions<AlertOptions> options, TimeProvider time, TenantChanges changes, Observability.PortalMetrics metrics,
    Budgets.BudgetService budgets)
{
    public async Task<IReadOnlyList<AlertFiring>> ExecuteAsync(string tenantId, CancellationToken ct = default)
    {
        var rules = await RulesAsync(tenantId, ct);
        var balance = balances.Execute(tenantId);
        if (balance is null) return [];
        var now = time.GetUtcNow();
        var fired = new List<AlertFiring>();
        await BudgetAlertsAsync(tenantId, balance, now, fired, ct);
        bool? anomalyHints = null;
        foreach (var rule in rules.Where(r => r.Enabled).OrderBy(r => r.Kind).ThenBy(r => r.Kind == AlertKind.CreditsRemaining || r.Kind == AlertKind.RunwayDays ? -r.Threshold : r.Threshold))
        {
            string? message;
            var once = balance.Period.Start.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
            if (rule.Kind == AlertKind.Anomaly)
            {
                anomalyHints ??= await PlanAllowsAsync(tenantId, "anomaly_hints", ct);
                message = anomalyHints.Value ? Anomalous(rule, tenantId, now) : null;
                once = DateOnly.FromDateTime(now.UtcDateTime).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture); // a hint a day at most
            }
            else
            {
                message = Crossed(rule, balance, now);
            }
            if (message is null) continue;
            var firing = new AlertFiring($"{tenantId}:{rule.Id}:{once}", tenantId, rule.Id, balance.Period.Start, message, now);
            await using var db = await dbFactory.CreateDbContextAsync(ct);
            var inserted = await db.Database.ExecuteSqlInterpolatedAsync($"""
                INSERT INTO alert_firings (key, tenant_id, rule_id, period_start, message, fired_at)
                VALUES ({firing.Key}, {firing.TenantId}, {firing.RuleId}, {firing.PeriodStart},
                        {firing.Message}, {now.ToUnixTimeMilliseconds()})
                ON CONFLICT (key) DO NOTHING
                """, ct);
            if (inserted == 0) continue; // fired already this period, here or in another instance
            fired.Add(firing);
            metrics.AlertsFired.Add(1, new KeyValuePair<string, object?>("kind", Ledger.EnumText.ToText(rule.Kind)));
            await DeliverAsync(rule, firing, balance, ct);
        }
        if (fired.Count > 0) changes.Publish(TenantChange.AlertFired, tenantId);
        return fired;
    }

    /// <summary>
    /// A budget's alerts (docs/RULES.md, "Budgets"): each share of its <c>alert_at</c> fires once per window, when the budget's use
    /// reaches it (for each end user's budget, when the end user who used most does), by email to the owners and the
    /// <c>budget.threshold</c> webhook; inserted under a unique key first, like every alert, so it is never sent twice.
    /// </summary>
    private async Task BudgetAlertsAsync(string tenantId, Balance balance, DateTimeOffset now, List<AlertFiring> fired, CancellationToken ct)
    {
        var uses = await budgets.ListAsync(tenantId, ct, Budgets.BudgetService.EachUserForAlerts);
        List<string>? owners = null; // read once, when the first budget alert fires
        foreach (var use in uses)
        {
            var b = use.Budget;
            foreach (var share in b.AlertShares.Where(s => use.UsedMicroCredits * 100m >= b.MicroCredits * (decimal)s).Order())
            {
                var key = $"{tenantId}:budget:{b.Id:N}:{Budgets.BudgetService.Day(use.WindowStart)}:{share}";
                var who = b.Scope switch
                {
                    Metering.UsageScope.ApiKey => $"API key {b.Subject}",
                    Metering.UsageScope.Project => $"Project {b.Subject}",
                    _ => b.Subject == Budgets.Budget.EachUser ? $"End user {use.TopUser} (each end user's budget)" : $"End user {b.Subject}",
                };
                var window = b.Window == Metering.UsageScope.Day ? $"on {use.WindowStart:d MMM yyyy} (UTC)" : $"in the period from {use.WindowStart:d MMM yyyy}";
                var message = $"{who} has used {share} % of its {b.Mode} budget of {Credit.Format(b.MicroCredits)} credits a {b.Window}: "
                    + $"{Credit.Format(use.UsedMicroCredits)} used {window}, {Credit.Format(use.RemainingMicroCredits)} left."
                    + (b.IsHard ? " Past it, quota checks and new holds for it are refused; usage already sent is still billed." : "");
                await using var db = await dbFactory.CreateDbContextAsync(ct);
                var inserted = await db.Database.ExecuteSqlInterpolatedAsync($"""
                    INSERT INTO alert_firings (key, tenant_id, rule_id, period_start, message, fired_at)
                    VALUES ({key}, {tenantId}, {0L}, {balance.Period.Start}, {message}, {now.ToUnixTimeMilliseconds()})
                    ON CONFLICT (key) DO NOTHING
                    """, ct);
                if (inserted == 0) continue;
                var firing = new AlertFiring(key, tenantId, 0, balance.Period.Start, message, now);
                fired.Add(firing);
                metrics.AlertsFired.Add(1, new KeyValuePair<string, object?>("kind", "budget"));
                if (await PlanAllowsAsync(tenantId, "webhook_alerts", ct))
                    await webhooks.EnqueueAsync(tenantId, "budget.threshold", new
                    {
                        alert_id = key,
                        budget = new { id = b.Id, scope = b.Scope, subject = b.Subject, credits = Credit.ToCredits(b.MicroCredits), window = b.Window, mode = b.Mode },
                        share,
                        end_user = b.Subject == Budgets.Budget.EachUser ? use.TopUser : null,
                        window_start = use.WindowStart,
                        used = Credit.ToCredits(use.UsedMicroCredits),
                        remaining = Credit.ToCredits(use.RemainingMicroCredits),
                        message,
                    }, ct);
                owners ??= await RecipientsAsync(tenantId, []);
                var body = $"""
                    {message}

                    See and change budgets on the Budgets page: {new Uri(new Uri(options.Value.PortalUrl), "/budgets")}
                    You receive this because you own the account.
                    """;
                await alertMails.EnqueueAsync(owners.Select(to => new AlertMail(key, tenantId, to, $"Rpt Portal: {share} % of a budget is used", body, now)).ToList(), ct);
            }
        }
    }

    /// <summary>The chosen members who are still members; the owners when none were chosen.</summary>
    private async Task<List<string>> RecipientsAsync(string tenantId, IReadOnlyList<string> chosen)
    {
        using var scope = scopes.CreateScope();
        var members = await scope.ServiceProvider.GetRequiredService<TeamMembers>().ListAsync(tenantId);
        return chosen.Count > 0
            ? members.Where(m => chosen.Contains(m.Email, StringComparer.OrdinalIgnoreCase)).Select(m => m.Email).ToList()
            : members.Where(m => m.Role == PortalRoles.Owner).Select(m => m.Email).ToList();
    }

    /// <summary>Below this, a day's consumption is never an anomaly, whatever the baseline (a quiet week makes any use look large).</summary>
    public const long AnomalyMinimumCredits = 100;

    /// <summary>Today (UTC, from the daily rollups) against the mean of the 7 days before it.</summary>
    private string? Anomalous(AlertRule rule, string tenantId, DateTimeOffset now)
    {
        var today = DateOnly.FromDateTime(now.UtcDateTime);
        var from = new DateTimeOffset(today.AddDays(-7).ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);
        var (byModel, _) = reports.DailyByModelAndFeature(tenantId, from, from.AddDays(8));
        var perDay = byModel.GroupBy(d => d.Day).ToDictionary(g => g.Key, g => g.Sum(d => d.MicroCredits));
        var todayCredits = Credit.FloorCredits(perDay.GetValueOrDefault(today));
        var baseline = Enumerable.Range(1, 7).Sum(i => perDay.GetValueOrDefault(today.AddDays(-i))) / 7m / Credit.MicroPerCredit;
        if (todayCredits < AnomalyMinimumCredits || todayCredits <= baseline * rule.Threshold) return null;
        return baseline == 0
            ? $"Unusual usage: {todayCredits:N0} credits today after a quiet week (no credits used in the 7 days before)."
            : $"Unusual usage: {todayCredits:N0} credits today, {todayCredits / baseline:0.#}× the daily mean of the 7 days before ({baseline:N0}).";
    }

    private async Task<bool> PlanAllowsAsync(string tenantId, string entitlement, CancellationToken ct)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        return (await db.PlanOfAsync(tenantId, ct))?.Allows(entitlement) == true;
    }

    /// <summary>What the rule says when the balance is past it; null while it is not.</summary>
    internal static string? Crossed(AlertRule rule, Balance b, DateTimeOffset now)
    {
        var period = $"in the period {b.Period.Start:d MMM} to {b.Period.End:d MMM}";
        switch (rule.Kind)
        {
            case AlertKind.PercentConsumed when !b.Unlimited && b.PercentConsumed >= rule.Threshold:
                return $"{rule.Threshold:0.##} % of the credits are used: {b.Consumed:N0} of {b.Allocated:N0} {period}, {b.Remaining:N0} left.";
            case AlertKind.CreditsRemaining when !b.Unlimited && b.Remaining <= rule.Threshold:
                return $"{b.Remaining:N0} credits are left, at or under the {rule.Threshold:N0} you set ({b.Consumed:N0} of {b.Allocated:N0} used {period}).";
            case AlertKind.CreditsConsumed when b.Consumed >= rule.Threshold:
                return $"{b.Consumed:N0} credits are used {period}, past the {rule.Threshold:N0} you set.";
            case AlertKind.RunwayDays when !b.Unlimited:
                var f = Forecast.Of(b, now);
                if (f.RunOutAt is { } at && f.RunsOutBeforePeriodEnd && at - now <= TimeSpan.FromDays((double)rule.Threshold))
                    return $"At {f.CreditsPerDay:N0} credits a day, the credits run out on {at:d MMM} ({Math.Max(0, (at - now).TotalDays):0.#} days), before the period ends on {b.Period.End:d MMM}.";
                return null;
            default:
                return null;
        }
    }

    private async Task DeliverAsync(AlertRule rule, AlertFiring firing, Balance balance, CancellationToken ct)
    {
        if (rule.Channels.HasFlag(AlertChannels.Webhook))
        {
            if (await PlanAllowsAsync(firing.TenantId, "webhook_alerts", ct))
                await webhooks.EnqueueAsync(firing.TenantId, rule.Kind == AlertKind.CreditsRemaining ? "credits.low" : "alert.triggered", new
                {
                    alert_id = firing.Key,
                    rule = new { id = rule.Id, kind = EnumText.ToText(rule.Kind), threshold = rule.Threshold },
                    message = firing.Message,
                    billing_period = new { start = balance.Period.Start, end = balance.Period.End },
                    credits = new { allocated = balance.Allocated, consumed = balance.Consumed, remaining = balance.Remaining, unlimited = balance.Unlimited },
                }, ct);
        }
        if (!rule.Channels.HasFlag(AlertChannels.Email)) return;
        var owners = await RecipientsAsync(firing.TenantId, rule.RecipientList);
        var dashboard = new Uri(new Uri(options.Value.PortalUrl), "/").ToString();
        var subject = rule.Kind switch
        {
            AlertKind.PercentConsumed => $"Rpt Portal: {rule.Threshold:0.##} % of your credits are used",
            AlertKind.CreditsRemaining => $"Rpt Portal: {balance.Remaining:N0} credits left",
            AlertKind.CreditsConsumed => $"Rpt Portal: {balance.Consumed:N0} credits used",
            AlertKind.Anomaly => "Rpt Portal: unusual usage today",
            _ => "Rpt Portal: your credits run out soon",
        };
        var body = $"""
            {firing.Message}

            Plan: {balance.PlanCode}. Billing period: {balance.Period.Start:d MMM yyyy} to {balance.Period.End:d MMM yyyy}.
            Allocated {balance.Allocated?.ToString("N0") ?? "unlimited"} · consumed {balance.Consumed:N0} · remaining {balance.Remaining?.ToString("N0") ?? "unlimited"}.

            See the dashboard: {dashboard}
            You receive this because {(rule.RecipientList.Count > 0 ? "an admin chose you for this alert" : "you own the account")}; admins change alerts on the Alerts page.
            """;
        var now = time.GetUtcNow();
        await alertMails.EnqueueAsync(owners.Select(to => new AlertMail(firing.Key, firing.TenantId, to, subject, body, now)).ToList(), ct);
    }

    public const int MaxRulesPerTenant = 50;
    public const int MaxRecipients = 20;

    public sealed record RuleResult(AlertRule? Rule, string? Field, string? Error);

    /// <summary>
    /// Adds a rule after checking every value (the portal and the API share it): kind, threshold (percent 1–1000,
    /// days 1–366, credits 0–10^12, at most 2 decimals), channels (webhook only on plans with webhook alerts).
    /// <paramref name="role"/> is the portal user's; null for an API key with the admin scope.
    /// </summary>
    public async Task<RuleResult> AddRuleAsync(string tenantId, string? role, string? kindText, decimal? threshold, IReadOnlyList<string>? channelNames,
        CancellationToken ct = default, IReadOnlyList<string>? recipients = null, long? replaces = null)
    {
        if (role is not null && role is not (PortalRoles.Owner or PortalRoles.Admin)) return new(null, "role", "Only admins and owners change alerts.");
        if (!EnumText.TryParse<AlertKind>(kindText, out var kind))
            return new(null, "kind", $"'{kindText}' is not one of: percent_consumed, credits_remaining, credits_consumed, runway_days, anomaly.");
        var (min, max) = kind switch
        {
            AlertKind.PercentConsumed => (1m, 1_000m),
            AlertKind.RunwayDays => (1m, 366m),
            AlertKind.Anomaly => (1.5m, 100m),
            _ => (0m, 1_000_000_000_000m),
        };
        if (threshold is not { } t || t < min || t > max || decimal.Round(t, 2) != t)
            return new(null, "threshold", $"must be a number from {min:N0} to {max:N0} with at most 2 decimals.");
        var channels = AlertChannels.None;
        foreach (var c in channelNames ?? ["email"])
        {
            channels |= c switch
            {
                "email" => AlertChannels.Email,
                "webhook" => AlertChannels.Webhook,
                _ => AlertChannels.None,
            };
            if (c is not ("email" or "webhook")) return new(null, "channels", $"'{c}' is not one of: email, webhook.");
        }
        if (channels == AlertChannels.None) return new(null, "channels", "at least one of: email, webhook.");
        if (recipients is { Count: > 0 })
        {
            if (recipients.Count > MaxRecipients) return new(null, "recipients", $"at most {MaxRecipients} members.");
            List<string> members;
            using (var scope = scopes.CreateScope())
                members = (await scope.ServiceProvider.GetRequiredService<TeamMembers>().ListAsync(tenantId)).Select(m => m.Email).ToList();
            var stranger = recipients.FirstOrDefault(r => !members.Contains(r, StringComparer.OrdinalIgnoreCase));
            if (stranger is not null) return new(null, "recipients", $"'{stranger}' is not a member of the account.");
            recipients = recipients.Select(r => members.First(m => string.Equals(m, r, StringComparison.OrdinalIgnoreCase))).Distinct().ToList();
        }
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var plan = await db.PlanOfAsync(tenantId, ct) ?? throw new KeyNotFoundException($"unknown tenant '{tenantId}'");
        if (kind == AlertKind.Anomaly && !plan.Allows("anomaly_hints"))
            return new(null, "kind", $"anomaly hints are not in the {plan.Name} plan.");
        if (channels.HasFlag(AlertChannels.Webhook) && !plan.Allows("webhook_alerts"))
            return new(null, "channels", $"webhook alerts are not in the {plan.Name} plan.");
        await RulesAsync(tenantId, ct); // the defaults first, so that a new rule never replaces them
        if (replaces is { } id)
        {
            // An edit keeps the rule (and so its firing of this period): the kind stays, threshold, channels and recipients change.
            var existing = await db.AlertRules.FirstOrDefaultAsync(r => r.Id == id && r.TenantId == tenantId && r.Enabled, ct);
            if (existing is null) return new(null, "id", $"there is no rule {id}.");
            if (existing.Kind != kind) return new(null, "kind", "the kind of a rule does not change; add another rule.");
            existing.Change(t, channels, recipients);
            await db.SaveChangesAsync(ct);
            return new(existing, null, null);
        }
        if (await db.AlertRules.CountAsync(r => r.TenantId == tenantId && r.Enabled, ct) >= MaxRulesPerTenant)
            return new(null, "kind", $"at most {MaxRulesPerTenant} rules per account.");
        var rule = new AlertRule(tenantId, kind, t, channels, time.GetUtcNow(), recipients);
        db.AlertRules.Add(rule);
        await db.SaveChangesAsync(ct);
        return new(rule, null, null);
    }

    /// <summary>Disables a rule (kept: its firings still name it); false when the tenant has no such enabled rule.</summary>
    public async Task<bool> DisableRuleAsync(string tenantId, string? role, long ruleId, CancellationToken ct = default)
    {
        if (role is not null && role is not (PortalRoles.Owner or PortalRoles.Admin)) return false;
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var rule = await db.AlertRules.FirstOrDefaultAsync(r => r.Id == ruleId && r.TenantId == tenantId && r.Enabled, ct);
        if (rule is null) return false;
        rule.Disable();
        await db.SaveChangesAsync(ct);
        return true;
    }

    /// <summary>Sends what the rule would say now, marked as a test, over its channels; records no firing.</summary>
    public async Task<string> TestSendAsync(string tenantId, long ruleId, CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var rule = await db.AlertRules.AsNoTracking().FirstOrDefaultAsync(r => r.Id == ruleId && r.TenantId == tenantId, ct);
        var balance = balances.Execute(tenantId);
        if (rule is null || balance is null) return "There is no such rule.";
        var now = time.GetUtcNow();
        var firing = new AlertFiring($"test:{tenantId}:{rule.Id}:{now.ToUnixTimeMilliseconds()}", tenantId, rule.Id, balance.Period.Start,
            "TEST — " + (Crossed(rule, balance, now) ?? $"this rule has not fired; it would say so when the balance passes {rule.Threshold:0.##}."), now);
        await DeliverAsync(rule, firing, balance, ct);
        return "A test was sent over the rule's channels; see the delivery history.";
    }

    /// <summary>The firings of the tenant, newest first, with how many the user has not seen.</summary>
    public async Task<(IReadOnlyList<AlertFiring> Firings, int Unseen)> FiringsAsync(string tenantId, string? userId, int take = 50, CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var firings = await db.AlertFirings.AsNoTracking().Where(f => f.TenantId == tenantId).OrderByDescending(f => f.FiredAt).Take(take).ToListAsync(ct);
        var seen = userId is null ? null : await db.AlertSeen.AsNoTracking().Where(s => s.UserId == userId).Select(s => (DateTimeOffset?)s.SeenAt).FirstOrDefaultAsync(ct);
        var unseen = await db.AlertFirings.CountAsync(f => f.TenantId == tenantId && (seen == null || f.FiredAt > seen), ct);
        return (firings, unseen);
    }

    public async Task MarkSeenAsync(string userId, CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var seen = await db.AlertSeen.FirstOrDefaultAsync(s => s.UserId == userId, ct);
        if (seen is null) db.AlertSeen.Add(new AlertSeen(userId, time.GetUtcNow()));
        else seen.Seen(time.GetUtcNow());
        await db.SaveChangesAsync(ct);
    }

    /// <summary>The tenant's rules; the defaults are written the first time a tenant is evaluated (new and existing tenants alike).</summary>
    public async Task<IReadOnlyList<AlertRule>> RulesAsync(string tenantId, CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var rules = await db.AlertRules.AsNoTracking().Where(r => r.TenantId == tenantId).ToListAsync(ct);
        if (rules.Count > 0 || !await db.Tenants.AnyAsync(t => t.Id == tenantId, ct)) return rules;
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        await TenantLock.TakeAsync(db, tenantId, ct); // two instances evaluating the same new tenant write its defaults once
        if (await db.AlertRules.AnyAsync(r => r.TenantId == tenantId, ct)) return await db.AlertRules.AsNoTracking().Where(r => r.TenantId == tenantId).ToListAsync(ct);
        foreach (var p in AlertDefaults.PercentThresholds)
            db.AlertRules.Add(new AlertRule(tenantId, AlertKind.PercentConsumed, p, AlertChannels.Email, time.GetUtcNow()));
        await db.SaveChangesAsync(ct);
        await tx.CommitAsync(ct);
        return await db.AlertRules.AsNoTracking().Where(r => r.TenantId == tenantId).ToListAsync(ct);
    }
}

/// <summary>Evaluates alerts for the tenants whose balance moved; one tenant's failure is logged and never stops another.</summary>
public sealed class AlertMonitor(TenantChanges changes, EvaluateAlerts evaluate, ILogger<AlertMonitor> logger) : IHostedService
{
    private IDisposable? _subscription;
    private readonly SemaphoreSlim _gate = new(1, 1);

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _subscription = changes.SubscribeAll(async (change, tenants) =>
        {
            if (change is not (TenantChange.UsageFlushed or TenantChange.GrantChanged or TenantChange.PlanChanged)) return;
            await _gate.WaitAsync();
            try
            {
                foreach (var tenant in tenants)
                {
                    try
                    {
                        await evaluate.ExecuteAsync(tenant);
                    }
                    catch (Exception ex) when (ex is not OperationCanceledException)
                    {
                        logger.LogWarning(ex, "Evaluating the alerts of {Tenant} failed; its next balance change retries", tenant);
                    }
                }
            }
            finally
            {
                _gate.Release();
            }
        });
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _subscription?.Dispose();
        return Task.CompletedTask;
    }
}

public static class AlertsExtensions
{
    public static IHostApplicationBuilder AddAlerts(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<AlertOptions>().BindConfiguration("Rpt:Alerts").ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<EvaluateAlerts>();
        builder.Services.AddHostedService<AlertMonitor>();
        builder.Services.AddOptions<WebhookOptions>().BindConfiguration("Rpt:Webhooks");
        builder.Services.AddSingleton<WebhookAddresses>();
        builder.Services.AddHttpClient("webhooks").ConfigurePrimaryHttpMessageHandler(sp =>
            WebhookAddresses.Handler(sp.GetRequiredService<WebhookAddresses>(), sp.GetRequiredService<IOptions<WebhookOptions>>()));
        builder.Services.AddSingleton<Webhooks>();
        builder.Services.AddSingleton<AlertMails>();
        builder.Services.AddHostedService<AlertMailDispatcher>();
        builder.Services.AddHostedService<WebhookDispatcher>();
        return builder;
    }
}
