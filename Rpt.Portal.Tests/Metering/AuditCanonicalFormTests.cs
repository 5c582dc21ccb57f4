using Rpt.Portal.Data.Sqlite;
using System.Text;
using Rpt.Portal.Data;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Tests.Metering;

/// <summary>
/// The canonical form of an audit record is built in C#, so that every engine gives the same bytes; version 1 is, byte for
/// byte, what the first releases had SQLite compute, so every digest already in a ledger still verifies.
/// </summary>
[Trait("Kind", "Sqlite")]
public class AuditCanonicalFormTests
{
    /// <summary>The expression the first releases hashed (length(CAST(x AS TEXT)) || ':' || CAST(x AS TEXT) || ';').</summary>
    private static readonly string FirstReleasesExpression = string.Join(" || ", AuditCanonicalForm.Columns.Take(AuditCanonicalForm.CoreColumns).Select(c =>
        $"(CASE WHEN {c.Name} IS NULL THEN '-;' ELSE length(CAST({c.Name} AS TEXT)) || ':' || CAST({c.Name} AS TEXT) || ';' END)"));

    // SQLite only: it compares with what SQLite's own text formatting computed in the first releases.
    [Trait("Engine", "Sqlite")]
    [Fact]
    public async Task Version1_BuiltInCSharp_EqualsWhatTheFirstReleasesHadSqliteCompute_ForEveryKindOfRecord()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme");
        var random = new Random(7);
        string Odd(int i) => i switch
        {
            0 => "ascii",
            1 => "émoji 😀 and ß",
            2 => "中文字符",
            3 => new string('x', 128),
            _ => "a𝄞b" + random.Next(),
        };
        var events = new List<UsageEventInput>();
        for (var i = 0; i < 60; i++)
        {
            var e = i % 4 == 3
                ? Events.Meter($"m-{i}-{Odd(i % 5 == 3 ? 1 : i % 5)}", "image_generation", 1 + random.Next(1, 999_999) / 1_000_000m, job: i % 2 == 0 ? null : Odd(i % 5))
                : Events.Call($"c-{i}-{Odd(i % 5 == 3 ? 2 : i % 5)}", model: i % 3 == 0 ? "gpt-4o" : "gpt-4o-mini", input: random.Next(0, 100_000), output: random.Next(0, 5_000),
                    cached: random.Next(0, 1_000), status: i % 7 == 0 ? "failed" : "succeeded", @internal: i % 5 == 0,
                    job: i % 6 == 0 ? null : Odd(i % 5), feature: i % 4 == 0 ? null : Odd((i + 1) % 5));
            events.Add(e);
        }
        Assert.Equal(60, (await h.IngestAsync("acme", [.. events])).Accepted);

        var expected = new List<byte[]>();
        using (var c = h.OpenRaw())
        using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = $"SELECT {FirstReleasesExpression} FROM usage_events ORDER BY seq";
            using var r = cmd.ExecuteReader();
            while (r.Read()) expected.Add(Encoding.UTF8.GetBytes(r.GetString(0)));
        }
        var built = new List<byte[]>();
        using (var c = h.OpenRaw())
        {
            h.Get<IUsageStore>().VisitRange(c, null, 0, h.Get<IUsageStore>().MaxSeq(c), "acme", null, (in AuditRecordView v) => built.Add(v.Canonical.ToArray()));
        }
        Assert.Equal(60, expected.Count);
        Assert.Equal(expected.Count, built.Count);
        for (var i = 0; i < expected.Count; i++)
            Assert.True(expected[i].AsSpan().SequenceEqual(built[i]), $"record {i}: SQLite {Encoding.UTF8.GetString(expected[i])}\n C# {Encoding.UTF8.GetString(built[i])}");
    }

    [Fact]
    public void Version1_OfOneRecord_IsTheSpecifiedText()
    {
        var form = new AuditCanonicalForm.Builder();
        form.Integer(42); form.Text("acme"); form.Text("call_😀"); form.Integer(1_775_032_200_000); form.Integer(-5);
        form.Null(); form.Text("2026-04-01");
        Assert.Equal("2:42;4:acme;6:call_😀;13:1775032200000;2:-5;-;10:2026-04-01;", Encoding.UTF8.GetString(form.Written));
    }

    [Fact]
    public void TheWritersColumns_AreTheCanonicalFormsColumns_InItsOrder()
    {
        Assert.Equal(AuditCanonicalForm.Columns.Select(c => c.Name).Append("job_ref"), SqliteUsageStore.ColumnNames);
    }

    [Theory]
    [InlineData("id")]
    [InlineData("feature")]
    [InlineData("job_id")]
    [InlineData("user_id")]
    public async Task TextWithANulOrAHalfSurrogate_IsRejectedByItself_NamingTheField(string field)
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme");
        UsageEventInput With(string id, string value)
        {
            var e = Events.Call(id);
            switch (field)
            {
                case "id": e.Id = id + value; break;
                case "feature": e.Feature = value; break;
                case "job_id": e.JobId = value; break;
                default: e.UserId = value; break;
            }
            return e;
        }
        var result = await h.IngestAsync("acme", With("nul", "a\0b"), With("half", "a\ud800b"), With("pair", "a😀b"));
        Assert.Equal([IngestStatus.Rejected, IngestStatus.Rejected, IngestStatus.Accepted], result.Results.Select(r => r.Status));
        Assert.StartsWith($"{field} contains a NUL character", result.Results[0].Error);
        Assert.StartsWith($"{field} contains an unpaired surrogate", result.Results[1].Error);
    }
}
