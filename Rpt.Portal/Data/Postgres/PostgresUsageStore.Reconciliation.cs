using System.Data.Common;
using System.Globalization;
using System.Text;
using Npgsql;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Data.Postgres;

/// <summary>What the deep verifier compares: the stored rollups against the rollups recomputed from the audit records, and every job_ref.</summary>
public sealed partial class PostgresUsageStore
{
    public List<long> MisreferencedJobs(DbConnection connection, DbTransaction tx, string tenantId, int limit)
    {
        using var cmd = Command(connection, tx, """
            SELECT e.seq FROM usage_events e LEFT JOIN usage_jobs j ON j.rowid = e.job_ref
            WHERE e.tenant_id = @t AND ((e.job_id IS NULL) <> (e.job_ref IS NULL)
              OR (e.job_id IS NOT NULL AND (j.tenant_id IS DISTINCT FROM e.tenant_id OR j.job_id IS DISTINCT FROM e.job_id)))
            LIMIT @n
            """);
        cmd.Parameters.AddWithValue("t", tenantId);
        cmd.Parameters.AddWithValue("n", limit);
        using var r = cmd.ExecuteReader();
        var seqs = new List<long>();
        while (r.Read()) seqs.Add(r.GetInt64(0));
        return seqs;
    }

    private const string DailyStoredSql = """
        SELECT to_char(day, 'YYYY-MM-DD') || '|' || category || '|' || provider || '|' || name || '|' || feature,
               (CASE WHEN is_meter THEN 1 ELSE 0 END) || ' ' || calls || ' ' || input_tokens || ' ' || output_tokens || ' ' || cached_input_tokens || ' ' || micro_credits || ' ' || quantity_micro
        FROM usage_daily WHERE tenant_id = @t
        """;

    private const string DailyRecomputedSql = """
        SELECT day || '|' || category || '|' || provider || '|' || name || '|' || feature,
               MAX(is_meter) || ' ' || COUNT(*) || ' ' || SUM(input_tokens) || ' ' || SUM(output_tokens) || ' ' || SUM(cached_input_tokens) || ' ' || SUM(micro_credits) || ' ' || SUM(quantity_micro)
        FROM (SELECT to_char((TIMESTAMP '1970-01-01' + occurred_at * INTERVAL '1 millisecond')::date, 'YYYY-MM-DD') AS day,
                     CASE WHEN status = 'failed' THEN 'failed' WHEN "internal" THEN 'internal' ELSE 'billable' END AS category,
                     provider, COALESCE(model, meter) AS name, COALESCE(feature, '') AS feature, CASE WHEN meter IS NULL THEN 0 ELSE 1 END AS is_meter,
                     input_tokens, output_tokens, cached_input_tokens, micro_credits,
                     CASE WHEN quantity IS NULL THEN 0 ELSE trunc(quantity * 1000000)::bigint END AS quantity_micro
              FROM usage_events WHERE tenant_id = @t) AS e
        GROUP BY day, category, provider, name, feature
        """;

    private const string JobsStoredSql = """
        SELECT job_id, calls || ' ' || billable_calls || ' ' || input_tokens || ' ' || output_tokens || ' ' || cached_input_tokens || ' ' || micro_credits
               || ' ' || internal_micro_credits || ' ' || first_at || ' ' || last_at
        FROM usage_jobs WHERE tenant_id = @t
        """;

    private const string JobsRecomputedSql = """
        SELECT job_id, COUNT(*) || ' ' || SUM(CASE WHEN billable THEN 1 ELSE 0 END) || ' ' || SUM(CASE WHEN billable THEN input_tokens ELSE 0 END) || ' ' || SUM(CASE WHEN billable THEN output_tokens ELSE 0 END)
               || ' ' || SUM(CASE WHEN billable THEN cached_input_tokens ELSE 0 END) || ' ' || SUM(CASE WHEN billable THEN micro_credits ELSE 0 END)
               || ' ' || SUM(CASE WHEN "internal" AND status <> 'failed' THEN micro_credits ELSE 0 END) || ' ' || MIN(occurred_at) || ' ' || MAX(occurred_at)
        FROM usage_events WHERE tenant_id = @t AND job_id IS NOT NULL GROUP BY job_id
        """;

    private const string ScopesStoredSql = """
        SELECT scope || '|' || to_char(period_start, 'YYYY-MM-DD') || '|' || value,
               calls || ' ' || micro_credits || ' ' || to_char(last_day, 'YYYY-MM-DD') || ' ' || day_calls || ' ' || day_micro_credits
        FROM usage_scopes WHERE tenant_id = @t
        """;

    private const string ScopesRecomputedSql = """
        WITH e AS (
          SELECT api_key_id, project, user_id, micro_credits, to_char(period_start, 'YYYY-MM-DD') AS p,
                 to_char((TIMESTAMP '1970-01-01' + occurred_at * INTERVAL '1 millisecond')::date, 'YYYY-MM-DD') AS d
          FROM usage_events WHERE tenant_id = @t AND billable),
        s AS (
          SELECT 'api_key' AS scope, api_key_id AS value, d, p, micro_credits FROM e WHERE api_key_id IS NOT NULL
          UNION ALL SELECT 'project', project, d, p, micro_credits FROM e WHERE project IS NOT NULL
          UNION ALL SELECT 'user', user_id, d, p, micro_credits FROM e WHERE user_id IS NOT NULL),
        g AS (SELECT scope, p, value, COUNT(*) AS c, SUM(micro_credits) AS m, MAX(d) AS last FROM s GROUP BY scope, p, value),
        t AS (SELECT scope, p, value, d, COUNT(*) AS c, SUM(micro_credits) AS m FROM s GROUP BY scope, p, value, d)
        SELECT g.scope || '|' || g.p || '|' || g.value, g.c || ' ' || g.m || ' ' || g.last || ' ' || t.c || ' ' || t.m
        FROM g JOIN t ON t.scope = g.scope AND t.p = g.p AND t.value = g.value AND t.d = g.last
        """;

    public (Dictionary<string, string> Stored, Dictionary<string, string> Recomputed) ScopeReconciliation(DbConnection connection, DbTransaction tx, string tenantId) =>
        (Keyed(connection, tx, tenantId, ScopesStoredSql), Keyed(connection, tx, tenantId, ScopesRecomputedSql));

    public (Dictionary<string, string> Stored, Dictionary<string, string> Recomputed) DailyReconciliation(DbConnection connection, DbTransaction tx, string tenantId) =>
        (Keyed(connection, tx, tenantId, DailyStoredSql), Keyed(connection, tx, tenantId, DailyRecomputedSql));

    public (Dictionary<string, string> Stored, Dictionary<string, string> Recomputed) JobReconciliation(DbConnection connection, DbTransaction tx, string tenantId) =>
        (Keyed(connection, tx, tenantId, JobsStoredSql), Keyed(connection, tx, tenantId, JobsRecomputedSql));

    private static Dictionary<string, string> Keyed(DbConnection connection, DbTransaction tx, string tenantId, string sql)
    {
        using var cmd = Command(connection, tx, sql);
        cmd.Parameters.AddWithValue("t", tenantId);
        try
        {
            using var r = cmd.ExecuteReader();
            var result = new Dictionary<string, string>(StringComparer.Ordinal);
            while (r.Read()) result[r.GetString(0)] = r.GetString(1);
            return result;
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.NumericValueOutOfRange)
        {
            throw new OverflowException(ex.MessageText, ex);
        }
    }
}
