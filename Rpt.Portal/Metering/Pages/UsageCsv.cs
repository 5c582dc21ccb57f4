using System.Globalization;
using System.Text;
using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Data;
using Rpt.Portal.Metering;
using Rpt.Portal.Plans;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Metering.Pages;

/// <summary>The Usage page's CSV export, streamed, for plans whose csv_export entitlement allows it (a page's endpoint: it may ask the plan).</summary>
public static class UsageCsv
{
    public static async Task<IResult> ExportAsync(HttpContext http, UsageReports reports, TenantDirectory tenants,
        IDbContextFactory<ApplicationDbContext> dbFactory, string? from, string? to, string? model, string? feature, string? job)
    {
        var tenantId = http.User.TenantId();
        if (tenantId is null) return TypedResults.Forbid();
        var balance = tenants.PlanAndPeriod(tenantId)!;
        await using (var db = await dbFactory.CreateDbContextAsync())
        {
            var plan = await db.Plans.FindAsync(balance.PlanCode);
            if (plan is null || !plan.Allows("csv_export"))
                return TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Not in your plan",
                    detail: $"CSV export is not part of the {plan?.Name ?? balance.PlanCode} plan; it comes with Starter and above.");
        }
        var filter = new UsageFilter(Day(from), Day(to)?.AddDays(1), model, feature, job);
        http.Response.ContentType = "text/csv; charset=utf-8";
        http.Response.Headers.ContentDisposition = $"attachment; filename=\"usage-{tenantId}.csv\"";
        await using var writer = new StreamWriter(http.Response.Body, new UTF8Encoding(false));
        await writer.WriteLineAsync("occurred_at,id,provider,model,meter,quantity,input_tokens,output_tokens,cached_input_tokens,feature,job_id,user_id,status,internal,cost_usd,micro_credits,credits");
        await foreach (var e in reports.StreamCallsAsync(tenantId, filter, http.RequestAborted))
        {
            await writer.WriteLineAsync(string.Join(',',
                e.OccurredAt.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture), Csv(e.EventId), Csv(e.Provider), Csv(e.Model), Csv(e.Meter),
                e.Quantity?.ToString(CultureInfo.InvariantCulture), e.InputTokens, e.OutputTokens, e.CachedInputTokens, Csv(e.Feature), Csv(e.JobId),
                Csv(e.UserId), e.Status == UsageStatus.Failed ? "failed" : "succeeded", e.Internal ? "true" : "false",
                e.CostUsd.ToString(CultureInfo.InvariantCulture), e.MicroCredits, Credit.Format(e.MicroCredits)));
        }
        return TypedResults.Empty;
    }

    private static DateTimeOffset? Day(string? text) =>
        DateOnly.TryParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var d)
            ? new DateTimeOffset(d.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero) : null;

    /// <summary>Quotes a field when it needs it, and defuses spreadsheet formulas (every CSV download of the portal uses it).</summary>
    public static string Csv(string? value)
    {
        if (string.IsNullOrEmpty(value)) return "";
        if (value[0] is '=' or '+' or '-' or '@') value = "'" + value;
        return value.AsSpan().IndexOfAny(",\"\n\r") >= 0 ? "\"" + value.Replace("\"", "\"\"") + "\"" : value;
    }
}
