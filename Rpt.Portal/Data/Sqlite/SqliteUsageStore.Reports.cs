using System.Data.Common;
using System.Globalization;
using System.Text;
using Microsoft.Data.Sqlite;
using Rpt.Portal.Metering;
using SQLitePCL;

namespace Rpt.Portal.Data.Sqlite;

/// <summary>What the pages and the API read: daily rows, jobs, calls (the query planner picks the index), totals.</summary>
public sealed partial class SqliteUsageStore
{
    /// <summary>Rows of <c>usage_daily</c> for days in [<paramref name="from"/>, <paramref name="toExclusive"/>), of one category or all.</summary>
    public List<DailyRow> Daily(DbConnection connection, DbTransaction? tx, string tenantId, DateOnly from, DateOnly toExclusive, string? category)
    {
        using var cmd = ((SqliteConnection)connection).CreateCommand();
        cmd.Transaction = (SqliteTransaction?)tx;
        cmd.CommandText = "SELECT day, category, provider, name, feature, is_meter, calls, input_tokens, output_tokens, cached_input_tokens, micro_credits, quantity_micro "
            + "FROM usage_daily WHERE tenant_id = $t AND day >= $from AND day < $to" + (category is null ? "" : " AND category = $c");
        cmd.Parameters.AddWithValue("$t", tenantId);
        cmd.Parameters.AddWithValue("$from", Day(from));
        cmd.Parameters.AddWithValue("$to", Day(toExclusive));
        if (category is not null) cmd.Parameters.AddWithValue("$c", category);
        using var r = cmd.ExecuteReader();
        var rows = new List<DailyRow>();
        while (r.Read())
        {
            var feature = r.GetString(4);
            rows.Add(new DailyRow(DateOnly.ParseExact(r.GetString(0), "yyyy-MM-dd", CultureInfo.InvariantCulture), r.GetString(1), r.GetString(2), r.GetString(3),
                feature.Length == 0 ? null : feature, r.GetInt64(5) == 1, r.GetInt64(6), r.GetInt64(7), r.GetInt64(8), r.GetInt64(9), r.GetInt64(10), r.GetInt64(11)));
        }
        return rows;
    }

    /// <summary>Jobs that started in [<paramref name="fromMs"/>, <paramref name="toMs"/>), newest first, from after the keyset
    /// position <paramref name="after"/> (or skipping <paramref name="offset"/>), at most <paramref name="limit"/>.</summary>
    public List<JobRow> Jobs(DbConnection connection, string tenantId, long fromMs, long toMs, (long FirstAtMs, long RowId)? after, int offset, int limit,
        JobOrder order = JobOrder.Newest)
    {
        // The keyset is (sort column, rowid) in the order's direction; both columns come from an index.
        var (column, desc) = order switch
        {
            JobOrder.Oldest => ("first_at", false),
            JobOrder.MostCredits => ("micro_credits", true),
            JobOrder.FewestCredits => ("micro_credits", false),
            _ => ("first_at", true),
        };
        var cmp = desc ? "<" : ">";
        var dir = desc ? "DESC" : "ASC";
        using var cmd = ((SqliteConnection)connection).CreateCommand();
        cmd.CommandText = "SELECT rowid, job_id, calls, billable_calls, input_tokens, output_tokens, cached_input_tokens, micro_credits, internal_micro_credits, first_at, last_at "
            + "FROM usage_jobs WHERE tenant_id = $t AND first_at >= $from AND first_at < $to"
            + (after is null ? "" : $" AND ({column} {cmp} $af OR ({column} = $af AND rowid {cmp} $ar))")
            + $" ORDER BY {column} {dir}, rowid {dir} LIMIT $n OFFSET $o";
        cmd.Parameters.AddWithValue("$t", tenantId);
        cmd.Parameters.AddWithValue("$from", fromMs);
        cmd.Parameters.AddWithValue("$to", toMs);
        if (after is { } a)
        {
            cmd.Parameters.AddWithValue("$af", a.FirstAtMs);
            cmd.Parameters.AddWithValue("$ar", a.RowId);
        }
        cmd.Parameters.AddWithValue("$n", limit);
        cmd.Parameters.AddWithValue("$o", offset);
        using var r = cmd.ExecuteReader();
        var rows = new List<JobRow>();
        while (r.Read())
            rows.Add(new JobRow(r.GetInt64(0), r.GetString(1), r.GetInt64(2), r.GetInt64(3), r.GetInt64(4), r.GetInt64(5), r.GetInt64(6), r.GetInt64(7), r.GetInt64(8), r.GetInt64(9), r.GetInt64(10)));
        return rows;
    }

    /// <summary>The rowid of a job's row (the job_ref of its calls), or null for a job never seen.</summary>
    public long? JobRefOf(DbConnection connection, string tenantId, string jobId)
    {
        using var cmd = ((SqliteConnection)connection).CreateCommand();
        cmd.CommandText = "SELECT rowid FROM usage_jobs WHERE tenant_id = $t AND job_id = $j";
        cmd.Parameters.AddWithValue("$t", tenantId);
        cmd.Parameters.AddWithValue("$j", jobId);
        return cmd.ExecuteScalar() is long rowid ? rowid : null;
    }

    /// <summary>Calls of one job (every category), from its rollup.</summary>
    public long JobCalls(DbConnection connection, string tenantId, string jobId)
    {
        using var cmd = ((SqliteConnection)connection).CreateCommand();
        cmd.CommandText = "SELECT calls FROM usage_jobs WHERE tenant_id = $t AND job_id = $j";
        cmd.Parameters.AddWithValue("$t", tenantId);
        cmd.Parameters.AddWithValue("$j", jobId);
        return cmd.ExecuteScalar() is long n ? n : 0;
    }

    private static string Day(DateOnly d) => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    /// <summary>
    /// The SQL that lists a tenant's matching audit records by seq (newest first, or oldest first for an export)
    /// without an index of its own, which would cost every event one more B-tree write: either the rowid order
    /// filtered by tenant (cheap where the tenant's calls are dense among all), or the tenant's entries of the
    /// (tenant_id, job_id) index sorted by seq (cheap where they are few). The cheaper plan is chosen from what
    /// the rollups say: with N matching calls among M, the first costs about page × M / N rows, the second N;
    /// the better of the two is at most √(page × M) rows, whatever the mix of tenants.
    /// </summary>
    public (string Sql, object[] Parameters) CallsQuery(string tenantId, long matching, long stored, int page, bool newestFirst,
        DateTimeOffset? from, DateTimeOffset? to, string? model, string? feature, string? jobId, long? beforeSeq, long? afterSeq, int? limit = null)
    {
        var where = new List<string>();
        var args = new List<object>();
        string Arg(object value) { args.Add(value); return $"{{{args.Count - 1}}}"; }
        string index;
        if (!string.IsNullOrEmpty(jobId))
        {
            index = "INDEXED BY ix_usage_events_tenant_jobref";
            var tenantArg = Arg(tenantId);
            var jobArg = Arg(jobId);
            where.Add($"tenant_id = {tenantArg}");
            where.Add($"job_ref = (SELECT rowid FROM usage_jobs WHERE tenant_id = {tenantArg} AND job_id = {jobArg})");
            where.Add($"job_id = {jobArg}");
        }
        else if ((double)matching * matching > (double)page * stored)
        {
            index = "NOT INDEXED";
            where.Add($"tenant_id = {Arg(tenantId)}");
        }
        else
        {
            index = "INDEXED BY ix_usage_events_tenant_jobref";
            where.Add($"tenant_id = {Arg(tenantId)}");
        }
        if (from is { } f) where.Add($"occurred_at >= {Arg(f.ToUnixTimeMilliseconds())}");
        if (to is { } t) where.Add($"occurred_at < {Arg(t.ToUnixTimeMilliseconds())}");
        if (!string.IsNullOrEmpty(model)) where.Add($"(model = {Arg(model)} OR meter = {Arg(model)})");
        if (!string.IsNullOrEmpty(feature)) where.Add($"feature = {Arg(feature)}");
        if (beforeSeq is { } b) where.Add($"seq < {Arg(b)}");
        if (afterSeq is { } a) where.Add($"seq > {Arg(a)}");
        var sql = $"SELECT * FROM usage_events {index} WHERE {string.Join(" AND ", where)} ORDER BY seq {(newestFirst ? "DESC" : "ASC")}"
            + (limit is { } n ? $" LIMIT {Arg(n)}" : "");
        return (sql, args.ToArray());
    }

    /// <summary>A tenant's calls (every period and category), from the running totals.</summary>
    public long TenantCalls(DbConnection connection, string tenantId)
    {
        using var cmd = ((SqliteConnection)connection).CreateCommand();
        cmd.CommandText = "SELECT COALESCE(SUM(events), 0) FROM usage_totals WHERE tenant_id = $t";
        cmd.Parameters.AddWithValue("$t", tenantId);
        return Convert.ToInt64(cmd.ExecuteScalar(), CultureInfo.InvariantCulture);
    }
}
