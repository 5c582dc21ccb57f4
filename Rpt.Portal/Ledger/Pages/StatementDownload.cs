using System.Globalization;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Ledger.Pages;

/// <summary>
/// The Allocations page's downloads: a period's statement and a consumption entry's audit records, the same bytes as
/// <c>GET /v1/ledger/statement</c> and <c>/v1/ledger/statement/records</c>, for a signed-in member of the account.
/// </summary>
public static class StatementDownload
{
    public static async Task<IResult> StatementAsync(HttpContext http, LedgerStatement statements, string? period)
    {
        if (http.User.TenantId() is not { } tenantId) return TypedResults.Forbid();
        var (resolved, problem) = statements.ResolvePeriod(tenantId, period);
        if (problem is not null) return Problem(problem);
        var open = await statements.OpenAsync(tenantId, resolved!.Value, http.RequestAborted);
        http.Response.RegisterForDisposeAsync(open);
        var start = resolved.Value.Start.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        http.Response.Headers.ContentDisposition = $"attachment; filename=\"statement-{tenantId}-{start}.json\"";
        return TypedResults.Json(open.Statement);
    }

    public static async Task<IResult> RecordsAsync(HttpContext http, LedgerStatement statements, string? entry)
    {
        if (http.User.TenantId() is not { } tenantId) return TypedResults.Forbid();
        var (found, problem) = await statements.FindConsumptionAsync(tenantId, entry, http.RequestAborted);
        if (problem is not null) return Problem(problem);
        return TypedResults.Stream(output => statements.WriteRecordsAsync(found!, output, http.RequestAborted), "text/plain; charset=utf-8",
            $"records-{tenantId}-{found!.Seq}.txt");
    }

    private static IResult Problem(StatementProblem problem) =>
        TypedResults.Problem(statusCode: problem.NotFound ? StatusCodes.Status404NotFound : StatusCodes.Status400BadRequest,
            title: problem.NotFound ? "Not found" : "Invalid request", detail: $"{problem.Field}: {problem.Message}");
}
