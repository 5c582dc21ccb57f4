using Rpt.Portal.Data.Sqlite;
using Rpt.Portal.Ledger;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Tests.Metering;

[Trait("Kind", "Sqlite")]
public class UsageStoreTests
{
    /// <summary>
    /// The digest a consumption entry carries covers every column of the audit table: altering any one value of
    /// any column of a flushed record is found by the deep verifier. A column added to the table without being
    /// added to the store's column list fails here (before, received_at, tenant_id and period_start were outside it).
    /// </summary>
    // SQLite only: it alters each column through SQLite's quote() and pragma_table_info.
    [Trait("Engine", "Sqlite")]
    [Fact]
    public async Task DeepVerify_AlteringAnyColumnOfAFlushedAuditRecord_IsFound()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme");
        await h.IngestAsync("acme", Events.Call("a"), Events.Meter("m", "image_generation", 2.5m), Events.Call("b", model: "gpt-4o", job: null));
        await h.FlushAsync();
        var verify = h.Get<VerifyLedger>();
        Assert.True((await verify.ExecuteAsync("acme", deep: true)).Intact);

        var columns = new List<string>();
        using (var c = h.OpenRaw())
        using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = "SELECT name FROM pragma_table_info('usage_events')";
            using var r = cmd.ExecuteReader();
            while (r.Read()) columns.Add(r.GetString(0));
        }
        Assert.Equal(columns.Order(), SqliteUsageStore.ColumnNames.Order());
        h.AllowChanges("usage_events");
        var row = h.Scalar("SELECT MAX(seq) FROM usage_events");
        foreach (var column in columns)
        {
            var original = h.Scalar($"SELECT COUNT(*) FROM usage_events WHERE seq = {row} AND {column} IS NULL") == 1 ? "NULL" : Quote(h, $"SELECT quote({column}) FROM usage_events WHERE seq = {row}");
            var alter = column == "seq" ? $"seq = seq + 1000"
                : $"{column} = CASE WHEN {column} IS NULL THEN 'x' WHEN typeof({column}) = 'integer' THEN {column} + 1 ELSE {column} || 'x' END";
            h.Execute($"UPDATE usage_events SET {alter} WHERE seq = {row}");
            var altered = await verify.ExecuteAsync("acme", deep: true);
            Assert.False(altered.Intact, $"altering usage_events.{column} went unnoticed");
            var where = column == "seq" ? $"seq = {row + 1000}" : $"seq = {row}";
            h.Execute($"UPDATE usage_events SET {column} = {original} WHERE {where}");
            Assert.True((await verify.ExecuteAsync("acme", deep: true)).Intact, $"restoring {column} failed");
        }
    }

    private static string Quote(PortalHarness h, string sql)
    {
        using var c = h.OpenRaw();
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        return (string)cmd.ExecuteScalar()!;
    }
}
