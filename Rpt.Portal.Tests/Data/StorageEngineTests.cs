using System.Text;
using Microsoft.Extensions.Configuration;
using Rpt.Portal.Cli;
using Rpt.Portal.Ledger;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Tests.Data;

/// <summary>
/// The two engines side by side on a real cluster: the same events give byte-identical audit records, digests and chain
/// heads; a SQLite database moves to PostgreSQL with <c>data copy</c> and verifies there; a storage setting that cannot
/// work stops start-up with one line that names it.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Kind", "Postgres")]
public sealed class StorageEngineTests(PostgresCluster cluster)
{
    /// <summary>The harnesses' clock; the events are of the hour before it, in the tenant's first period.</summary>
    private static readonly DateTimeOffset Now = PortalHarness.DefaultStart.AddDays(1);
    private static readonly DateTimeOffset Start = Now.AddHours(-1);

    /// <summary>Every kind of record the canonical form meets: models and meters, quantities with trailing zeros, no job, failures, internal calls, non-ASCII text.</summary>
    private static UsageEventInput[] Mixed() =>
    [
        .. Enumerable.Range(0, 40).Select(i => Events.Call($"call-{i}", input: 1000 + i, output: i * 7, cached: i % 3, at: Start.AddMinutes(i),
            job: i % 4 == 0 ? null : $"job-{i % 5}", feature: i % 6 == 0 ? null : "résumé_✓", status: i % 9 == 0 ? "failed" : "succeeded", @internal: i % 11 == 0)),
        new() { Id = "meter-1", OccurredAt = Start.AddMinutes(50), Provider = "openai", Meter = "image_generation", Quantity = 2.50m, JobId = "job-1", UserId = "ü" },
        new() { Id = "meter-2", OccurredAt = Start.AddMinutes(55), Provider = "openai", Meter = "image_generation", Quantity = 1m },
    ];

    [Fact]
    public async Task TheSameEvents_OnBothEngines_GiveByteIdenticalAuditRecords_Digests_AndChainHeads()
    {
        await using var sqlite = await PortalHarness.StartAsync(new Dictionary<string, string?> { ["Rpt:Data:Provider"] = "Sqlite" }, start: Now);
        await using var postgres = await PortalHarness.StartAsync(new Dictionary<string, string?>
        {
            ["Rpt:Data:Provider"] = "Postgres", ["ConnectionStrings:Rpt"] = await cluster.CreateDatabaseAsync(),
        }, start: Now);
        var forms = new List<List<string>>();
        var heads = new List<string>();
        foreach (var h in new[] { sqlite, postgres })
        {
            await h.CreateTenantAsync("acme");
            var result = await h.IngestAsync("acme", Mixed());
            Assert.True(Mixed().Length == result.Accepted, string.Join("; ", result.Results.Where(r => r.Error is not null).Select(r => r.Error).Distinct()));
            Assert.Equal(0, (await h.IngestAsync("acme", Mixed())).Accepted); // every id again: each a duplicate
            await h.FlushAsync();
            var verified = await h.Get<VerifyLedger>().ExecuteAsync("acme", deep: true);
            Assert.True(verified.Intact, string.Join("; ", verified.Problems));
            heads.Add(verified.HeadHash);
            var store = h.Get<IUsageStore>();
            var records = new List<string>();
            using (var c = h.OpenDb()) store.VisitRange(c, null, 0, store.MaxSeq(c), "acme", null, (in AuditRecordView v) => records.Add(Encoding.UTF8.GetString(v.Canonical)));
            forms.Add(records);
        }
        Assert.Equal(Mixed().Length, forms[0].Count);
        Assert.Equal(forms[0], forms[1]);
        Assert.Equal(heads[0], heads[1]);
        Assert.Equal(sqlite.Balance("acme").ConsumedMicroCredits, postgres.Balance("acme").ConsumedMicroCredits);
    }

    [Fact]
    public async Task DataCopy_MovesASqliteDatabaseToPostgres_VerifiesEveryTenantThere_AndRefusesASecondRun()
    {
        var dir = PortalHarness.NewDirectory();
        var source = new Dictionary<string, string?> { ["ConnectionStrings:Rpt"] = $"Data Source={Path.Combine(dir, "rpt.db")}", ["Rpt:Stripe:TestMode"] = "true" };
        await using (var h = await PortalHarness.StartAsync(source, start: Now, directory: dir))
        {
            foreach (var t in new[] { "acme", "globex" })
            {
                await h.CreateTenantAsync(t);
                Assert.Equal(Mixed().Length, (await h.IngestAsync(t, Mixed())).Accepted);
            }
            await h.FlushAsync();
            Assert.Equal(1, (await h.IngestAsync("acme", Events.Call("after-the-flush", at: Now))).Accepted); // accepted, not yet in the ledger: the copy flushes first
        }
        var target = await cluster.CreateDatabaseAsync();
        async Task<(int, string, string)> Copy()
        {
            var stdout = new StringWriter();
            var stderr = new StringWriter();
            var exit = await OperatorCli.RunAsync(["data", "copy", "--to", target], stdout, stderr, b => b.Configuration.AddInMemoryCollection(source));
            return (exit, stdout.ToString(), stderr.ToString());
        }
        var (exit, output, error) = await Copy();
        Assert.True(exit == 0, output + error);
        Assert.Matches(@"usage_events\s+85 rows", output);
        Assert.Matches(@"AspNetRoles\s+\d+ rows", output);
        Assert.Matches(@"acme\s+\d+ [0-9a-f]{12}…\s+\d+\s+\d+  intact, equal", output);
        Assert.Contains("every tenant's chain and balance verified on the copy (2 tenants)", output);

        await using (var copy = await PortalHarness.StartAsync(new Dictionary<string, string?> { ["Rpt:Data:Provider"] = "Postgres", ["ConnectionStrings:Rpt"] = target }, start: Now))
        {
            // The copy goes on where the source stopped: a known id is a duplicate, a new one is accepted.
            Assert.Equal(0, (await copy.IngestAsync("acme", Events.Call("after-the-flush", at: Now))).Accepted);
            Assert.Equal(1, (await copy.IngestAsync("acme", Events.Call("on-postgres", at: Now))).Accepted);
            await copy.FlushAsync();
            Assert.True((await copy.Get<VerifyLedger>().ExecuteAsync("acme", deep: true)).Intact);
        }

        var (again, _, refused) = await Copy();
        Assert.Equal(1, again);
        Assert.Contains("the target database is not empty", refused);
    }

    [Theory]
    [InlineData("Postgress", "Data Source=x.db", "Rpt:Data:Provider is 'Postgress': it must be Sqlite (the default) or Postgres.")]
    [InlineData("Postgres", "Data Source=x.db", "ConnectionStrings:Rpt is not a PostgreSQL connection string (Rpt:Data:Provider is Postgres)")]
    [InlineData("Sqlite", "Host=db;Database=rpt", "ConnectionStrings:Rpt is not a SQLite connection string (Rpt:Data:Provider is Sqlite)")]
    [InlineData("Postgres", "Host=127.0.0.1;Port=1;Database=rpt;Username=rpt;Timeout=3", "ConnectionStrings:Rpt: the Postgres database at 127.0.0.1:1/rpt cannot be opened")]
    public Task AStorageSettingThatCannotWork_StopsStartUp_WithOneLineNamingIt(string provider, string connectionString, string expected) =>
        StartUpRefusedAsync(new() { ["Rpt__Data__Provider"] = provider, ["ConnectionStrings__Rpt"] = connectionString }, expected);

    /// <summary>Hostile or mistaken values of the keys' certificate and of the instance's name: one line naming the setting, never a stack trace.</summary>
    [Theory]
    [InlineData("missing", "Rpt:Data:KeysCertificate (")]
    [InlineData("garbage", "Rpt:Data:KeysCertificate (")]
    [InlineData("wrong-password", "Rpt:Data:KeysCertificate (")]
    [InlineData("instance-name", "Rpt:InstanceName must be 1 to 64 letters, digits")]
    public async Task AKeysCertificateOrInstanceNameThatCannotWork_StopsStartUp_WithOneLineNamingIt(string what, string expected)
    {
        var dir = PortalHarness.NewDirectory();
        var env = new Dictionary<string, string> { ["ConnectionStrings__Rpt"] = $"Data Source={Path.Combine(dir, "rpt.db")}" };
        switch (what)
        {
            case "missing":
                env["Rpt__Data__KeysCertificate"] = Path.Combine(dir, "no-such.pfx");
                break;
            case "garbage":
                var garbage = Path.Combine(dir, "garbage.pfx");
                // The same bytes on every run (a failure can be reproduced): a DER SEQUENCE whose length is right, so the
                // certificate parser reads into its content, and noise from a seeded generator inside it.
                var bytes = new byte[4096];
                new Random(22).NextBytes(bytes);
                (bytes[0], bytes[1], bytes[2], bytes[3]) = (0x30, 0x82, 0x0F, 0xFC);
                await File.WriteAllBytesAsync(garbage, bytes);
                env["Rpt__Data__KeysCertificate"] = garbage;
                break;
            case "wrong-password":
                using (var rsa = System.Security.Cryptography.RSA.Create(2048))
                {
                    var request = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=rpt-keys", rsa,
                        System.Security.Cryptography.HashAlgorithmName.SHA256, System.Security.Cryptography.RSASignaturePadding.Pkcs1);
                    using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow, DateTimeOffset.UtcNow.AddYears(1));
                    var pfx = Path.Combine(dir, "keys.pfx");
                    await File.WriteAllBytesAsync(pfx, cert.Export(System.Security.Cryptography.X509Certificates.X509ContentType.Pfx, "the-right-one"));
                    env["Rpt__Data__KeysCertificate"] = pfx;
                    env["Rpt__Data__KeysCertificatePassword"] = "a-wrong-one";
                }
                break;
            default:
                env["Rpt__InstanceName"] = "portal a; DROP TABLE tenants\n" + new string('x', 100);
                break;
        }
        await StartUpRefusedAsync(env, expected, dir);
    }

    private static async Task StartUpRefusedAsync(Dictionary<string, string> settings, string expected, string? dir = null)
    {
        dir ??= PortalHarness.NewDirectory();
        var psi = new System.Diagnostics.ProcessStartInfo("dotnet") { WorkingDirectory = AppContext.BaseDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Rpt.Portal.dll"));
        psi.ArgumentList.Add("--urls");
        psi.ArgumentList.Add("http://127.0.0.1:0");
        foreach (var (k, v) in settings) psi.Environment[k] = v;
        psi.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        psi.Environment["ASPNETCORE_CONTENTROOT"] = dir;
        using var process = System.Diagnostics.Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"the portal started with {string.Join(", ", settings.Select(s => $"{s.Key}={s.Value}"))}: {await stdout}");
        }
        var lines = (await stderr).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(1, process.ExitCode);
        Assert.True(lines.Length == 1, $"not one line: {await stderr}");
        Assert.StartsWith("Rpt Portal cannot start: " + expected, lines[0]);
    }
}
