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
    [Fact]
    public async Task DeepVerify_AlteringAnyColumnOfAFlushedAuditRecord_IsFound()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme");
        await h.IngestAsync("acme", Events.Call("a"), Events.Meter("m", "image_generation", 2.5m), Events.Call("b", model: "gpt-4o", job: null));
        await h.FlushAsync();
        var verify = h.Get<VerifyLedger>();
        Assert.True((await verify.ExecuteAsync("acme", deep: true)).Intact);

        var columns = Tamper.Columns(h, "usage_events");
        Assert.Equal(AuditCanonicalForm.Columns.Select(c => c.Name).Append("job_ref").Order(), columns.Select(c => c.Name).Order());
        h.AllowChanges("usage_events");
        var row = h.Scalar("SELECT MAX(seq) FROM usage_events");
        foreach (var (column, type) in columns)
        {
            var original = Tamper.Literal(h, "usage_events", column, $"seq = {row}");
            var alter = column == "seq" ? "seq = seq + 1000" : Tamper.Change(column, type);
            h.Execute($"UPDATE usage_events SET {alter} WHERE seq = {row}");
            var altered = await verify.ExecuteAsync("acme", deep: true);
            Assert.False(altered.Intact, $"altering usage_events.{column} went unnoticed");
            var where = column == "seq" ? $"seq = {row + 1000}" : $"seq = {row}";
            h.Execute($"UPDATE usage_events SET {Tamper.Name(column)} = {original} WHERE {where}");
            Assert.True((await verify.ExecuteAsync("acme", deep: true)).Intact, $"restoring {column} failed");
        }
    }
}
