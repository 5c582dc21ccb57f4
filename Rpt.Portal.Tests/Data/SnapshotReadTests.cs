using Rpt.Portal.Data;

namespace Rpt.Portal.Tests.Data;

/// <summary>
/// A read of several statements in one command and one snapshot (on PostgreSQL, BEGIN and COMMIT in the command's own
/// text): what an operator would check is that it answers each statement in order, and that one that fails, or a reader
/// left before its end, never leaves a transaction open on a pooled connection for the next request to inherit.
/// </summary>
[Trait("Kind", "Sqlite")]
public class SnapshotReadTests
{
    [Fact]
    public async Task ASnapshotRead_AnswersEachStatementInOrder_AndLeavesNoTransactionBehind_EvenWhenAStatementFails()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme");
        var database = h.Get<PortalDatabase>();

        using (var connection = database.Open())
        using (var read = database.ReadOneSnapshot(connection, "SELECT id FROM tenants WHERE id = @t; SELECT COUNT(*) FROM tenants WHERE id = @t;"))
        {
            read.Command.With("t", "acme");
            using var r = read.Command.ExecuteReader();
            Assert.True(r.Read());
            Assert.Equal("acme", r.GetString(0));
            Assert.True(r.NextResult());
            Assert.True(r.Read());
            Assert.Equal(1L, Convert.ToInt64(r.GetValue(0)));
        }

        for (var i = 0; i < 3; i++)
        {
            using (var connection = database.Open())
            using (var read = database.ReadOneSnapshot(connection, "SELECT id FROM tenants; SELECT x FROM no_such_table;"))
            {
                Assert.ThrowsAny<System.Data.Common.DbException>(() =>
                {
                    using var r = read.Command.ExecuteReader();
                    while (r.Read()) { }
                    r.NextResult();
                    while (r.Read()) { }
                });
            }
            using (var connection = database.Open())
            using (var read = database.ReadOneSnapshot(connection, "SELECT id FROM tenants; SELECT id FROM tenants;"))
            {
                using var r = read.Command.ExecuteReader();
                Assert.True(r.Read()); // and left there, before the second statement and the end of the transaction
            }
        }

        // Every pooled connection is out of any transaction: each can begin its own and write.
        var connections = Enumerable.Range(0, 4).Select(_ => database.Open()).ToList();
        try
        {
            foreach (var (connection, n) in connections.Select((c, n) => (c, n)))
            {
                using var tx = connection.BeginTransaction();
                using var cmd = connection.Command("UPDATE tenants SET name = @n WHERE id = 'acme'", tx).With("n", $"Acme {n}");
                Assert.Equal(1, cmd.ExecuteNonQuery());
                tx.Commit();
                if (database.Engine == StorageEngine.Sqlite) break; // one writer at a time: the first proves the file's lock is free
            }
        }
        finally
        {
            connections.ForEach(c => c.Dispose());
        }
    }
}
