using System.Data.Common;
using System.Globalization;
using System.Text;
using Npgsql;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Data.Postgres;

/// <summary>What the pages and the API read: daily rows, jobs, calls, totals.</summary>
public sealed partial class PostgresUsageStore
{
    public List<DailyRow> Daily(DbConnection connection, DbTransaction? tx, string tenantId, DateOnly from, DateOnly toExclusive, string? category)
    {
        using var cmd = Command(connection, tx, "SELECT day, category, provider, name, feature, is_meter, calls, input_tokens, output_tokens, cached_input_tokens, micro_credits, quantity_micro "
            + "FROM usage_daily WHERE tenant_id = @t AND day >= @from AND day < @to" + (category is null ? "" : " AND category = @c"));
        cmd.Parameters.AddWithValue("t", tenantId);
        cmd.Parameters.AddWithValue("from", from);
        cmd.Parameters.AddWithValue("to", toExclusive);
        if (category is not null) cmd.Parameters.AddWithValue("c", category);
        using var r = cmd.ExecuteReader();
        var rows = new List<DailyRow>();
        while (r.Read())
        {
            var feature = r.GetString(4);
            rows.Add(new DailyRow(r.GetFieldValue<DateOnly>(0), r.GetString(1), r.GetString(2), r.GetString(3), feature.Length == 0 ? null : feature,
                r.GetBoolean(5), r.GetInt64(6), r.GetInt64(7), r.GetInt64(8), r.GetInt64(9), r.GetInt64(10), r.GetInt64(11)));
        }
        return rows;
    }

    public List<JobRow> Jobs(DbConnection connection, string tenantId, long fromMs, long toMs, (long FirstAtMs, long RowId)? after, int offset, int limit,
        JobOrder order = JobOrder.Newest)
    {
        var (column, desc) = order switch
        {
            JobOrder.Oldest => ("first_at", false),
            JobOrder.MostCredits => ("micro_credits", true),
            JobOrder.FewestCredits => ("micro_credits", false),
            _ => ("first_at", true),
        };
        var cmp = desc ? "<" : ">";
        var dir = desc ? "DESC" : "ASC";
        using var cmd = Command(connection, null, "SELECT rowid, job_id, calls, billable_calls, input_tokens, output_tokens, cached_input_tokens, micro_credits, internal_micro_credits, first_at, last_at "
            + "FROM usage_jobs WHERE tenant_id = @t AND first_at >= @from AND first_at < @to"
            + (after is null ? "" : $" AND ({column} {cmp} @af OR ({column} = @af AND rowid {cmp} @ar))")
            + $" ORDER BY {column} {dir}, rowid {dir} LIMIT @n OFFSET @o");
        cmd.Parameters.AddWithValue("t", tenantId);
        cmd.Parameters.AddWithValue("from", fromMs);
        cmd.Parameters.AddWithValue("to", toMs);
        if (after is { } a)
        {
            cmd.Parameters.AddWithValue("af", a.FirstAtMs);
            cmd.Parameters.AddWithValue("ar", a.RowId);
        }
        cmd.Parameters.AddWithValue("n", limit);
        cmd.Parameters.AddWithValue("o", offset);
        using var r = cmd.ExecuteReader();
        var rows = new List<JobRow>();
        while (r.Read())
            rows.Add(new JobRow(r.GetInt64(0), r.GetString(1), r.GetInt64(2), r.GetInt64(3), r.GetInt64(4), r.GetInt64(5), r.GetInt64(6), r.GetInt64(7), r.GetInt64(8), r.GetInt64(9), r.GetInt64(10)));
        return rows;
    }

    public long? JobRefOf(DbConnection connection, string tenantId, string jobId)
    {
        using var cmd = Command(connection, null, "SELECT rowid FROM usage_jobs WHERE tenant_id = @t AND job_id = @j");
        cmd.Parameters.AddWithValue("t", tenantId);
        cmd.Parameters.AddWithValue("j", jobId);
        return cmd.ExecuteScalar() is long rowid ? rowid : null;
    }

    public long JobCalls(DbConnection connection, string tenantId, string jobId)
    {
        using var cmd = Command(connection, null, "SELECT calls FROM usage_jobs WHERE tenant_id = @t AND job_id = @j");
        cmd.Parameters.AddWithValue("t", tenantId);
        cmd.Parameters.AddWithValue("j", jobId);
        return cmd.ExecuteScalar() is long n ? n : 0;
    }

    // The same text as SQLite's recomputation, so that a verifier's report reads the same on both engines. The day of an
    // instant is taken in UTC from its milliseconds (as RateUsage does); a quantity's µunits are truncated, as decimal.ToInt64 does.
    /// <summary>
    /// PostgreSQL plans the listing itself: the tenant's entries of ux_usage_events_tenant_event or of
    /// ix_usage_events_tenant_jobref, or the primary key in seq order filtered by tenant, by its statistics.
    /// </summary>
    public (string Sql, object[] Parameters) CallsQuery(string tenantId, long matching, long stored, int page, bool newestFirst,
        DateTimeOffset? from, DateTimeOffset? to, string? model, string? feature, string? jobId, long? beforeSeq, long? afterSeq, int? limit = null)
    {
        var where = new List<string>();
        var args = new List<object>();
        string Arg(object value) { args.Add(value); return $"{{{args.Count - 1}}}"; }
        var tenantArg = Arg(tenantId);
        where.Add($"tenant_id = {tenantArg}");
        if (!string.IsNullOrEmpty(jobId))
        {
            var jobArg = Arg(jobId);
            where.Add($"job_ref = (SELECT rowid FROM usage_jobs WHERE tenant_id = {tenantArg} AND job_id = {jobArg})");
            where.Add($"job_id = {jobArg}");
        }
        if (from is { } f) where.Add($"occurred_at >= {Arg(f.ToUnixTimeMilliseconds())}");
        if (to is { } t) where.Add($"occurred_at < {Arg(t.ToUnixTimeMilliseconds())}");
        if (!string.IsNullOrEmpty(model)) where.Add($"(model = {Arg(model)} OR meter = {Arg(model)})");
        if (!string.IsNullOrEmpty(feature)) where.Add($"feature = {Arg(feature)}");
        if (beforeSeq is { } b) where.Add($"seq < {Arg(b)}");
        if (afterSeq is { } a) where.Add($"seq > {Arg(a)}");
        var sql = $"SELECT * FROM usage_events WHERE {string.Join(" AND ", where)} ORDER BY seq {(newestFirst ? "DESC" : "ASC")}"
            + (limit is { } n ? $" LIMIT {Arg(n)}" : "");
        return (sql, args.ToArray());
    }

    public long TenantCalls(DbConnection connection, string tenantId)
    {
        using var cmd = Command(connection, null, "SELECT COALESCE(SUM(events), 0)::bigint FROM usage_totals WHERE tenant_id = @t");
        cmd.Parameters.AddWithValue("t", tenantId);
        return (long)cmd.ExecuteScalar()!;
    }
}
