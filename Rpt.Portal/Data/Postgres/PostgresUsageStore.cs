using System.Data.Common;
using System.Globalization;
using System.Text;
using Npgsql;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Data.Postgres;

/// <summary>
/// The audit records and their rollups on PostgreSQL. Exactly-once is the database's: a unique index on
/// (tenant_id, event_id), for all time, whatever the number of writers. A commit inserts its events with
/// <c>INSERT … ON CONFLICT DO NOTHING</c> over arrays (see <see cref="Writer"/>) and adds to the rollups with <c>INSERT … ON CONFLICT DO UPDATE</c> over arrays, a handful of round
/// trips per commit whatever its size.
/// </summary>
public sealed partial class PostgresUsageStore(PostgresDatabase database) : IUsageStore
{
    /// <summary>Every column of <c>usage_events</c> the writer fills, in the order of the canonical form (seq is the identity), then job_ref.</summary>
    private static readonly string[] Written = AuditCanonicalForm.Columns.Select(c => c.Name).Where(n => n != "seq").Append("job_ref").ToArray();

    private static readonly string CanonicalColumns = string.Join(", ", AuditCanonicalForm.Columns.Select(c => Quote(c.Name)));

    private static string Quote(string column) => column == "internal" ? "\"internal\"" : column;

    private static NpgsqlConnection Native(DbConnection connection) => (NpgsqlConnection)connection;

    private static NpgsqlCommand Command(DbConnection connection, DbTransaction? tx, string sql) =>
        new(sql, Native(connection), (NpgsqlTransaction?)tx);

    public IUsageWriter OpenWriter() => new Writer(database);

    public long MaxSeq(DbConnection connection, DbTransaction? tx = null)
    {
        using var cmd = Command(connection, tx, "SELECT COALESCE(MAX(seq), 0) FROM usage_events");
        return (long)cmd.ExecuteScalar()!;
    }

    public const int VisitChunk = 10_000;

    public void VisitRange(DbConnection connection, DbTransaction? tx, long fromSeq, long throughSeq, string? tenantId, string? periodStart,
        AuditRecordVisitor visit)
    {
        var sql = $"SELECT {CanonicalColumns} FROM usage_events WHERE seq > @a AND seq <= @b"
            + (tenantId is null ? "" : " AND tenant_id = @t") + (periodStart is null ? "" : " AND period_start = @p") + " ORDER BY seq";
        var form = new AuditCanonicalForm.Builder();
        var columns = AuditCanonicalForm.Columns;
        var tenantBytes = new byte[256];
        var periodBytes = new byte[16];
        var jobBytes = new byte[512];
        for (var from = fromSeq; from < throughSeq; from = Math.Min(throughSeq, from + VisitChunk))
        {
            using var chunkTx = tx is null ? database.BeginRead(connection) : null;
            using var cmd = Command(connection, tx ?? chunkTx, sql);
            cmd.Parameters.AddWithValue("a", from);
            cmd.Parameters.AddWithValue("b", Math.Min(throughSeq, from + VisitChunk));
            if (tenantId is not null) cmd.Parameters.AddWithValue("t", tenantId);
            if (periodStart is not null) cmd.Parameters.AddWithValue("p", PortableSql.ParseDay(periodStart));
            using (var r = cmd.ExecuteReader())
            {
                while (r.Read())
                {
                    form.Clear();
                    var count = AuditCanonicalForm.CoreColumns;
                    for (var i = count; i < columns.Count; i++)
                        if (!r.IsDBNull(i)) count = columns.Count;
                    for (var i = 0; i < count; i++)
                    {
                        if (i == AuditCanonicalForm.CoreColumns) form.Trailing();
                        if (r.IsDBNull(i)) form.Null();
                        else switch (r.GetFieldType(i))
                        {
                            case var t when t == typeof(long): form.Integer(r.GetInt64(i)); break;
                            case var t when t == typeof(bool): form.Integer(r.GetBoolean(i) ? 1 : 0); break;
                            case var t when t == typeof(string): form.Text(r.GetString(i)); break;
                            case var t when t == typeof(decimal): form.Text(r.GetDecimal(i).ToString(CultureInfo.InvariantCulture)); break;
                            case var t when t == typeof(DateTime) || t == typeof(DateOnly):
                                form.Text(r.GetFieldValue<DateOnly>(i).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)); break;
                            default:
                                throw new InvalidDataException($"usage_events.{columns[i].Name} holds a value of type {r.GetDataTypeName(i)}, which no release writes; the audit record cannot be put in canonical form.");
                        }
                    }
                    var tenantLength = Utf8(r.GetString(TenantIdColumn), ref tenantBytes);
                    var periodLength = Utf8(r.GetFieldValue<DateOnly>(PeriodStartColumn).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), ref periodBytes);
                    var hasJob = !r.IsDBNull(JobIdColumn);
                    var jobLength = hasJob ? Utf8(r.GetString(JobIdColumn), ref jobBytes) : 0;
                    visit(new AuditRecordView(tenantBytes.AsSpan(0, tenantLength), periodBytes.AsSpan(0, periodLength), r.GetBoolean(BillableColumn),
                        r.GetInt64(MicroCreditsColumn), jobBytes.AsSpan(0, jobLength), hasJob, form.Written));
                }
            }
            chunkTx?.Commit();
        }
    }

    private static int Utf8(string value, ref byte[] buffer)
    {
        var needed = Encoding.UTF8.GetMaxByteCount(value.Length);
        if (needed > buffer.Length) buffer = new byte[needed];
        return Encoding.UTF8.GetBytes(value, buffer);
    }

    private static int CanonicalIndex(string column) => AuditCanonicalForm.Columns.Select(c => c.Name).ToList().IndexOf(column);
    private static readonly int TenantIdColumn = CanonicalIndex("tenant_id");
    private static readonly int PeriodStartColumn = CanonicalIndex("period_start");
    private static readonly int BillableColumn = CanonicalIndex("billable");
    private static readonly int MicroCreditsColumn = CanonicalIndex("micro_credits");
    private static readonly int JobIdColumn = CanonicalIndex("job_id");

    public Dictionary<string, Int128> BillablePerPeriod(DbConnection connection, DbTransaction tx, string tenantId, long throughSeq = long.MaxValue) =>
        SumPerPeriod(connection, tx, "SELECT period_start, micro_credits FROM usage_events WHERE tenant_id = @t AND billable AND seq <= @w", tenantId, throughSeq);

    public Dictionary<string, Int128> BillableTotalsPerPeriod(DbConnection connection, DbTransaction tx, string tenantId) =>
        SumPerPeriod(connection, tx, $"SELECT period_start, micro_credits FROM usage_totals WHERE tenant_id = @t AND category = '{UsageCategory.Billable}' AND @w >= 0", tenantId, 0);

    private static Dictionary<string, Int128> SumPerPeriod(DbConnection connection, DbTransaction tx, string sql, string tenantId, long watermark)
    {
        using var cmd = Command(connection, tx, sql);
        cmd.Parameters.AddWithValue("t", tenantId);
        cmd.Parameters.AddWithValue("w", watermark);
        using var r = cmd.ExecuteReader();
        var result = new Dictionary<string, Int128>(StringComparer.Ordinal);
        while (r.Read())
        {
            var period = r.GetDay(0);
            result[period] = result.GetValueOrDefault(period) + r.GetInt64(1);
        }
        return result;
    }

    public List<(string EventId, long Times)> RepeatedEventIds(DbConnection connection, DbTransaction tx, string tenantId, int limit)
    {
        using var cmd = Command(connection, tx, "SELECT event_id, COUNT(*) FROM usage_events WHERE tenant_id = @t GROUP BY event_id HAVING COUNT(*) > 1 LIMIT @n");
        cmd.Parameters.AddWithValue("t", tenantId);
        cmd.Parameters.AddWithValue("n", limit);
        using var r = cmd.ExecuteReader();
        var rows = new List<(string, long)>();
        while (r.Read()) rows.Add((r.GetString(0), r.GetInt64(1)));
        return rows;
    }

    public List<(string? JobId, long Calls, long MicroCredits)> JobsInRange(DbConnection connection, string tenantId, string periodStart,
        long fromSeq, long throughSeq, int limit)
    {
        using var cmd = Command(connection, null, """
            SELECT job_id, COUNT(*), SUM(CASE WHEN billable THEN micro_credits ELSE 0 END)::bigint AS charged
            FROM usage_events WHERE seq > @from AND seq <= @to AND tenant_id = @t AND period_start = @p
            GROUP BY job_id ORDER BY charged DESC LIMIT @n
            """);
        cmd.Parameters.AddWithValue("from", fromSeq);
        cmd.Parameters.AddWithValue("to", throughSeq);
        cmd.Parameters.AddWithValue("t", tenantId);
        cmd.Parameters.AddWithValue("p", PortableSql.ParseDay(periodStart));
        cmd.Parameters.AddWithValue("n", limit);
        using var r = cmd.ExecuteReader();
        var rows = new List<(string?, long, long)>();
        while (r.Read()) rows.Add((r.IsDBNull(0) ? null : r.GetString(0), r.GetInt64(1), r.GetInt64(2)));
        return rows;
    }
}
