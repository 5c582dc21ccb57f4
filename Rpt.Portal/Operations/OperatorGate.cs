using System.Globalization;
using System.Security.Claims;
using System.Text;
using Microsoft.AspNetCore.Identity;
using Rpt.Portal.Data;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Operations;

/// <summary>
/// The console opens to an operator (the <see cref="PortalRoles.Operator"/> role, platform staff, not a tenant's
/// member) whose account has two-factor sign-in turned on; read from the store on every check, so turning it off
/// closes the console at once.
/// </summary>
public sealed class OperatorGate(IServiceScopeFactory scopes)
{
    public async Task<bool> OpensForAsync(ClaimsPrincipal user)
    {
        if (!user.IsInRole(PortalRoles.Operator) || user.Identity?.Name is not { } name) return false;
        using var scope = scopes.CreateScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>();
        return await users.FindByNameAsync(name) is { } account && account.TenantId is null && await users.GetTwoFactorEnabledAsync(account);
    }
}

/// <summary>The audit log as CSV, every record matching the filter, oldest first, for the console's download.</summary>
public static class AuditCsv
{
    public static async Task<IResult> ExportAsync(HttpContext http, OperatorGate gate, AuditLog audit, string? tenant, string? since)
    {
        if (!await gate.OpensForAsync(http.User)) return TypedResults.Forbid();
        DateTimeOffset? from = null;
        if (!string.IsNullOrEmpty(since))
        {
            if (!DateOnly.TryParseExact(since, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day))
                return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Invalid request", detail: "since: a day written yyyy-MM-dd.");
            from = new DateTimeOffset(day.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);
        }
        if (tenant is { Length: > AuditLog.MaxText })
            return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Invalid request", detail: $"tenant: at most {AuditLog.MaxText} characters.");
        var records = await audit.ListAsync(tenant, from, int.MaxValue, http.RequestAborted);
        var sb = new StringBuilder("seq,at,actor,origin,action,tenant_id,subject,old_value,new_value,prev_hash,hash\n");
        foreach (var r in records.OrderBy(r => r.Seq))
            sb.AppendJoin(',', r.Seq.ToString(CultureInfo.InvariantCulture), r.At.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture),
                Csv(r.Actor), Csv(r.Origin), Csv(r.Action), Csv(r.TenantId), Csv(r.Subject), Csv(r.OldValue), Csv(r.NewValue), r.PrevHash, r.Hash).Append('\n');
        http.Response.Headers.ContentDisposition = "attachment; filename=\"operator-audit.csv\"";
        return TypedResults.Text(sb.ToString(), "text/csv; charset=utf-8");
    }

    private static string Csv(string? value) => Metering.Pages.UsageCsv.Csv(value);
}
