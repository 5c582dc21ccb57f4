using System.CommandLine;
using System.CommandLine.Parsing;
using Rpt.Portal.Billing;
using System.Globalization;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Api;
using Rpt.Portal.Data;
using Rpt.Portal.Ledger;
using Rpt.Portal.Metering;
using Rpt.Portal.Operations;
using Rpt.Portal.Tenants;
using Rpt.Portal.Plans;

namespace Rpt.Portal.Cli;

/// <summary>
/// Operator commands in the same executable: <c>dotnet run --project Rpt.Portal -- tenants create …</c>.
/// They use the server's configuration and database, also while the server runs (SQLite serialises the
/// writers). Results go to stdout; errors to stderr with exit code 1 (2 for a misused command).
/// </summary>
public static class OperatorCli
{
    /// <summary>
    /// A first word that is not a switch (<c>--urls …</c>) or a setting (<c>Rpt:Data:Path=…</c>) is a command:
    /// a misspelt one is answered with the usage, never by starting the web server.
    /// </summary>
    public static bool Handles(string[] args) =>
        args.Length > 0 && !args[0].StartsWith('-') && !args[0].StartsWith('/') && !args[0].Contains('=')
        || args.Length > 0 && args[0] is "--help" or "-h";

    public static async Task<int> RunAsync(string[] args, TextWriter? stdout = null, TextWriter? stderr = null,
        Action<WebApplicationBuilder>? configure = null)
    {
        var @out = stdout ?? Console.Out;
        var err = stderr ?? Console.Error;
        // Parsed before the host is built: a misspelt command or option neither migrates nor opens the database.
        var (root, leaves, asOption) = CommandTree.Build();
        var parse = root.Parse(args is ["help"] ? ["--help"] : args);
        if (parse.Action is System.CommandLine.Help.HelpAction)
        {
            await parse.InvokeAsync(new InvocationConfiguration { Output = @out, Error = err });
            return 0;
        }
        var command = parse.CommandResult.Command;
        if (parse.Errors.Count > 0 || !leaves.TryGetValue(command, out var leaf))
            return Misused(err, Problem(parse, command, leaves), root, command);
        var o = Options.From(parse, leaf, asOption);
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        configure?.Invoke(builder);
        try
        {
            builder.AddPortal();
        }
        catch (StorageSettingException ex)
        {
            return Fail(err, ex.Message);
        }
        await using var app = builder.Build();
        try
        {
            await app.Services.PrepareDatabaseAsync();
            Options Opts() => o;
            return (leaf.Group, leaf.Name) switch
            {
                ("tenants", "create") => await CreateTenantAsync(app.Services, Opts(), @out, err),
                ("tenants", "list") => await ListTenantsAsync(app.Services, @out),
                ("keys", "create") => await CreateKeyAsync(app.Services, Opts(), @out, err),
                ("keys", "list") => await ListKeysAsync(app.Services, Opts(), @out, err),
                ("keys", "revoke") => await RevokeKeyAsync(app.Services, Opts(), @out, err),
                ("credits", "grant") => await GrantAsync(app.Services, Opts(), @out, err),
                ("credits", "void") => await VoidAsync(app.Services, Opts(), @out, err),
                ("reports", "list") => await ListReportsAsync(app.Services, Opts(), @out),
                ("users", "create") => await CreateUserAsync(app.Services, Opts(), @out, err),
                ("ledger", "verify") => await VerifyAsync(app.Services, Opts(), @out, err),
                ("ledger", "flush") => await FlushAsync(app.Services, @out),
                ("prices", "list") => await ListPricesAsync(app.Services, Opts(), @out, err),
                ("prices", "add") => await AddPriceAsync(app.Services, Opts(), @out, err),
                ("data", "copy") => await CopyDataAsync(app.Services, Opts(), configure, @out, err),
                ("audit", "list") => await ListAuditAsync(app.Services, Opts(), @out),
                ("audit", "verify") => await VerifyAuditAsync(app.Services, @out, err),
                ("usage", "import") => await ImportAsync(app.Services, o.File, o, @out, err),
                _ => throw new InvalidOperationException($"'{leaf.Group} {leaf.Name}' is in the command tree but has no handler"),
            };
        }
        catch (CliUsageException ex)
        {
            return Misused(err, ex.Message);
        }
        catch (StorageSettingException ex)
        {
            return Fail(err, ex.Message);
        }
        finally
        {
            app.Services.GetRequiredService<UsageIngestor>().Dispose();
        }
    }

    /// <summary>A misused command: the error, then the help of the command it was meant for; exit code 2.</summary>
    private static int Misused(TextWriter err, string message, RootCommand? root = null, Command? command = null)
    {
        err.WriteLine($"error: {message}");
        root ??= CommandTree.Build().Root;
        var path = new List<string>();
        for (var c = command; c is not null && c != root; c = c.Parents.OfType<Command>().FirstOrDefault()) path.Insert(0, c.Name);
        path.Add("--help");
        root.Parse(path).Invoke(new InvocationConfiguration { Output = err, Error = err });
        return 2;
    }

    /// <summary>What is wrong with a command line, in the operator's words: an unknown command, an unknown option of a known one, or the parser's errors.</summary>
    private static string Problem(ParseResult parse, Command command, IReadOnlyDictionary<Command, CommandTree.Leaf> leaves)
    {
        var unmatched = parse.UnmatchedTokens;
        if (!leaves.TryGetValue(command, out var leaf))
        {
            var words = parse.Tokens.Where(t => t.Type is TokenType.Command or TokenType.Argument).Select(t => t.Value).Take(2).ToList();
            return words.Count == 0 ? "name a command" : $"unknown command '{string.Join(' ', words)}'";
        }
        if (unmatched.FirstOrDefault(t => t.StartsWith('-')) is { } option)
            return $"'{leaf.Group} {leaf.Name}' has no option {option}; it takes "
                + (leaf.Options.Count == 0 ? "none" : string.Join(", ", leaf.Options.Keys.Select(k => "--" + k))) + " (and --as EMAIL)";
        return string.Join("; ", parse.Errors.Select(e => e.Message));
    }

    private static int Fail(TextWriter err, string message)
    {
        err.WriteLine($"error: {message}");
        return 1;
    }

    private static async Task<int> CreateTenantAsync(IServiceProvider services, Options o, TextWriter @out, TextWriter err)
    {
        DateTimeOffset? start = null;
        if (o.Optional("subscription-start") is { } text)
        {
            if (!DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed))
                throw new CliUsageException($"--subscription-start '{text}' is not an ISO 8601 date or instant");
            if (parsed > services.GetRequiredService<TimeProvider>().GetUtcNow()) return Fail(err, "--subscription-start must not be in the future");
            start = parsed;
        }
        var result = await services.GetRequiredService<CreateTenant>().ExecuteAsync(o.Required("name"), o.Required("plan"), o.Optional("id"), start);
        if (result.Tenant is null || result.Error is not null) return Fail(err, result.Error ?? "the tenant was not created");
        var key = await services.GetRequiredService<ApiKeyService>().CreateAsync(result.Tenant.Id, "Created by tenants create", ApiScopes.Read | ApiScopes.Ingest);
        await AuditAsync(services, o, "tenant.create", result.Tenant.Id, result.Tenant.Id, null,
            new { name = o.Required("name"), plan = o.Required("plan"), subscription_start = start, api_key = "read,ingest" });
        await @out.WriteLineAsync($"tenant_id: {result.Tenant.Id}");
        await @out.WriteLineAsync($"api_key: {key}");
        return 0;
    }

    private static async Task<int> ListTenantsAsync(IServiceProvider services, TextWriter @out)
    {
        await using var db = await services.GetRequiredService<IDbContextFactory<ApplicationDbContext>>().CreateDbContextAsync();
        var balances = services.GetRequiredService<GetBalance>();
        await @out.WriteLineAsync($"{"tenant_id",-24} {"plan",-13} {"period",-23} {"allocated",10} {"consumed",10} {"remaining",10} {"billing",-15} aws_account");
        var marketplace = await db.MarketplaceAccounts.AsNoTracking().ToDictionaryAsync(a => a.TenantId);
        foreach (var t in await db.Tenants.AsNoTracking().OrderBy(t => t.Id).ToListAsync())
        {
            var b = balances.Execute(t.Id)!;
            var aws = marketplace.GetValueOrDefault(t.Id);
            var billing = aws is null ? "stripe" : Billing.Marketplace.MarketplaceAccount.BillingSource;
            await @out.WriteLineAsync($"{t.Id,-24} {t.PlanCode,-13} {b.Period.Start:yyyy-MM-dd} to {b.Period.End:yyyy-MM-dd} {b.Allocated?.ToString(CultureInfo.InvariantCulture) ?? "unlimited",10} {b.Consumed,10} {b.Remaining?.ToString(CultureInfo.InvariantCulture) ?? "unlimited",10} {billing,-15} {aws?.CustomerAwsAccountId ?? "-"}");
        }
        return 0;
    }

    private static async Task<int> CreateKeyAsync(IServiceProvider services, Options o, TextWriter @out, TextWriter err)
    {
        var keys = services.GetRequiredService<ApiKeyService>();
        if (o.Flag("platform"))
        {
            var secret = await keys.CreateAsync(null, o.Optional("name") ?? "Platform ingest key", ApiScopes.PlatformIngest);
            await AuditAsync(services, o, "key.create", null, o.Optional("name") ?? "Platform ingest key", null, new { scopes = "platform" });
            await @out.WriteLineAsync($"api_key: {secret}");
            return 0;
        }
        var tenant = o.Required("tenant");
        if (!services.GetRequiredService<TenantDirectory>().TryGetAnchor(tenant, out _)) return Fail(err, $"unknown tenant '{tenant}'");
        var scopes = ApiScopes.None;
        foreach (var s in (o.Optional("scopes") ?? "read,ingest").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            scopes |= s switch
            {
                "read" => ApiScopes.Read,
                "ingest" => ApiScopes.Ingest,
                "admin" => ApiScopes.Admin,
                _ => throw new CliUsageException($"unknown scope '{s}'; tenant keys take read, ingest and admin"),
            };
        }
        var created = await keys.TryCreateAsync(tenant, o.Optional("name") ?? "Created by keys create", scopes, project: o.Optional("project"));
        if (created.Secret is null) return Fail(err, created.Error!);
        await AuditAsync(services, o, "key.create", tenant, o.Optional("name") ?? "Created by keys create", null,
            new { scopes = scopes.ToString().ToLowerInvariant(), project = created.Key!.Project });
        await @out.WriteLineAsync($"api_key: {created.Secret}");
        await @out.WriteLineAsync($"key_id: {created.Key.Id:D}");
        return 0;
    }

    private static async Task<int> ListKeysAsync(IServiceProvider services, Options o, TextWriter @out, TextWriter err)
    {
        var platform = o.Flag("platform");
        var tenant = platform ? null : o.Required("tenant");
        if (tenant is not null && !services.GetRequiredService<TenantDirectory>().TryGetAnchor(tenant, out _)) return Fail(err, $"unknown tenant '{tenant}'");
        await @out.WriteLineAsync($"{"id",-36} {"prefix",-14} {"scopes",-16} {"created",-20} {"last_used",-20} {"status",-8} name");
        foreach (var k in await services.GetRequiredService<ApiKeyService>().ListAsync(tenant))
        {
            var scopes = string.Join(",", new[] { (ApiScopes.Read, "read"), (ApiScopes.Ingest, "ingest"), (ApiScopes.Admin, "admin"), (ApiScopes.PlatformIngest, "platform") }
                .Where(s => k.Scopes.HasFlag(s.Item1)).Select(s => s.Item2));
            await @out.WriteLineAsync($"{k.Id,-36} {k.Prefix,-14} {scopes,-16} {k.CreatedAt:yyyy-MM-ddTHH:mm:ssZ} {(k.LastUsedAt is { } u ? u.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture) : "never"),-20} {(k.IsActive ? "active" : "revoked"),-8} {k.Name}");
        }
        return 0;
    }

    private static async Task<int> RevokeKeyAsync(IServiceProvider services, Options o, TextWriter @out, TextWriter err)
    {
        var platform = o.Flag("platform");
        var tenant = platform ? null : o.Required("tenant");
        var id = o.Required("id");
        if (!Guid.TryParse(id, out var keyId)) throw new CliUsageException($"--id '{id}' is not a key id; 'keys list' shows them");
        if (!await services.GetRequiredService<ApiKeyService>().RevokeAsync(tenant, keyId))
            return Fail(err, $"no key {keyId} {(platform ? "among the platform keys" : $"of tenant '{tenant}'")}");
        await AuditAsync(services, o, "key.revoke", tenant, keyId.ToString(), new { status = "active" }, new { status = "revoked" });
        await @out.WriteLineAsync($"revoked: {keyId}");
        return 0;
    }

    private static async Task<int> ListReportsAsync(IServiceProvider services, Options o, TextWriter @out)
    {
        var log = await services.GetRequiredService<Billing.ReportOverage>().LogAsync(o.Optional("tenant"));
        await @out.WriteLineAsync("identifier\tperiod\tcredits\treported_total\tstatus\tattempts\tcreated_at\tsent_at\tlast_error");
        foreach (var r in log)
            await @out.WriteLineAsync(string.Join('\t', r.Identifier, r.PeriodStart.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
                r.Quantity.ToString(CultureInfo.InvariantCulture), r.Cumulative.ToString(CultureInfo.InvariantCulture), EnumText.ToText(r.Status),
                r.Attempts.ToString(CultureInfo.InvariantCulture), r.CreatedAt.ToString("u", CultureInfo.InvariantCulture),
                r.SentAt?.ToString("u", CultureInfo.InvariantCulture) ?? "-", r.LastError ?? "-"));
        return 0;
    }

    private static async Task<int> CreateUserAsync(IServiceProvider services, Options o, TextWriter @out, TextWriter err)
    {
        var @operator = o.Flag("operator");
        if (@operator && (o.Optional("tenant") is not null || o.Optional("role") is not null))
            throw new CliUsageException("--operator is platform staff: it takes neither --tenant nor --role");
        var tenant = @operator ? null : o.Required("tenant");
        if (tenant is not null && !services.GetRequiredService<TenantDirectory>().TryGetAnchor(tenant, out _)) return Fail(err, $"unknown tenant '{tenant}'");
        var role = @operator ? Tenants.PortalRoles.Operator : (o.Optional("role") ?? "owner") switch
        {
            "owner" => Tenants.PortalRoles.Owner,
            "admin" => Tenants.PortalRoles.Admin,
            "member" => Tenants.PortalRoles.Member,
            var r => throw new CliUsageException($"--role '{r}' is not one of: owner, admin, member"),
        };
        var email = o.Required("email").Trim();
        if (!new System.ComponentModel.DataAnnotations.EmailAddressAttribute().IsValid(email)) return Fail(err, $"'{email}' is not an email address");
        using var scope = services.CreateScope();
        var users = scope.ServiceProvider.GetRequiredService<Microsoft.AspNetCore.Identity.UserManager<ApplicationUser>>();
        var password = "Rpt-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(9)) + "!";
        var user = new ApplicationUser { UserName = email, Email = email, EmailConfirmed = true, TenantId = tenant };
        var created = await users.CreateAsync(user, password);
        if (!created.Succeeded) return Fail(err, string.Join(" ", created.Errors.Select(e => e.Description)));
        await users.AddToRoleAsync(user, role);
        await AuditAsync(services, o, "user.create", tenant, email, null, new { role = role.ToLowerInvariant() });
        await @out.WriteLineAsync($"email: {email}");
        await @out.WriteLineAsync($"password: {password}");
        return 0;
    }

    private static async Task<int> GrantAsync(IServiceProvider services, Options o, TextWriter @out, TextWriter err)
    {
        if (!long.TryParse(o.Required("credits"), NumberStyles.None, CultureInfo.InvariantCulture, out var credits))
            throw new CliUsageException($"--credits must be a positive whole number (got '{o.Required("credits")}')");
        var source = o.Required("source") switch
        {
            "top_up" => EntrySource.TopUp,
            "adjustment" => EntrySource.Adjustment,
            var s => throw new CliUsageException($"--source '{s}' is not one of: top_up, adjustment"),
        };
        DateTimeOffset? expires = null;
        if (o.Optional("expires") is { } e)
        {
            if (!DateTimeOffset.TryParse(e, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at))
                throw new CliUsageException($"--expires '{e}' is not a date (2027-06-30 or 2027-06-30T00:00:00Z)");
            expires = at;
        }
        var result = await services.GetRequiredService<Corrections>().GrantAsync(AuditActor.CommandLine(o.Optional("as")), o.Required("tenant"),
            source, credits, o.Required("key"), o.Optional("reason"), expires, reasonRequired: false);
        if (!result.Done) return Fail(err, result.Error!);
        if (result.Repeated)
        {
            await @out.WriteLineAsync($"already granted: ledger seq {result.Entry!.Seq} carries this key; nothing was added");
            return 0;
        }
        var expiry = result.Entry!.ExpiresAt is { } x && x < CreditGrants.Never ? x.ToString("yyyy-MM-dd'T'HH:mm'Z'", CultureInfo.InvariantCulture) : "never";
        await @out.WriteLineAsync($"granted: {credits} credits, ledger seq {result.Entry.Seq}, hash {result.Entry.Hash}, expires {expiry}");
        return 0;
    }

    private static async Task<int> VoidAsync(IServiceProvider services, Options o, TextWriter @out, TextWriter err)
    {
        if (!long.TryParse(o.Required("grant"), NumberStyles.None, CultureInfo.InvariantCulture, out var grantSeq))
            throw new CliUsageException($"--grant must be a grant's ledger seq, a positive whole number (got '{o.Required("grant")}')");
        var result = await services.GetRequiredService<Corrections>().VoidAsync(AuditActor.CommandLine(o.Optional("as")), o.Required("tenant"),
            grantSeq, o.Required("key"), o.Required("reason"));
        if (!result.Done) return Fail(err, result.Error!);
        await @out.WriteLineAsync(result.Repeated
            ? $"already voided: ledger seq {result.Entry!.Seq} carries this key; nothing was added"
            : $"voided: {Credit.Format(result.Entry!.AmountMicroCredits)} credits of grant #{grantSeq}, ledger seq {result.Entry.Seq}, hash {result.Entry.Hash}");
        return 0;
    }

    private static async Task<int> VerifyAsync(IServiceProvider services, Options o, TextWriter @out, TextWriter err)
    {
        var verify = services.GetRequiredService<VerifyLedger>();
        var deep = o.Flag("deep");
        var tenant = o.Optional("tenant");
        IReadOnlyList<LedgerVerification> results;
        if (tenant is not null)
        {
            if (!services.GetRequiredService<TenantDirectory>().TryGetAnchor(tenant, out _)) return Fail(err, $"unknown tenant '{tenant}'");
            results = [await verify.ExecuteAsync(tenant, deep, o.Optional("expect-head"))];
        }
        else
        {
            results = await verify.ExecuteAllAsync(deep);
        }
        foreach (var r in results)
        {
            await @out.WriteLineAsync($"{r.TenantId}: {(r.Intact ? "intact" : "BROKEN")}, {r.Entries} entries, head {r.HeadHash}{(r.Deep ? ", audit records reconciled" : "")}");
            foreach (var p in r.Problems) await err.WriteLineAsync($"  {r.TenantId}: {p}");
        }
        return results.All(r => r.Intact) ? 0 : 1;
    }

    /// <summary>
    /// data copy: the configured SQLite database into an empty PostgreSQL database, then every tenant's chain verified
    /// (deep) and its balance compared on the target through the portal's own services on PostgreSQL.
    /// </summary>
    private static async Task<int> CopyDataAsync(IServiceProvider services, Options o, Action<WebApplicationBuilder>? configure, TextWriter @out, TextWriter err)
    {
        var target = o.Required("to");
        if (services.GetRequiredService<PortalDatabase>() is not Data.Sqlite.SqliteDatabase source)
            return Fail(err, "data copy copies the configured SQLite database; Rpt:Data:Provider is not Sqlite here");
        var (misuse, refusal) = await Data.Postgres.SqliteToPostgres.CheckTargetAsync(target, CancellationToken.None);
        if (misuse is not null) throw new CliUsageException($"--to is not a PostgreSQL connection string: {misuse}");
        if (refusal is not null) return Fail(err, refusal);

        await services.GetRequiredService<FlushUsage>().ExecuteAsync(); // what is accepted is in the ledger before the copy
        var before = await StateAsync(services);
        // The portal on the target: its context migrates the schema (the model as the portal builds it), and after the
        // copy its own services verify what arrived.
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        configure?.Invoke(builder);
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Rpt:Data:Provider"] = "Postgres", ["ConnectionStrings:Rpt"] = target });
        builder.AddPortal();
        await using var copy = builder.Build();
        await using (var db = await copy.Services.GetRequiredService<IDbContextFactory<ApplicationDbContext>>().CreateDbContextAsync())
            await db.Database.MigrateAsync();
        await @out.WriteLineAsync($"copying {source.FilePath} to {Data.Postgres.SqliteToPostgres.Describe(target)}");
        var copied = await Data.Postgres.SqliteToPostgres.CopyAsync(source, target, @out, CancellationToken.None);
        await @out.WriteLineAsync($"copied {copied.Count} tables, {copied.Sum(c => c.Rows):N0} rows");
        await copy.Services.PrepareDatabaseAsync();
        var after = await StateAsync(copy.Services);
        var ok = true;
        await @out.WriteLineAsync($"{"tenant_id",-24} {"entries",8} {"chain head",-16} {"remaining (source)",20} {"remaining (copy)",18}  verified");
        foreach (var (tenant, was) in before)
        {
            var now = after.GetValueOrDefault(tenant);
            var same = now is not null && now.Intact && now.Head == was.Head && now.Remaining == was.Remaining && now.Consumed == was.Consumed;
            ok &= same;
            await @out.WriteLineAsync($"{tenant,-24} {was.Entries,8} {was.Head[..12] + "…",-16} {was.Remaining,20} {now?.Remaining ?? "(missing)",18}  {(same ? "intact, equal" : "DIFFERS")}");
            foreach (var p in now?.Problems ?? []) await err.WriteLineAsync($"  {tenant}: {p}");
        }
        if (after.Count != before.Count) { ok = false; await err.WriteLineAsync($"the copy holds {after.Count} tenants; the source {before.Count}"); }
        await @out.WriteLineAsync(ok ? $"every tenant's chain and balance verified on the copy ({before.Count} tenants)" : "the copy DIFFERS from the source");
        return ok ? 0 : 1;
    }

    private sealed record TenantState(long Entries, string Head, string Remaining, long Consumed, bool Intact, IReadOnlyList<string> Problems);

    private static async Task<Dictionary<string, TenantState>> StateAsync(IServiceProvider services)
    {
        var balances = services.GetRequiredService<GetBalance>();
        var state = new Dictionary<string, TenantState>(StringComparer.Ordinal);
        foreach (var v in await services.GetRequiredService<VerifyLedger>().ExecuteAllAsync(deep: true))
        {
            var b = balances.Execute(v.TenantId);
            state[v.TenantId] = new TenantState(v.Entries, v.HeadHash, b?.Remaining?.ToString(CultureInfo.InvariantCulture) ?? "unlimited", b?.ConsumedMicroCredits ?? 0,
                v.Intact, v.Problems);
        }
        return state;
    }

    private static async Task<int> FlushAsync(IServiceProvider services, TextWriter @out)
    {
        var flush = services.GetRequiredService<FlushUsage>();
        long events = 0;
        var entries = 0;
        FlushOutcome outcome;
        do
        {
            outcome = await flush.ExecuteAsync();
            events += outcome.Events;
            entries += outcome.Entries;
        } while (outcome.Events > 0);
        await @out.WriteLineAsync($"flushed: {events} events into {entries} consumption entries");
        return 0;
    }

    private static async Task<int> ListPricesAsync(IServiceProvider services, Options o, TextWriter @out, TextWriter err)
    {
        var at = services.GetRequiredService<TimeProvider>().GetUtcNow();
        if (o.Optional("at") is { } text && !DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out at))
            throw new CliUsageException($"--at '{text}' is not an ISO 8601 instant");
        var book = services.GetRequiredService<PriceBookProvider>().Current;
        var rule = book.RuleAt(at);
        await @out.WriteLineAsync($"conversion: credits = cost_usd x (1 + {rule.Overhead.ToString(CultureInfo.InvariantCulture)}) / {rule.UsdPerCredit.ToString(CultureInfo.InvariantCulture)} USD per credit");
        await @out.WriteLineAsync($"{"provider",-10} {"model / meter",-28} {"input/Mtok",11} {"output/Mtok",12} {"cached/Mtok",12} {"per unit",9}  effective_from");
        foreach (var p in book.InEffectAt(at))
        {
            await @out.WriteLineAsync($"{p.Provider,-10} {(p.IsMeter ? "meter:" + p.Meter : p.Model),-28} {Usd(p.InputPerMtok),11} {Usd(p.OutputPerMtok),12} {Usd(p.CachedInputPerMtok),12} {Usd(p.UnitPrice),9}  {p.EffectiveFrom:yyyy-MM-ddTHH:mm:ssZ}");
        }
        return 0;

        static string Usd(decimal? d) => d is null ? "-" : d.Value.ToString("0.######", CultureInfo.InvariantCulture);
    }

    private static async Task<int> AddPriceAsync(IServiceProvider services, Options o, TextWriter @out, TextWriter err)
    {
        var now = services.GetRequiredService<TimeProvider>().GetUtcNow();
        var effectiveFrom = now;
        if (o.Optional("effective-from") is { } text && !DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out effectiveFrom))
            throw new CliUsageException($"--effective-from '{text}' is not an ISO 8601 instant");
        Price price;
        try
        {
            price = o.Optional("meter") is { } meter
                ? Price.ForMeter(o.Required("provider"), meter, Usd(o, "unit"), effectiveFrom)
                : Price.ForModel(o.Required("provider"), o.Required("model"), Usd(o, "input"), Usd(o, "output"),
                    o.Optional("cached") is null ? null : Usd(o, "cached"), effectiveFrom);
        }
        catch (ArgumentException ex)
        {
            return Fail(err, ex.Message);
        }
        // The console's rules and records: never backdated; a raise announced at least Rpt:Prices:NoticeDays ahead.
        var result = await services.GetRequiredService<PriceChanges>().AddAsync(AuditActor.CommandLine(o.Optional("as")), price);
        if (result.Saved is null) return Fail(err, result.Error!);
        await @out.WriteLineAsync($"added: {price.Provider} {(price.IsMeter ? "meter:" : "")}{price.Name} effective from {price.EffectiveFrom:yyyy-MM-ddTHH:mm:ssZ} (price id {price.Id})");
        if (price.EffectiveFrom > now && result.Preview is { } preview)
        {
            await @out.WriteLineAsync($"{preview.Tenants.Count} tenant(s) used it in the last {PriceChanges.PreviewDays} days; each is told its estimate by mail and the price.changed webhook");
            foreach (var t in preview.Tenants.Take(20))
                await @out.WriteLineAsync($"  {t.TenantId}: {t.Calls:N0} calls, charged {Credit.Format(t.ThenMicroCredits)} credits, at the new price {Credit.Format(t.NowMicroCredits)} ({(t.DifferenceMicroCredits >= 0 ? "+" : "")}{Credit.Format(t.DifferenceMicroCredits)})");
            if (preview.Tenants.Count > 20) await @out.WriteLineAsync($"  … and {preview.Tenants.Count - 20} more (the console's Price book lists them all)");
        }
        return 0;
    }

    /// <summary>The audit record of a change made from the command line.</summary>
    private static Task AuditAsync(IServiceProvider services, Options o, string action, string? tenant, string? subject, object? before, object? after) =>
        services.GetRequiredService<AuditLog>().AppendAsync(AuditActor.CommandLine(o.Optional("as")), action, tenant, subject, before, after);

    private static async Task<int> ListAuditAsync(IServiceProvider services, Options o, TextWriter @out)
    {
        DateTimeOffset? since = null;
        if (o.Optional("since") is { } text)
        {
            if (!DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at))
                throw new CliUsageException($"--since '{text}' is not a date (2026-12-01 or 2026-12-01T00:00:00Z)");
            since = at;
        }
        var limit = 1000;
        if (o.Optional("limit") is { } l && (!int.TryParse(l, NumberStyles.None, CultureInfo.InvariantCulture, out limit) || limit is < 1 or > 100_000))
            throw new CliUsageException($"--limit must be a whole number from 1 to 100000 (got '{l}')");
        foreach (var r in await services.GetRequiredService<AuditLog>().ListAsync(o.Optional("tenant"), since, limit))
            await @out.WriteLineAsync($"{r.Seq,6} {r.At.UtcDateTime:yyyy-MM-ddTHH:mm:ssZ} {r.Actor} ({r.Origin}) {r.Action} tenant={r.TenantId ?? "-"} subject={r.Subject ?? "-"} old={r.OldValue ?? "-"} new={r.NewValue ?? "-"}");
        return 0;
    }

    private static async Task<int> VerifyAuditAsync(IServiceProvider services, TextWriter @out, TextWriter err)
    {
        var v = await services.GetRequiredService<AuditLog>().VerifyAsync();
        if (v.Intact)
        {
            await @out.WriteLineAsync($"audit log intact: {v.Records} records, head {v.HeadHash}");
            return 0;
        }
        await @out.WriteLineAsync($"audit log NOT intact: {v.Records} records");
        foreach (var p in v.Problems) await @out.WriteLineAsync($"  {p}");
        return 1;
    }

    private static decimal Usd(Options o, string name) =>
        decimal.TryParse(o.Required(name), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var d)
            ? d : throw new CliUsageException($"--{name} must be a price in USD such as 0.15 (got '{o.Required(name)}')");

    private static async Task<int> ImportAsync(IServiceProvider services, string? file, Options o, TextWriter @out, TextWriter err)
    {
        if (string.IsNullOrEmpty(file)) throw new CliUsageException("usage import needs a FILE of JSON lines");
        if (!File.Exists(file)) return Fail(err, $"file '{file}' does not exist");
        var tenant = o.Optional("tenant");
        var ingestor = services.GetRequiredService<UsageIngestor>();
        int accepted = 0, duplicates = 0, rejected = 0, lineNo = 0;
        var batch = new List<UsageEventInput?>();
        var lineNumbers = new List<int>();
        async Task SendAsync()
        {
            if (batch.Count == 0) return;
            var result = await ingestor.IngestAsync(batch, tenant);
            accepted += result.Accepted;
            duplicates += result.Duplicates;
            for (var i = 0; i < result.Results.Count; i++)
            {
                if (result.Results[i].Status != IngestStatus.Rejected) continue;
                rejected++;
                await err.WriteLineAsync($"line {lineNumbers[i]}: rejected: {result.Results[i].Error}");
            }
            batch.Clear();
            lineNumbers.Clear();
        }
        foreach (var line in File.ReadLines(file))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                batch.Add(JsonSerializer.Deserialize(line, MeteringJson.Default.UsageEventInput));
                lineNumbers.Add(lineNo);
            }
            catch (JsonException ex)
            {
                rejected++;
                await err.WriteLineAsync($"line {lineNo}: rejected: not a usage event: {ex.Message}");
            }
            if (batch.Count == 1_000) await SendAsync();
        }
        await SendAsync();
        await @out.WriteLineAsync($"accepted: {accepted}, duplicates: {duplicates}, rejected: {rejected}");
        return rejected == 0 ? 0 : 1;
    }

    private sealed class CliUsageException(string message) : Exception(message);

    /// <summary>The options System.CommandLine parsed for a command, by name; a handler asks for what it needs.</summary>
    private sealed class Options
    {
        private readonly Dictionary<string, string?> _values = new(StringComparer.Ordinal);

        public string? File { get; private init; }

        public static Options From(ParseResult parse, CommandTree.Leaf leaf, Option<string> @as)
        {
            var o = new Options { File = leaf.File is null ? null : parse.GetValue(leaf.File) };
            foreach (var (name, option) in leaf.Options)
            {
                switch (option)
                {
                    case Option<bool> flag when parse.GetValue(flag):
                        o._values[name] = null;
                        break;
                    case Option<string> text when parse.GetValue(text) is { } value:
                        o._values[name] = value;
                        break;
                }
            }
            if (parse.GetValue(@as) is { } who) o._values["as"] = who;
            return o;
        }

        public string Required(string name) =>
            _values.TryGetValue(name, out var v) && !string.IsNullOrWhiteSpace(v) ? v : throw new CliUsageException($"--{name} is required");

        public string? Optional(string name) => _values.GetValueOrDefault(name);

        public bool Flag(string name) => _values.ContainsKey(name);

        public IEnumerable<string> Names => _values.Keys;
    }
}
