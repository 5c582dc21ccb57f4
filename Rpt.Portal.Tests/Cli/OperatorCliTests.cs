using Microsoft.Extensions.Configuration;
using Rpt.Portal.Cli;

namespace Rpt.Portal.Tests.Cli;

[Trait("Kind", "Sqlite")]
public class OperatorCliTests : IDisposable
{
    private readonly string _dir = PortalHarness.NewDirectory();
    private Dictionary<string, string?> Database => TestEngine.DatabaseSettings(_dir);

    private async Task<(int Exit, string Out, string Err)> Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var exit = await OperatorCli.RunAsync(args, stdout, stderr, b => b.Configuration.AddInMemoryCollection(Database));
        return (exit, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public async Task TenantsCreate_PrintsTheTenantIdAndAKeyThatReadsAndIngests()
    {
        var (exit, output, _) = await Run("tenants", "create", "--name", "Acme Corp", "--plan", "professional");
        Assert.Equal(0, exit);
        var lines = output.TrimEnd().Split('\n');
        Assert.Equal(2, lines.Length);
        Assert.Equal("tenant_id: acme-corp", lines[0]);
        Assert.Matches("^api_key: rpt_[0-9A-Za-z]{33}$", lines[1]);

        var (_, list, _) = await Run("tenants", "list");
        Assert.Contains("acme-corp", list);
        Assert.Contains("25000", list);
    }

    [Fact]
    public async Task KeysListAndRevoke_AnOperatorSeesEveryKeyAndRevokesOne_ThePlansLimitIsKept()
    {
        await Run("tenants", "create", "--name", "Acme", "--plan", "free", "--id", "acme"); // one key made; free allows 2
        var (exit, created, _) = await Run("keys", "create", "--tenant", "acme", "--name", "worker", "--scopes", "read");
        Assert.Equal(0, exit);
        var (refused, _, error) = await Run("keys", "create", "--tenant", "acme", "--name", "third");
        Assert.Equal(1, refused);
        Assert.Contains("allows 2 active API keys", error);

        var (_, list, _) = await Run("keys", "list", "--tenant", "acme");
        var worker = list.Split('\n').Single(l => l.TrimEnd().EndsWith(" worker", StringComparison.Ordinal));
        Assert.Contains(" read ", worker);
        Assert.Contains(" active ", worker);
        Assert.Contains(created.Trim()["api_key: ".Length..][..12], worker);
        var id = worker.Split(' ')[0];

        var (revoked, output, _) = await Run("keys", "revoke", "--tenant", "acme", "--id", id);
        Assert.Equal(0, revoked);
        Assert.Equal($"revoked: {id}", output.Trim());
        Assert.Contains(" revoked ", (await Run("keys", "list", "--tenant", "acme")).Out.Split('\n').Single(l => l.StartsWith(id, StringComparison.Ordinal)));
        Assert.Equal(1, (await Run("keys", "revoke", "--tenant", "other", "--id", id)).Exit);
    }

    [Fact]
    public async Task UsersCreate_MakesAConfirmedSignInWithAGeneratedPassword_OnceAnAddress()
    {
        await Run("tenants", "create", "--name", "Acme", "--plan", "starter", "--id", "acme");
        var (exit, output, _) = await Run("users", "create", "--tenant", "acme", "--email", "ops@acme.test", "--role", "admin");
        Assert.Equal(0, exit);
        Assert.Matches("^email: ops@acme.test\npassword: Rpt-[0-9a-f]{18}!$", output.Trim().Replace("\r", ""));
        Assert.Equal(1, (await Run("users", "create", "--tenant", "acme", "--email", "ops@acme.test")).Exit);
        Assert.Contains("unknown tenant 'ghost'", (await Run("users", "create", "--tenant", "ghost", "--email", "a@b.test")).Err);
        Assert.Equal(2, (await Run("users", "create", "--tenant", "acme", "--email", "x@acme.test", "--role", "god")).Exit);
    }

    [Fact]
    public async Task TenantsCreate_UnknownPlan_FailsOnStderrNamingThePlans()
    {
        var (exit, output, error) = await Run("tenants", "create", "--name", "Acme", "--plan", "gold");
        Assert.Equal(1, exit);
        Assert.Equal("", output);
        Assert.Contains("unknown plan 'gold'; the plans are: free, starter, professional, business, enterprise", error);
    }

    [Fact]
    public async Task TenantsCreate_MissingOption_IsAUsageError()
    {
        var (exit, _, error) = await Run("tenants", "create", "--plan", "free");
        Assert.Equal(2, exit);
        Assert.Contains("Option '--name' is required", error);
        Assert.Contains("--plan <PLAN> (REQUIRED)", error); // and the command's help
    }

    [Fact]
    public async Task UsageImport_JsonLines_AcceptsTheGoodLinesAndReportsTheBadOnesByLineNumber()
    {
        await Run("tenants", "create", "--name", "Acme", "--plan", "free", "--id", "acme");
        var file = Path.Combine(_dir, "usage.jsonl");
        await File.WriteAllLinesAsync(file,
        [
            """{"id":"c1","tenant_id":"acme","occurred_at":"2026-01-05T10:00:00Z","model":"gpt-4o-mini","input_tokens":3200,"output_tokens":740}""",
            """{"id":"c2","tenant_id":"acme","occurred_at":"2026-01-05T10:00:01Z","model":"mystery-model","input_tokens":1}""",
            """not json""",
            "",
            """{"id":"c1","tenant_id":"acme","occurred_at":"2026-01-05T10:00:00Z","model":"gpt-4o-mini","input_tokens":3200,"output_tokens":740}""",
            """{"id":"c3","tenant_id":"acme","occurred_at":"2026-01-05T10:00:02Z","provider":"openai","meter":"image_generation","quantity":2}""",
        ]);
        var (exit, output, error) = await Run("usage", "import", file);
        Assert.Equal(1, exit);
        Assert.Contains("accepted: 2, duplicates: 1, rejected: 2", output);
        Assert.Contains("line 2: rejected: unknown model 'mystery-model'", error);
        Assert.Contains("line 3: rejected: not a usage event", error);

        var (flushExit, flushed, _) = await Run("ledger", "flush");
        Assert.Equal(0, flushExit);
        Assert.Contains("flushed: 2 events into 1 consumption entries", flushed);
        var (verifyExit, verified, _) = await Run("ledger", "verify", "--tenant", "acme", "--deep");
        Assert.Equal(0, verifyExit);
        Assert.Matches("acme: intact, 2 entries, head [0-9a-f]{64}, audit records reconciled", verified);
    }

    [Fact]
    public async Task EveryChange_LeavesAnAuditRecord_WhoWhenWhatBeforeAfter_AndTheChainFindsAnAlteredOne()
    {
        Assert.Equal(0, (await Run("tenants", "create", "--name", "Acme", "--plan", "free", "--id", "acme", "--as", "ops@rpt.test")).Exit);
        Assert.Equal(0, (await Run("credits", "grant", "--tenant", "acme", "--credits", "500", "--source", "adjustment", "--key", "fix-1",
            "--reason", "refund of an outage", "--as", "ops@rpt.test")).Exit);
        Assert.Contains("already granted", (await Run("credits", "grant", "--tenant", "acme", "--credits", "500", "--source", "adjustment",
            "--key", "fix-1", "--as", "ops@rpt.test")).Out); // nothing changed, so nothing is recorded
        var keyId = System.Text.RegularExpressions.Regex.Match((await Run("keys", "list", "--tenant", "acme")).Out, "[0-9a-f]{8}-[0-9a-f-]{27}").Value;
        Assert.Equal(0, (await Run("keys", "revoke", "--tenant", "acme", "--id", keyId, "--as", "lead@rpt.test")).Exit);
        Assert.Equal(0, (await Run("users", "create", "--tenant", "acme", "--email", "admin@acme.test", "--role", "admin")).Exit);

        var (exit, list, _) = await Run("audit", "list");
        Assert.Equal(0, exit);
        var lines = list.TrimEnd().Split('\n');
        Assert.Equal(4, lines.Length);
        Assert.Matches($@"^\s+4 \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ {System.Text.RegularExpressions.Regex.Escape(Environment.UserName)} \(cli@{System.Text.RegularExpressions.Regex.Escape(Environment.MachineName)}\) user\.create tenant=acme subject=admin@acme.test old=- new={{""role"":""admin""}}", lines[0]);
        Assert.Contains($"lead@rpt.test (cli@{Environment.MachineName}) key.revoke tenant=acme subject={keyId} old={{\"status\":\"active\"}} new={{\"status\":\"revoked\"}}", lines[1]);
        Assert.Contains("ops@rpt.test", lines[2]);
        Assert.Contains("credits.grant tenant=acme subject=ledger seq 2 old=- new={\"credits\":500,\"source\":\"adjustment\",\"key\":\"fix-1\",\"reason\":\"refund of an outage\"", lines[2]);
        Assert.Contains("tenant.create tenant=acme subject=acme", lines[3]);
        Assert.Empty((await Run("audit", "list", "--tenant", "other")).Out.Trim());
        Assert.Single((await Run("audit", "list", "--limit", "1")).Out.TrimEnd().Split('\n'));

        var (intact, verified, _) = await Run("audit", "verify");
        Assert.Equal(0, intact);
        Assert.Matches("^audit log intact: 4 records, head [0-9a-f]{64}", verified);

        using (var c = TestEngine.Open(Database))
        {
            // Append-only: the database itself refuses to change a record.
            Assert.ThrowsAny<System.Data.Common.DbException>(() => c.Command("UPDATE operator_audit SET actor = 'someone else' WHERE seq = 2").ExecuteNonQuery());
            c.Command((TestEngine.IsPostgres ? "ALTER TABLE operator_audit DISABLE TRIGGER USER;" : "DROP TRIGGER operator_audit_no_update;")
                + " UPDATE operator_audit SET new_value = replace(new_value, '500', '5000') WHERE seq = 2").ExecuteNonQuery();
        }
        var (broken, report, _) = await Run("audit", "verify");
        Assert.Equal(1, broken);
        Assert.Contains("audit log NOT intact", report);
        Assert.Contains("seq 2: stored hash", report);
        Assert.Contains("the record was altered", report);
    }

    [Fact]
    public async Task UsersCreateOperator_MakesPlatformStaffWithoutATenant_AndRecordsIt()
    {
        var (exit, output, _) = await Run("users", "create", "--operator", "--email", "ops@rpt.test", "--as", "founder@rpt.test");
        Assert.Equal(0, exit);
        Assert.Contains("email: ops@rpt.test", output);
        Assert.Contains("founder@rpt.test", (await Run("audit", "list")).Out);
        Assert.Contains("user.create tenant=- subject=ops@rpt.test old=- new={\"role\":\"operator\"}", (await Run("audit", "list")).Out);
        var (misused, _, error) = await Run("users", "create", "--operator", "--tenant", "acme", "--email", "x@rpt.test");
        Assert.Equal(2, misused);
        Assert.Contains("--operator is platform staff", error);
    }

    [Fact]
    public async Task AMisspeltOption_ExitsTwoNamingIt_AndChangesNothing()
    {
        await Run("tenants", "create", "--name", "Acme", "--plan", "free", "--id", "acme");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var (exit, _, error) = await Run("credits", "grant", "--tenant", "acme", "--credits", "500", "--source", "top_up", "--key", "k-1", "--expire", "2027-01-01");
        Assert.Equal(2, exit);
        Assert.Contains("'credits grant' has no option --expire; it takes --tenant, --credits, --source, --key, --reason, --expires (and --as EMAIL)", error);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"{clock.ElapsedMilliseconds} ms: the usage error should come before the database is opened");
        Assert.DoesNotContain("top_up", (await Run("audit", "list")).Out);
        Assert.Equal(2, (await Run("tenants", "list", "--all")).Exit);
    }

    [Fact]
    public async Task LedgerVerify_TamperedLedger_ExitsNonZeroAndSaysWhere()
    {
        await Run("tenants", "create", "--name", "Acme", "--plan", "free", "--id", "acme");
        using (var c = TestEngine.Open(Database))
        {
            c.Command((TestEngine.IsPostgres ? "ALTER TABLE ledger_entries DISABLE TRIGGER USER;" : "DROP TRIGGER ledger_entries_no_update;")
                + " UPDATE ledger_entries SET amount_micro_credits = 999000000000").ExecuteNonQuery();
        }
        var (exit, output, error) = await Run("ledger", "verify");
        Assert.Equal(1, exit);
        Assert.Contains("acme: BROKEN", output);
        Assert.Contains("seq 1: stored hash", error);
    }

    [Fact]
    public async Task CreditsGrant_TopUpRetried_GrantsOnce()
    {
        await Run("tenants", "create", "--name", "Acme", "--plan", "free", "--id", "acme");
        var first = await Run("credits", "grant", "--tenant", "acme", "--credits", "500", "--source", "top_up", "--key", "inv-1");
        var retry = await Run("credits", "grant", "--tenant", "acme", "--credits", "500", "--source", "top_up", "--key", "inv-1");
        Assert.StartsWith("granted: 500 credits", first.Out);
        Assert.StartsWith("already granted", retry.Out);
        Assert.Contains(" 1500 ", (await Run("tenants", "list")).Out);
    }

    /// <summary>Every command of the tree answers --help with its options, and exits 0 without opening the database.</summary>
    [Fact]
    public async Task EveryCommand_AnswersHelp_WithItsOptions()
    {
        var (_, leaves, _) = CommandTree.Build();
        Assert.Equal(17, leaves.Count); // every command of the usage, none forgotten
        foreach (var leaf in leaves.Values)
        {
            var (exit, output, _) = await Run(leaf.Group, leaf.Name, "--help");
            Assert.True(exit == 0, $"{leaf.Group} {leaf.Name} --help exited {exit}");
            Assert.Contains($" {leaf.Group} {leaf.Name} ", output); // its usage line
            foreach (var option in leaf.Options.Keys) Assert.Contains("--" + option, output);
        }
        var (rootExit, rootHelp, _) = await Run("--help");
        Assert.Equal(0, rootExit);
        Assert.Contains("Rpt Portal operator commands", rootHelp);
        Assert.False(File.Exists(Path.Combine(_dir, "rpt.db")), "help opened the database");
    }

    [Fact]
    public async Task AnUnknownCommand_Exits2WithinASecond()
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var (exit, _, error) = await Run("tenats", "list");
        Assert.Equal(2, exit);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"{clock.ElapsedMilliseconds} ms");
        Assert.Contains("unknown command 'tenats list'", error);
    }

    [Fact]
    public async Task CreditsVoid_VoidsWhatTheGrantHolds_Once_AndLeavesAnAuditRecord()
    {
        await Run("tenants", "create", "--name", "Acme", "--plan", "free", "--id", "acme");
        await Run("credits", "grant", "--tenant", "acme", "--credits", "500", "--source", "top_up", "--key", "inv-1"); // seq 2
        var first = await Run("credits", "void", "--tenant", "acme", "--grant", "2", "--key", "t-1", "--reason", "Paid twice", "--as", "ops@rpt.example");
        Assert.Equal(0, first.Exit);
        Assert.StartsWith("voided: 500 credits of grant #2, ledger seq 3", first.Out);
        Assert.StartsWith("already voided", (await Run("credits", "void", "--tenant", "acme", "--grant", "2", "--key", "t-1", "--reason", "Paid twice")).Out);
        var noReason = await Run("credits", "void", "--tenant", "acme", "--grant", "2", "--key", "t-2");
        Assert.Equal(2, noReason.Exit);
        Assert.Contains("--reason", noReason.Err);
        Assert.Contains(" 1000 ", (await Run("tenants", "list")).Out);
        var audit = (await Run("audit", "list", "--tenant", "acme")).Out;
        Assert.Contains("credits.void", audit);
        Assert.Contains("ops@rpt.example", audit);
    }

    [Fact]
    public async Task CreditsGrant_WithAnExpiry_AndTheReportLog()
    {
        await Run("tenants", "create", "--name", "Acme", "--plan", "free", "--id", "acme");
        var bad = await Run("credits", "grant", "--tenant", "acme", "--credits", "500", "--source", "adjustment", "--key", "k1", "--expires", "soon");
        Assert.Equal(2, bad.Exit);
        Assert.Contains("--expires 'soon' is not a date", bad.Err);
        var past = await Run("credits", "grant", "--tenant", "acme", "--credits", "500", "--source", "adjustment", "--key", "k2", "--expires", "2000-01-01");
        Assert.Equal(1, past.Exit);
        Assert.Contains("is not in the future", past.Err);
        var ok = await Run("credits", "grant", "--tenant", "acme", "--credits", "500", "--source", "adjustment", "--key", "k3", "--expires", "2099-06-15");
        Assert.StartsWith("granted: 500 credits", ok.Out);
        var log = await Run("reports", "list", "--tenant", "acme");
        Assert.Equal(0, log.Exit);
        Assert.StartsWith("identifier\tperiod\tcredits\treported_total\tstatus", log.Out);
    }

    [Fact]
    public async Task PricesList_ShowsTheConversionRuleAndEveryModel()
    {
        var (exit, output, _) = await Run("prices", "list");
        Assert.Equal(0, exit);
        Assert.Contains("credits = cost_usd x (1 + 0.2) / 0.01 USD per credit", output);
        Assert.Contains("gpt-4o-mini", output);
        Assert.Contains("meter:image_generation", output);
        var (badExit, _, error) = await Run("prices", "list", "--at", "yesterday");
        Assert.Equal(2, badExit);
        Assert.Contains("--at 'yesterday' is not an ISO 8601 instant", error);
    }

    [Fact]
    public async Task PricesAdd_NewVersion_AppliesFromItsInstant_AndABackdatedOneIsRefused()
    {
        var later = DateTimeOffset.UtcNow.AddDays(1).ToString("yyyy-MM-ddTHH:mm:ssZ");
        var (exit, output, _) = await Run("prices", "add", "--provider", "openai", "--model", "gpt-4o-mini", "--input", "0.10", "--output", "0.40", "--effective-from", later);
        Assert.Equal(0, exit);
        Assert.StartsWith("added: openai gpt-4o-mini effective from", output);
        Assert.Contains("0.15", (await Run("prices", "list")).Out);                    // still today's price
        Assert.Contains("  0.1 ", (await Run("prices", "list", "--at", DateTimeOffset.UtcNow.AddDays(2).ToString("O"))).Out);

        var (pastExit, _, pastError) = await Run("prices", "add", "--provider", "openai", "--model", "gpt-4o", "--input", "1", "--output", "2", "--effective-from", "2026-01-02T00:00:00Z");
        Assert.Equal(1, pastExit);
        Assert.Contains("is in the past", pastError);
        var (badExit, _, badError) = await Run("prices", "add", "--provider", "openai", "--model", "x", "--input", "-1", "--output", "2");
        Assert.NotEqual(0, badExit);
        Assert.Contains("--input must be a price in USD", badError);
    }

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }
}

/// <summary>The real executable, as an operator types it: a misspelt command must never start the web server.</summary>
[Trait("Kind", "Process")]
[Trait("Engine", "Sqlite")] // a misspelt command must not create the SQLite file; it opens no database on either engine
public class OperatorCliProcessTests : IDisposable
{
    private readonly string _dir = PortalHarness.NewDirectory();

    [Theory]
    [InlineData("tenats", "list")]
    [InlineData("data", "paste")]
    [InlineData("tenants", "lst")]
    public async Task UnknownCommand_PrintsTheUsageAndExits2_WithoutStartingTheServer(string first, string second)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("dotnet")
        {
            WorkingDirectory = AppContext.BaseDirectory, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Rpt.Portal.dll"));
        psi.ArgumentList.Add(first);
        psi.ArgumentList.Add(second);
        psi.Environment["ConnectionStrings__Rpt"] = $"Data Source={Path.Combine(_dir, "rpt.db")}";
        psi.Environment["ASPNETCORE_URLS"] = "http://127.0.0.1:0";
        var started = System.Diagnostics.Stopwatch.StartNew();
        using var process = System.Diagnostics.Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"'{first} {second}' kept running (it started the server): {await stdout}");
        }
        Assert.Equal(2, process.ExitCode);
        Assert.Contains($"unknown command '{first} {second}'", await stderr);
        // Then the help of what was meant: the commands of the group, or every group.
        Assert.Contains(first == "tenats" ? "Rpt Portal operator commands" : $"{first}: ", await stderr);
        Assert.Contains("Commands:", await stderr);
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(3), $"{started.ElapsedMilliseconds} ms to refuse it: the process should answer at once");
        Assert.False(File.Exists(Path.Combine(_dir, "rpt.db")), "a misspelt command opened the database");
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }
}
