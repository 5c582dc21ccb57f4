using System.Data.Common;
using System.Globalization;
using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Data;
using Rpt.Portal.Metering;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Budgets;

/// <summary>A budget as the API and the portal send it; every field is checked by <see cref="BudgetService.CreateAsync"/>.</summary>
public sealed record BudgetRequest(string? Scope, string? ApiKeyId = null, string? Project = null, string? UserId = null, decimal? Credits = null,
    string? Window = null, string? Mode = null, IReadOnlyList<int>? AlertAt = null);

/// <summary>A budget and its use in the window that holds <c>now</c>. For an each-end-user budget, the use is the end user's who used most.</summary>
public sealed record BudgetUse(Budget Budget, DateOnly WindowStart, DateOnly WindowEndExclusive, long UsedMicroCredits, string? TopUser, long UsersAtLimit)
{
    public long RemainingMicroCredits => Math.Max(0, Budget.MicroCredits - UsedMicroCredits);
    /// <summary>Used, in percent of the budget (may pass 100: usage is never dropped).</summary>
    public decimal Share => Budget.MicroCredits == 0 ? 0 : Math.Round(UsedMicroCredits * 100m / Budget.MicroCredits, 1);
}

/// <summary>Why a hard budget refuses: which budget, whose use, and what is left of it.</summary>
/// <param name="Subject">The key's id, the project or the end user whose use reached it.</param>
public sealed record BudgetRefusal(Guid BudgetId, string Scope, string Window, long BudgetMicroCredits, string Subject, DateOnly WindowStart,
    long UsedMicroCredits, string Message)
{
    public long RemainingMicroCredits => Math.Max(0, BudgetMicroCredits - UsedMicroCredits);
}

/// <summary>One project's, end user's or key's billed use in a report's window.</summary>
public sealed record ScopeRow(string Value, long Calls, long MicroCredits);

public sealed record BudgetResult(Budget? Budget, string? Field, string? Error, bool Conflict = false);

/// <summary>
/// Budgets below the account (docs/RULES.md, "Budgets"): creates and deletes them, reads each one's use from
/// <c>usage_scopes</c> (one row per budget, whatever the number of events or end users), and answers whether a request
/// goes past a hard budget. A budget counts billed credits of its window; holds are the account's, not a budget's.
/// </summary>
public sealed class BudgetService(IDbContextFactory<ApplicationDbContext> dbFactory, PortalDatabase database, TenantDirectory tenants, TimeProvider time)
{
    /// <summary>Budgets one tenant may have: a thousand projects and their keys, with room to spare.</summary>
    public const int MaxPerTenant = 2_000;
    /// <summary>The largest budget: a tenant's limit for one period.</summary>
    public const decimal MaxCredits = UsageLimits.MaxMicroCreditsPerTenantPeriod / Credit.MicroPerCredit;
    public const int MaxUserIdLength = 128;
    public static readonly IReadOnlyList<int> HardDefaults = [50, 75, 90];
    public static readonly IReadOnlyList<int> SoftDefaults = [100];

    public async Task<BudgetResult> CreateAsync(string tenantId, BudgetRequest r, string createdBy, CancellationToken ct = default)
    {
        string scope, subject;
        switch (r.Scope)
        {
            case UsageScope.ApiKey:
                if (!Guid.TryParseExact(r.ApiKeyId ?? "", "D", out var keyId)) return new(null, "api_key_id", $"'{Clip(r.ApiKeyId)}' is not an API key id (a UUID such as the one GET /v1/api-keys and the API keys page show).");
                await using (var db = await dbFactory.CreateDbContextAsync(ct))
                {
                    if (!await db.ApiKeys.AnyAsync(k => k.Id == keyId && k.TenantId == tenantId && k.RevokedAt == null, ct))
                        return new(null, "api_key_id", $"the account has no active API key {keyId}.");
                }
                (scope, subject) = (UsageScope.ApiKey, keyId.ToString("D"));
                break;
            case UsageScope.Project:
                if (CheckProject(r.Project, "project") is { } bad) return new(null, "project", bad);
                (scope, subject) = (UsageScope.Project, r.Project!);
                break;
            case UsageScope.User:
                if (string.IsNullOrEmpty(r.UserId)) return new(null, "user_id", "required for a user budget: an end user's id, or \"*\" for each end user.");
                if (r.UserId.Length > MaxUserIdLength) return new(null, "user_id", $"is {r.UserId.Length} characters long; at most {MaxUserIdLength} are allowed.");
                if (RateUsage.NotText(r.UserId, "user_id") is { } notText) return new(null, "user_id", notText + ".");
                (scope, subject) = (UsageScope.User, r.UserId);
                break;
            default:
                return new(null, "scope", $"'{Clip(r.Scope)}' is not one of: api_key, project, user.");
        }
        if (r.Credits is not { } credits || credits <= 0 || credits > MaxCredits || decimal.Round(credits, 6) != credits)
            return new(null, "credits", $"must be more than 0 and at most {MaxCredits:N0}, with at most 6 decimals.");
        var window = r.Window ?? UsageScope.Day;
        if (window is not (UsageScope.Day or UsageScope.Period)) return new(null, "window", $"'{Clip(window)}' is not one of: day, period.");
        var mode = r.Mode ?? Budget.Hard;
        if (mode is not (Budget.Hard or Budget.Soft)) return new(null, "mode", $"'{Clip(mode)}' is not one of: hard, soft.");
        var shares = r.AlertAt ?? (mode == Budget.Hard ? HardDefaults : SoftDefaults);
        if (shares.Count > 5 || shares.Any(s => s is < 1 or > 100) || shares.Distinct().Count() != shares.Count)
            return new(null, "alert_at", "at most 5 different percentages, each from 1 to 100 (an empty list: no alert).");

        await using var write = await dbFactory.CreateDbContextAsync(ct);
        if (await write.Budgets.CountAsync(b => b.TenantId == tenantId, ct) >= MaxPerTenant)
            return new(null, "scope", $"the account has {MaxPerTenant:N0} budgets, the most it may have; delete one first.");
        if (await write.Budgets.AnyAsync(b => b.TenantId == tenantId && b.Scope == scope && b.Subject == subject && b.Window == window, ct))
            return new(null, "scope", $"a {window} budget for this {scope.Replace('_', ' ')} exists already; delete it first to change it.", Conflict: true);
        var budget = new Budget(tenantId, scope, subject, decimal.ToInt64(credits * Credit.MicroPerCredit), window, mode,
            string.Join(',', shares.Order()), time.GetUtcNow(), createdBy);
        write.Budgets.Add(budget);
        try
        {
            await write.SaveChangesAsync(ct);
        }
        catch (DbUpdateException)
        {
            return new(null, "scope", $"a {window} budget for this {scope.Replace('_', ' ')} exists already; delete it first to change it.", Conflict: true);
        }
        return new(budget, null, null);
    }

    /// <summary>Null when the project's name is acceptable (on a budget, a key or an event), else why not.</summary>
    public static string? CheckProject(string? project, string field)
    {
        if (string.IsNullOrEmpty(project)) return $"{field} is required: the project's name.";
        if (project.Length > UsageLimits.MaxProjectLength) return $"{field} is {project.Length} characters long; at most {UsageLimits.MaxProjectLength} are allowed.";
        return RateUsage.NotText(project, field) is { } bad ? bad + "." : null;
    }

    public async Task<bool> DeleteAsync(string tenantId, Guid id, CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        return await db.Budgets.Where(b => b.Id == id && b.TenantId == tenantId).ExecuteDeleteAsync(ct) > 0;
    }

    /// <summary>The window of <paramref name="window"/> that holds <paramref name="now"/>: the UTC day, or the tenant's billing period.</summary>
    public (DateOnly Start, DateOnly EndExclusive) WindowOf(string tenantId, string window, DateTimeOffset now)
    {
        var today = DateOnly.FromDateTime(now.UtcDateTime);
        if (window == UsageScope.Day) return (today, today.AddDays(1));
        var period = tenants.TryGetAnchor(tenantId, out var anchor) ? BillingPeriod.Containing(anchor, today) : new BillingPeriod(today, today.AddDays(1));
        return (period.Start, period.EndExclusive);
    }

    /// <summary>How long the figures of an each-end-user budget (who used most, how many are at the budget) are reused.</summary>
    public static readonly TimeSpan EachUserFor = TimeSpan.FromSeconds(5);

    /// <summary>How old those figures may be when the alerts are evaluated (on every flush, every 5 s by default): an
    /// each-end-user budget's alert fires at most this long after its end user crossed the share (docs/RULES.md, "Budgets").</summary>
    public static readonly TimeSpan EachUserForAlerts = TimeSpan.FromSeconds(60);

    private readonly System.Collections.Concurrent.ConcurrentDictionary<(string, Guid, DateOnly), (DateTimeOffset At, string? Top, long Micro, long AtLimit)> _eachUser = new();

    /// <summary>
    /// Who used most of a window, with what, and how many end users are at or past <c>@limit</c>: one pass over the end users'
    /// rows of the period (those whose last day is today, for a day's window), not one to sort and another to count.
    /// </summary>
    internal const string EachUserSql = """
        SELECT value, used, SUM(CASE WHEN used >= @limit THEN 1 ELSE 0 END) OVER () FROM (
          SELECT value, {0} AS used FROM usage_scopes WHERE tenant_id = @t AND scope = 'user' AND period_start = @p{1}) u
        ORDER BY used DESC, value LIMIT 1
        """;

    private async Task<(string? Top, long Micro, long AtLimit)> EachUserAsync(string tenantId, DateOnly period, DateOnly? today, long limit, CancellationToken ct)
    {
        await using var connection = database.Open();
        await using var cmd = connection.Command(today is null ? string.Format(EachUserSql, "micro_credits", "") : string.Format(EachUserSql, "day_micro_credits", " AND last_day = @today"))
            .With("t", tenantId).With("p", period).With("limit", limit);
        if (today is { } day) cmd.With("today", day);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct) ? (r.GetString(0), r.GetInt64(1), Convert.ToInt64(r.GetValue(2), CultureInfo.InvariantCulture)) : (null, 0, 0);
    }

    /// <summary>
    /// Every budget of a tenant with what its window holds of the <c>usage_scopes</c> row it counts (none for each end user's),
    /// in the order they were created: one statement, a keyed lookup per budget. The lookup is a subquery, not a join: joined,
    /// PostgreSQL may plan a hash join over every row of the period (100,000 end users), not 1,000 lookups.
    /// </summary>
    internal const string ListSql = """
        SELECT b.id, b.scope, b.subject, b.micro_credits, b.window_kind, b.mode, b.alert_at, b.created_at, b.created_by,
               COALESCE((SELECT CASE WHEN b.window_kind = @day THEN CASE WHEN s.last_day = @today THEN s.day_micro_credits ELSE 0 END
                                     ELSE s.micro_credits END
                         FROM usage_scopes s WHERE s.tenant_id = b.tenant_id AND s.scope = b.scope AND s.period_start = @p AND s.value = b.subject), 0)
        FROM budgets b
        WHERE b.tenant_id = @t{0}
        ORDER BY b.created_at, b.scope, b.subject, b.window_kind
        """;

    /// <summary>Every budget of the tenant with its use now, in the order they were created (<see cref="ListSql"/>), and for each
    /// end user's budget the end user who used most and how many are at the budget (<see cref="EachUserSql"/>).</summary>
    /// <param name="eachUserFor">How old a figure of an each-end-user budget may be; <see cref="EachUserFor"/> when not given.</param>
    /// <param name="only">One budget of the tenant (the answer to its creation), found by its subject and window, which are unique;
    /// all of them when not given.</param>
    public async Task<IReadOnlyList<BudgetUse>> ListAsync(string tenantId, CancellationToken ct = default, TimeSpan? eachUserFor = null, Budget? only = null)
    {
        var now = time.GetUtcNow();
        var today = DateOnly.FromDateTime(now.UtcDateTime);
        var (period, _) = WindowOf(tenantId, UsageScope.Period, now);
        var budgets = new List<(Budget Budget, long Used)>();
        await using (var connection = database.Open())
        await using (var cmd = connection.Command(string.Format(CultureInfo.InvariantCulture, ListSql, only is null ? "" : " AND b.scope = @scope AND b.subject = @subject AND b.window_kind = @window"))
                         .With("t", tenantId).With("p", period).With("day", UsageScope.Day).With("today", today))
        {
            if (only is not null) cmd.With("scope", only.Scope).With("subject", only.Subject).With("window", only.Window);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
                budgets.Add((Budget.Stored(r.GetFieldValue<Guid>(0), tenantId, r.GetString(1), r.GetString(2), r.GetInt64(3), r.GetString(4), r.GetString(5),
                        r.GetString(6), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(7)), r.GetString(8)), r.GetInt64(9)));
        }
        var uses = new List<BudgetUse>(budgets.Count);
        foreach (var (b, stored) in budgets)
        {
            var (start, end) = WindowOf(tenantId, b.Window, now);
            if (b.Subject == Budget.EachUser && b.Scope == UsageScope.User)
            {
                // Finding who used most reads every end user's row of the period: kept a while, so that the Budgets page, the
                // API (EachUserFor) and the alerts, evaluated on every flush (EachUserForAlerts), do not read it on each call.
                var cacheKey = (tenantId, b.Id, start);
                if (_eachUser.TryGetValue(cacheKey, out var cached) && now - cached.At < (eachUserFor ?? EachUserFor))
                {
                    uses.Add(new BudgetUse(b, start, end, cached.Micro, cached.Top, cached.AtLimit));
                    continue;
                }
                var (top, topMicro, atLimit) = await EachUserAsync(tenantId, period, b.Window == UsageScope.Day ? today : null, b.MicroCredits, ct);
                if (_eachUser.Count > 10_000) _eachUser.Clear();
                _eachUser[cacheKey] = (now, top, topMicro, atLimit);
                uses.Add(new BudgetUse(b, start, end, topMicro, top, atLimit));
            }
            else
            {
                uses.Add(new BudgetUse(b, start, end, stored, null, stored >= b.MicroCredits ? 1 : 0));
            }
        }
        return uses;
    }

    /// <summary>What a budget's window holds of a <c>usage_scopes</c> row: the period's credits, or today's while today is
    /// the row's last day (an earlier last day means nothing today).</summary>
    private static long Used(string window, DateOnly today, DateOnly? lastDay, long dayMicro, long periodMicro) =>
        window == UsageScope.Day ? (lastDay == today ? dayMicro : 0) : periodMicro;

    /// <summary>The hard budgets that name a request, to be read in another read's command (the quota check reads them with the balance).</summary>
    public HardBudgetLookup Lookup(string tenantId, Guid? apiKeyId, string? project, string? userId)
    {
        var now = time.GetUtcNow();
        return new HardBudgetLookup(tenantId, apiKeyId, project, userId, now, WindowOf(tenantId, UsageScope.Period, now).Start);
    }

    /// <summary>
    /// The first hard budget a request of <paramref name="estimateMicro"/> would go past (its use plus the estimate above it,
    /// or none left), of those the lookup read for the request's key, project and end user; null when none does. The lookup
    /// is one statement (<see cref="HardBudgetsSql"/>) read in the balance's command; a refusal is worded from what it read.
    /// </summary>
    public BudgetRefusal? Check(HardBudgetLookup lookup, long estimateMicro)
    {
        var today = DateOnly.FromDateTime(lookup.Now.UtcDateTime);
        foreach (var x in lookup.Found.OrderBy(x => x.Scope, StringComparer.Ordinal).ThenBy(x => x.Window, StringComparer.Ordinal))
        {
            var used = Used(x.Window, today, x.LastDay, x.DayMicro, x.PeriodMicro);
            if (used < x.MicroCredits && checked(used + estimateMicro) <= x.MicroCredits) continue;
            // Past a budget: the lookup's row words the answer (a capped key takes this path on every check; no context, no second read).
            var (start, _) = WindowOf(lookup.TenantId, x.Window, lookup.Now);
            var what = x.Scope switch
            {
                UsageScope.ApiKey => $"API key {x.Counted}",
                UsageScope.Project => $"project '{x.Counted}'",
                _ => x.Subject == Budget.EachUser ? $"end user '{x.Counted}' (each end user's budget)" : $"end user '{x.Counted}'",
            };
            var window = x.Window == UsageScope.Day ? $"today ({start:yyyy-MM-dd} UTC)" : $"this billing period (from {start:yyyy-MM-dd})";
            return new BudgetRefusal(x.Id, x.Scope, x.Window, x.MicroCredits, x.Counted, start, used,
                $"The hard budget of {Credit.Format(x.MicroCredits)} credits a {x.Window} for {what} is reached: {Credit.Format(used)} used {window}, "
                + $"{Credit.Format(Math.Max(0, x.MicroCredits - used))} left, {Credit.Format(estimateMicro)} asked. Usage already sent is still recorded and billed.");
        }
        return null;
    }

    /// <summary>
    /// The hard budgets that name a request's key, project and end user (or each end user), each beside the
    /// <c>usage_scopes</c> row it counts: four branches, each a keyed lookup of the budgets' unique index on its
    /// leading columns (tenant, scope, subject) and one of the usage row's key. The branches are written out rather than
    /// joined from a list of what was asked: joined, PostgreSQL planned the budgets as the outer side whenever its
    /// statistics put the tenant's budgets at one row (just after they were created, or in a cached generic plan), and
    /// read every budget of the tenant per check (1,009 budgets: 1,007 buffers, 3 ms on an idle cluster). Written out,
    /// every branch has its key's columns as constants or parameters, which no estimate makes a scan. An absent subject
    /// is sent as the empty text, which no budget names (every subject is checked to be non-empty). Its parameters are
    /// named apart from the balance's, whose batch it rides in for the quota check.
    /// </summary>
    internal static readonly string HardBudgetsSql = string.Join("\nUNION ALL\n",
        new[] { ("api_key", "@k", "@k"), ("project", "@j", "@j"), ("user", "@u", "@u"), ("user", "@each", "@u") }.Select(x => $"""
            SELECT b.id, b.scope, b.window_kind, b.micro_credits, {x.Item3}, s.last_day, s.day_micro_credits, s.micro_credits, b.subject
            FROM budgets b
            LEFT JOIN usage_scopes s ON s.tenant_id = @bt AND s.scope = '{x.Item1}' AND s.period_start = @bp AND s.value = {x.Item3}
            WHERE b.tenant_id = @bt AND b.scope = '{x.Item1}' AND b.subject = {x.Item2} AND b.mode = 'hard'
            """)) + ";";

    /// <param name="Subject">What the budget names: <see cref="Counted"/>, or <see cref="Budget.EachUser"/> for each end user's budget.</param>
    internal sealed record HardBudget(Guid Id, string Scope, string Window, long MicroCredits, string Counted, DateOnly? LastDay, long DayMicro, long PeriodMicro,
        string Subject);

    /// <summary>The hard budgets that name one request, with their use, as <see cref="HardBudgetsSql"/> reads them (one statement, no context).</summary>
    public sealed class HardBudgetLookup(string tenantId, Guid? apiKeyId, string? project, string? userId, DateTimeOffset now, DateOnly period) : IBatchedRead
    {
        public string TenantId => tenantId;
        public DateTimeOffset Now => now;
        internal List<HardBudget> Found { get; } = [];

        public string Sql => HardBudgetsSql;

        public void Bind(DbCommand cmd) => cmd
            .With("bt", tenantId).With("bp", period)
            .With("k", apiKeyId?.ToString("D") ?? "").With("j", project ?? "").With("u", userId ?? "")
            .With("each", userId is null ? "" : Budget.EachUser);

        public void Read(DbDataReader r)
        {
            while (r.Read())
                Found.Add(new HardBudget(r.GetFieldValue<Guid>(0), r.GetString(1), r.GetString(2), r.GetInt64(3), r.GetString(4),
                    r.IsDBNull(5) ? null : r.GetDate(5), r.IsDBNull(6) ? 0 : r.GetInt64(6), r.IsDBNull(7) ? 0 : r.GetInt64(7), r.GetString(8)));
        }
    }

    /// <summary>The most rows one report page holds.</summary>
    public const int MaxReportRows = 1_000;

    /// <summary>
    /// Billed use per project, end user or API key in the billing period that starts on <paramref name="periodStart"/>, or
    /// (<paramref name="window"/> day) today, most credits first, at most <paramref name="limit"/> rows: one index range of
    /// <c>usage_scopes</c>, however many events made it.
    /// </summary>
    public async Task<IReadOnlyList<ScopeRow>> ReportAsync(string tenantId, string scope, string window, DateOnly periodStart, int limit,
        CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var rows = db.UsageScopes.AsNoTracking().Where(s => s.TenantId == tenantId && s.Scope == scope && s.PeriodStart == periodStart);
        if (window == UsageScope.Day)
        {
            var today = DateOnly.FromDateTime(time.GetUtcNow().UtcDateTime);
            return await rows.Where(s => s.LastDay == today).OrderByDescending(s => s.DayMicroCredits).ThenBy(s => s.Value).Take(limit)
                .Select(s => new ScopeRow(s.Value, s.DayCalls, s.DayMicroCredits)).ToListAsync(ct);
        }
        return await rows.OrderByDescending(s => s.MicroCredits).ThenBy(s => s.Value).Take(limit)
            .Select(s => new ScopeRow(s.Value, s.Calls, s.MicroCredits)).ToListAsync(ct);
    }

    /// <summary>Every row of a window, by value, for the CSV download (streamed: 100,000 end users are 100,000 rows, never a list in memory).</summary>
    public async IAsyncEnumerable<ScopeRow> StreamAsync(string tenantId, string scope, string window, DateOnly periodStart,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var today = DateOnly.FromDateTime(time.GetUtcNow().UtcDateTime);
        var rows = db.UsageScopes.AsNoTracking().Where(s => s.TenantId == tenantId && s.Scope == scope && s.PeriodStart == periodStart);
        if (window == UsageScope.Day) rows = rows.Where(s => s.LastDay == today);
        await foreach (var row in rows.OrderBy(s => s.Value).AsAsyncEnumerable().WithCancellation(ct))
            yield return window == UsageScope.Day ? new ScopeRow(row.Value, row.DayCalls, row.DayMicroCredits) : new ScopeRow(row.Value, row.Calls, row.MicroCredits);
    }

    private static string Clip(string? s) => s is null ? "" : s.Length > 40 ? s[..40] + "…" : s;

    internal static string Day(DateOnly d) => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
}
