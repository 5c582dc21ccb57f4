using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Data;
using Rpt.Portal.Metering;
using Rpt.Portal.Tenants;
using static Rpt.Portal.Metering.Pages.UsageCsv;

namespace Rpt.Portal.Budgets.Pages;

/// <summary>The Budgets page's CSV download: every project's or end user's billed use in a window, streamed, for plans with csv_export.</summary>
public static class UsageGroupsCsv
{
    public static async Task<IResult> ExportAsync(HttpContext http, BudgetService budgets, TenantDirectory tenants, TimeProvider time,
        IDbContextFactory<ApplicationDbContext> dbFactory, string? group_by, string? window, string? day)
    {
        var tenantId = http.User.TenantId();
        if (tenantId is null) return TypedResults.Forbid();
        var errors = new Dictionary<string, string[]>();
        var (scope, windowKind, start, end, periodStart) = BudgetsApi.Parse(errors, tenantId, budgets, time, group_by, window, day);
        if (errors.Count > 0) return TypedResults.ValidationProblem(errors);
        await using (var db = await dbFactory.CreateDbContextAsync())
        {
            var plan = await db.PlanOfAsync(tenantId);
            if (plan is null || !plan.Allows("csv_export"))
                return TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Not in your plan",
                    detail: $"CSV export is not part of the {plan?.Name ?? "current"} plan; it comes with Starter and above.");
        }
        http.Response.ContentType = "text/csv; charset=utf-8";
        http.Response.Headers.ContentDisposition = $"attachment; filename=\"usage-by-{group_by}-{BudgetService.Day(start)}.csv\"";
        await using var writer = new StreamWriter(http.Response.Body, new System.Text.UTF8Encoding(false));
        await writer.WriteLineAsync($"{group_by},window,window_start,window_end,calls,micro_credits,credits");
        await foreach (var row in budgets.StreamAsync(tenantId, scope!, windowKind!, periodStart, http.RequestAborted))
            await writer.WriteLineAsync(string.Join(',', Csv(row.Value), windowKind, BudgetService.Day(start), BudgetService.Day(end.AddDays(-1)),
                row.Calls, row.MicroCredits, Credit.Format(row.MicroCredits)));
        return TypedResults.Empty;
    }
}
