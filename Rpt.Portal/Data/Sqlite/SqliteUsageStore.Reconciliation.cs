using System.Data.Common;
using System.Globalization;
using System.Text;
using Microsoft.Data.Sqlite;
using Rpt.Portal.Metering;
using SQLitePCL;

namespace Rpt.Portal.Data.Sqlite;

/// <summary>What the deep verifier compares: the stored rollups against the rollups recomputed from the audit records, and every job_ref.</summary>
public sealed partial class SqliteUsageStore
{
    /// <summary>Audit records whose job_ref does not point at their own job's row (there should be none), at most <paramref name="limit"/> seqs.</summary>
    public List<long> MisreferencedJobs(DbConnection connection, DbTransaction tx, string tenantId, int limit)
    {
        using var cmd = ((SqliteConnection)connection).CreateCommand();
        cmd.Transaction = (SqliteTransaction?)tx;
        cmd.CommandText = """
            SELECT e.seq FROM usage_events e LEFT JOIN usage_jobs j ON j.rowid = e.job_ref
            WHERE e.tenant_id = $t AND ((e.job_id IS NULL) <> (e.job_ref IS NULL)
              OR (e.job_id IS NOT NULL AND (j.tenant_id IS NOT e.tenant_id OR j.job_id IS NOT e.job_id)))
            LIMIT $n
            """;
        cmd.Parameters.AddWithValue("$t", tenantId);
        cmd.Parameters.AddWithValue("$n", limit);
        using var r = cmd.ExecuteReader();
        var seqs = new List<long>();
        while (r.Read()) seqs.Add(r.GetInt64(0));
        return seqs;
    }

    private const string DailyStoredSql = """
        SELECT day || '|' || category || '|' || provider || '|' || name || '|' || feature,
               is_meter || ' ' || calls || ' ' || input_tokens || ' ' || output_tokens || ' ' || cached_input_tokens || ' ' || micro_credits || ' ' || quantity_micro
        FROM usage_daily WHERE tenant_id = $t
        """;

    // A quantity is stored as the decimal's invariant text (at most 6 decimal places, never an exponent: RateUsage), so
    // its micro-units are read from the digits, exactly, not through a floating-point REAL.
    private const string DailyRecomputedSql = """
        SELECT day || '|' || category || '|' || provider || '|' || name || '|' || feature,
               (meter IS NOT NULL) || ' ' || COUNT(*) || ' ' || SUM(input_tokens) || ' ' || SUM(output_tokens) || ' ' || SUM(cached_input_tokens) || ' ' || SUM(micro_credits) || ' ' || SUM(quantity_micro)
        FROM (SELECT date(occurred_at / 1000, 'unixepoch') AS day,
                     CASE WHEN status = 'failed' THEN 'failed' WHEN internal = 1 THEN 'internal' ELSE 'billable' END AS category,
                     provider, COALESCE(model, meter) AS name, COALESCE(feature, '') AS feature, meter, input_tokens, output_tokens, cached_input_tokens, micro_credits,
                     CASE WHEN quantity IS NULL THEN 0
                          WHEN instr(quantity, '.') = 0 THEN CAST(quantity AS INTEGER) * 1000000
                          ELSE CAST(substr(quantity, 1, instr(quantity, '.') - 1) AS INTEGER) * 1000000
                               + CAST(substr(substr(quantity, instr(quantity, '.') + 1) || '000000', 1, 6) AS INTEGER) END AS quantity_micro
              FROM usage_events WHERE tenant_id = $t)
        GROUP BY day, category, provider, name, feature
        """;

    private const string JobsStoredSql = """
        SELECT job_id, calls || ' ' || billable_calls || ' ' || input_tokens || ' ' || output_tokens || ' ' || cached_input_tokens || ' ' || micro_credits
               || ' ' || internal_micro_credits || ' ' || first_at || ' ' || last_at
        FROM usage_jobs WHERE tenant_id = $t
        """;

    private const string JobsRecomputedSql = """
        SELECT job_id, COUNT(*) || ' ' || SUM(billable) || ' ' || SUM(CASE WHEN billable = 1 THEN input_tokens ELSE 0 END) || ' ' || SUM(CASE WHEN billable = 1 THEN output_tokens ELSE 0 END)
               || ' ' || SUM(CASE WHEN billable = 1 THEN cached_input_tokens ELSE 0 END) || ' ' || SUM(CASE WHEN billable = 1 THEN micro_credits ELSE 0 END)
               || ' ' || SUM(CASE WHEN internal = 1 AND status <> 'failed' THEN micro_credits ELSE 0 END) || ' ' || MIN(occurred_at) || ' ' || MAX(occurred_at)
        FROM usage_events WHERE tenant_id = $t AND job_id IS NOT NULL GROUP BY job_id
        """;

    private const string ScopesStoredSql = """
        SELECT scope || '|' || period_start || '|' || value,
               calls || ' ' || micro_credits || ' ' || last_day || ' ' || day_calls || ' ' || day_micro_credits
        FROM usage_scopes WHERE tenant_id = $t
        """;

    private const string ScopesRecomputedSql = """
        WITH s AS (
          SELECT 'api_key' AS scope, api_key_id AS value, date(occurred_at / 1000, 'unixepoch') AS d, period_start AS p, micro_credits
            FROM usage_events WHERE tenant_id = $t AND billable = 1 AND api_key_id IS NOT NULL
          UNION ALL SELECT 'project', project, date(occurred_at / 1000, 'unixepoch'), period_start, micro_credits
            FROM usage_events WHERE tenant_id = $t AND billable = 1 AND project IS NOT NULL
          UNION ALL SELECT 'user', user_id, date(occurred_at / 1000, 'unixepoch'), period_start, micro_credits
            FROM usage_events WHERE tenant_id = $t AND billable = 1 AND user_id IS NOT NULL),
        g AS (SELECT scope, p, value, COUNT(*) AS c, SUM(micro_credits) AS m, MAX(d) AS last FROM s GROUP BY scope, p, value),
        t AS (SELECT scope, p, value, d, COUNT(*) AS c, SUM(micro_credits) AS m FROM s GROUP BY scope, p, value, d)
        SELECT g.scope || '|' || g.p || '|' || g.value, g.c || ' ' || g.m || ' ' || g.last || ' ' || t.c || ' ' || t.m
        FROM g JOIN t ON t.scope = g.scope AND t.p = g.p AND t.value = g.value AND t.d = g.last
        """;

    /// <inheritdoc cref="DailyReconciliation"/>
    public (Dictionary<string, string> Stored, Dictionary<string, string> Recomputed) ScopeReconciliation(DbConnection connection, DbTransaction tx, string tenantId) =>
        (Keyed(connection, tx, tenantId, ScopesStoredSql), Keyed(connection, tx, tenantId, ScopesRecomputedSql));

    /// <summary>
    /// The rollups as stored and as recomputed from the tenant's audit records, each row as text by its key,
    /// for the deep verifier: derived data must equal what it is derived from.
    /// </summary>
    public (Dictionary<string, string> Stored, Dictionary<string, string> Recomputed) DailyReconciliation(DbConnection connection, DbTransaction tx, string tenantId) =>
        (Keyed(connection, tx, tenantId, DailyStoredSql), Keyed(connection, tx, tenantId, DailyRecomputedSql));

    /// <inheritdoc cref="DailyReconciliation"/>
    public (Dictionary<string, string> Stored, Dictionary<string, string> Recomputed) JobReconciliation(DbConnection connection, DbTransaction tx, string tenantId) =>
        (Keyed(connection, tx, tenantId, JobsStoredSql), Keyed(connection, tx, tenantId, JobsRecomputedSql));

    private static Dictionary<string, string> Keyed(DbConnection connection, DbTransaction tx, string tenantId, string sql)
    {
        using var cmd = ((SqliteConnection)connection).CreateCommand();
        cmd.Transaction = (SqliteTransaction?)tx;
        cmd.CommandText = sql;
        cmd.Parameters.AddWithValue("$t", tenantId);
        try
        {
            using var r = cmd.ExecuteReader();
            var result = new Dictionary<string, string>(StringComparer.Ordinal);
            while (r.Read()) result[r.GetString(0)] = r.GetString(1);
            return result;
        }
        catch (SqliteException ex) when (ex.Message.Contains("overflow", StringComparison.OrdinalIgnoreCase))
        {
            // SQLite reports an integer SUM past 64 bits only by its message; the features see a typed overflow.
            throw new OverflowException(ex.Message, ex);
        }
    }
}
