using System.Globalization;
using Microsoft.AspNetCore.Http.HttpResults;
using Rpt.Portal.Api;
using Rpt.Portal.Metering;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Budgets;

/// <param name="Subject">The key's id, the project, the end user's id, or "*" (each end user).</param>
/// <param name="Used">Billed credits in the current window (for "*", the end user who used most, <c>top_user</c>).</param>
/// <param name="UsersAtLimit">For "*": how many end users are at or past the budget in the window.</param>
public sealed record BudgetDto(Guid Id, string Scope, string? ApiKeyId, string? Project, string? UserId, decimal Credits, string Window, string Mode,
    IReadOnlyList<int> AlertAt, decimal Used, decimal Remaining, decimal Share, DateOnly WindowStart, DateOnly WindowEnd, string? TopUser, long UsersAtLimit,
    DateTimeOffset CreatedAt)
{
    public static BudgetDto Of(BudgetUse u) => new(u.Budget.Id, u.Budget.Scope,
        u.Budget.Scope == UsageScope.ApiKey ? u.Budget.Subject : null, u.Budget.Scope == UsageScope.Project ? u.Budget.Subject : null,
        u.Budget.Scope == UsageScope.User ? u.Budget.Subject : null, Credit.ToCredits(u.Budget.MicroCredits), u.Budget.Window, u.Budget.Mode,
        u.Budget.AlertShares, Credit.ToCredits(u.UsedMicroCredits), Credit.ToCredits(u.RemainingMicroCredits), u.Share, u.WindowStart,
        u.WindowEndExclusive.AddDays(-1), u.TopUser, u.UsersAtLimit, u.Budget.CreatedAt);
}

/// <param name="Value">The project, the end user's id or the API key's id.</param>
public sealed record UsageGroupRow(string Value, long Calls, decimal Credits, long MicroCredits);
public sealed record UsageGroupsResponse(string GroupBy, string Window, DateOnly WindowStart, DateOnly WindowEnd, IReadOnlyList<UsageGroupRow> Rows);

/// <summary>Budgets (key scope <c>admin</c>) and billed use by project, end user or key (scope <c>read</c>): docs/RULES.md, "Budgets".</summary>
public static class BudgetsApi
{
    public static void MapBudgetsApi(this IEndpointRouteBuilder app)
    {
        var admin = app.MapGroup("/v1/budgets").WithTags("Budgets").RequireApiKey(ApiScopes.Admin).RateLimitedPerKey();
        admin.MapGet("", List).WithName("ListBudgets").WithSummary("The account's budgets, each with its use in the current window");
        admin.MapPost("", Create).WithName("CreateBudget").WithSummary("Add a budget for an API key, a project or an end user")
            .Produces<BudgetDto>(StatusCodes.Status201Created).ProducesValidationProblem().ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
            .WithDescription("scope api_key (api_key_id), project (project) or user (user_id; \"*\" applies to each end user on its own); credits (up to 6 decimals); window day (UTC) or period (the billing period); mode hard (the quota check and reservations refuse past it; usage already sent is still recorded and billed) or soft (alerts only); alert_at: percentages of the budget, 50/75/90 for hard and 100 for soft by default. One budget per subject and window.");
        admin.MapDelete("/{id:guid}", Delete).WithName("DeleteBudget").WithSummary("Delete a budget").ProducesProblem(StatusCodes.Status404NotFound);

        var read = app.MapGroup("/v1/usage").WithTags("Usage").RequireApiKey(ApiScopes.Read).RateLimitedPerKey();
        read.MapGet("/groups", Groups).WithName("GetUsageGroups")
            .WithSummary("Billed credits and calls per project, end user or API key, in a UTC day or a billing period")
            .WithDescription("group_by: project, user or api_key; window: period (default: the billing period that holds day, yyyy-MM-dd, today by default) or day (today, UTC; the use of earlier days is kept by period only). Most credits first, at most limit rows (1–1,000, default 100). The portal's Budgets page downloads every row as CSV.");
    }

    public static async Task<Ok<IReadOnlyList<BudgetDto>>> List(HttpContext http, BudgetService budgets, CancellationToken ct) =>
        TypedResults.Ok<IReadOnlyList<BudgetDto>>((await budgets.ListAsync(http.Caller().TenantId!, ct)).Select(BudgetDto.Of).ToList());

    public static async Task<IResult> Create(HttpContext http, BudgetService budgets, BudgetRequest request, CancellationToken ct)
    {
        var caller = http.Caller();
        var result = await budgets.CreateAsync(caller.TenantId!, request, $"api key {caller.KeyId:D}", ct);
        if (result.Conflict) return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Conflict", detail: result.Error);
        if (result.Budget is null) return TypedResults.ValidationProblem(new Dictionary<string, string[]> { [result.Field!] = [result.Error!] });
        var use = (await budgets.ListAsync(caller.TenantId!, ct, only: result.Budget)).Single();
        return TypedResults.Json(BudgetDto.Of(use), statusCode: StatusCodes.Status201Created);
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> Delete(HttpContext http, BudgetService budgets, Guid id, CancellationToken ct) =>
        await budgets.DeleteAsync(http.Caller().TenantId!, id, ct) ? TypedResults.NoContent()
            : TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Not found", detail: $"the account has no budget {id}.");

    public static async Task<Results<Ok<UsageGroupsResponse>, ValidationProblem>> Groups(HttpContext http, BudgetService budgets, TimeProvider time,
        string? group_by, string? window, string? day, int? limit, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>();
        var (scope, windowKind, start, end, periodStart) = Parse(errors, http.Caller().TenantId!, budgets, time, group_by, window, day);
        if (limit is < 1 or > BudgetService.MaxReportRows) errors["limit"] = [$"must be from 1 to {BudgetService.MaxReportRows:N0}."];
        if (errors.Count > 0) return TypedResults.ValidationProblem(errors);
        var rows = await budgets.ReportAsync(http.Caller().TenantId!, scope!, windowKind!, periodStart, limit ?? 100, ct);
        return TypedResults.Ok(new UsageGroupsResponse(group_by!, windowKind!, start, end.AddDays(-1),
            rows.Select(r => new UsageGroupRow(r.Value, r.Calls, Credit.ToCredits(r.MicroCredits), r.MicroCredits)).ToList()));
    }

    /// <summary>Checks a report's group_by, window and day (the API and the CSV download share it); answers the window's first day and its end.</summary>
    public static (string? Scope, string? Window, DateOnly Start, DateOnly EndExclusive, DateOnly PeriodStart) Parse(Dictionary<string, string[]> errors, string tenantId,
        BudgetService budgets, TimeProvider time, string? groupBy, string? window, string? day)
    {
        string? scope = groupBy switch
        {
            "project" => UsageScope.Project,
            "user" => UsageScope.User,
            "api_key" => UsageScope.ApiKey,
            _ => null,
        };
        if (scope is null) errors["group_by"] = [$"'{Clip(groupBy)}' is not one of: project, user, api_key."];
        window ??= UsageScope.Period;
        if (window is not (UsageScope.Day or UsageScope.Period)) errors["window"] = [$"'{Clip(window)}' is not one of: period, day."];
        var at = time.GetUtcNow();
        if (day is not null)
        {
            if (!DateOnly.TryParseExact(day, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var d))
                errors["day"] = [$"'{Clip(day)}' is not a date of the form yyyy-MM-dd."];
            else if (window == UsageScope.Day && d != DateOnly.FromDateTime(at.UtcDateTime))
                errors["day"] = [$"a day's use by {Clip(groupBy)} is kept for today only ({at:yyyy-MM-dd}); ask window=period for the period that holds {Clip(day)}."];
            else at = new DateTimeOffset(d.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);
        }
        if (errors.Count > 0) return (null, null, default, default, default);
        var (start, end) = budgets.WindowOf(tenantId, window, at);
        return (scope, window, start, end, budgets.WindowOf(tenantId, UsageScope.Period, at).Start);
    }

    private static string Clip(string? s) => s is null ? "" : s.Length > 40 ? s[..40] + "…" : s;
}
