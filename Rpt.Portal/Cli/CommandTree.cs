using System.CommandLine;

namespace Rpt.Portal.Cli;

/// <summary>
/// The operator commands as a System.CommandLine tree: each command with its options, their descriptions and which are
/// required, so that <c>--help</c> works on every command and an unknown command or option is found before anything runs.
/// </summary>
internal static class CommandTree
{
    /// <summary>An option of a command: a value (<c>--tenant ID</c>) or a switch (<c>--deep</c>).</summary>
    private sealed record Opt(string Name, string Help, bool Required = false, bool Switch = false, string? Value = null);

    private sealed record Spec(string Group, string Name, string Help, Opt[] Options, string? FileArgument = null);

    private static readonly Spec[] Specs =
    [
        new("tenants", "create", "Open an account; prints tenant_id and api_key.",
        [
            new("name", "the tenant's name", Required: true), new("plan", "the plan's code (free, starter, professional, …)", Required: true),
            new("id", "the tenant id (default: from the name)"),
            new("subscription-start", "the day billing periods are anchored on, e.g. for an account moved from another system", Value: "DATE"),
        ]),
        new("tenants", "list", "Every tenant with its plan, balance and billing source (stripe, or aws_marketplace with its AWS account id).", []),
        new("keys", "create", "An API key of a tenant, or (--platform) a platform ingest key that names the tenant per event.",
        [
            new("tenant", "the tenant", Value: "ID"), new("platform", "a platform ingest key", Switch: true), new("name", "what the key is for"),
            new("scopes", "read, ingest, admin (comma-separated; default read,ingest)"),
            new("project", "bind the key to a project: it stamps every event it sends"),
        ]),
        new("keys", "list", "Every key with its prefix, scopes, last use and status.",
            [new("tenant", "the tenant's keys", Value: "ID"), new("platform", "the platform keys", Switch: true)]),
        new("keys", "revoke", "Revoke a key: refused at once (within 30 s in a running server).",
            [new("tenant", "the key's tenant", Value: "ID"), new("platform", "a platform key", Switch: true), new("id", "the key's id", Required: true, Value: "KEY_ID")]),
        new("users", "create", "A confirmed portal sign-in (prints a generated password once), or (--operator) an operator: platform staff whose console opens once two-factor sign-in is on.",
        [
            new("tenant", "the user's tenant", Value: "ID"), new("email", "the sign-in's email", Required: true),
            new("role", "owner, admin or member (default member)"), new("operator", "an operator, not a tenant's member", Switch: true),
        ]),
        new("credits", "grant", "Grant credits: top-ups expire after 12 months, adjustments never, unless --expires says (moved to the end of its billing period). Once per key.",
        [
            new("tenant", "the tenant", Required: true, Value: "ID"), new("credits", "whole credits", Required: true, Value: "N"),
            new("source", "top_up or adjustment", Required: true), new("key", "the idempotency key: the same key grants once", Required: true),
            new("reason", "what the tenant reads on the grant", Value: "TEXT"), new("expires", "another expiry", Value: "DATE"),
        ]),
        new("credits", "void", "Void what a grant still holds (a void ledger entry the tenant sees with its reason). Once per key.",
        [
            new("tenant", "the tenant", Required: true, Value: "ID"), new("grant", "the grant's ledger seq", Required: true, Value: "SEQ"),
            new("key", "the idempotency key", Required: true), new("reason", "why, for the tenant and the audit log", Required: true, Value: "TEXT"),
        ]),
        new("reports", "list", "The overage reports to Stripe's meter: identifier, credits, status, attempts, last error.", [new("tenant", "one tenant's", Value: "ID")]),
        new("ledger", "verify", "Recompute the hash chains (every tenant's, or one); --deep also re-reads the audit records each entry covers.",
            [new("tenant", "one tenant", Value: "ID"), new("deep", "check against the audit records too", Switch: true), new("expect-head", "the head hash recorded earlier", Value: "HASH")]),
        new("ledger", "flush", "Write accumulated usage to the ledger now.", []),
        new("data", "copy", "Copy this SQLite database into an empty PostgreSQL database, then verify every tenant's chain and balance there; refuses a target that holds data.",
            [new("to", "an Npgsql connection string", Required: true, Value: "CONNECTION")]),
        new("prices", "list", "The price book in effect at an instant (default now).", [new("at", "an ISO 8601 instant", Value: "INSTANT")]),
        new("prices", "add", "A new price version, now or later, never earlier; a raise at least Rpt:Prices:NoticeDays ahead, announced to each tenant that used it.",
        [
            new("provider", "the provider", Required: true), new("model", "a model (USD per 1M tokens)"), new("input", "input price", Value: "USD"),
            new("output", "output price", Value: "USD"), new("cached", "cached input price", Value: "USD"), new("meter", "a meter (USD per unit)"),
            new("unit", "unit price", Value: "USD"), new("effective-from", "from this instant (default now)", Value: "INSTANT"),
        ]),
        new("usage", "import", "JSON lines of usage events.", [new("tenant", "the tenant of every line", Value: "ID")], FileArgument: "FILE"),
        new("audit", "list", "The operators' audit log, newest first.",
            [new("tenant", "one tenant's records", Value: "ID"), new("since", "from this day", Value: "DATE"), new("limit", "at most N records (default 1000)", Value: "N")]),
        new("audit", "verify", "Recompute the audit log's hash chain.", []),
    ];

    public const string Description = """
        Rpt Portal operator commands (dotnet run --project Rpt.Portal -- COMMAND). Every command that changes something
        (tenants create, keys create and revoke, users create, credits grant and void, prices add) leaves a record in the
        audit log: who (--as EMAIL, else the operating system's user), when, from where (cli@HOST), what, and the values
        before and after. COMMAND --help describes each.
        """;

    /// <summary>A leaf command and what its options are called, for the dispatcher.</summary>
    public sealed record Leaf(string Group, string Name, IReadOnlyDictionary<string, Option> Options, Argument<string>? File);

    public static (RootCommand Root, IReadOnlyDictionary<Command, Leaf> Leaves, Option<string> As) Build()
    {
        var @as = new Option<string>("--as") { Description = "who acts, for the audit log (default: the operating system's user)", HelpName = "EMAIL", Recursive = true };
        var root = new RootCommand(Description) { @as };
        var leaves = new Dictionary<Command, Leaf>();
        foreach (var group in Specs.GroupBy(s => s.Group))
        {
            var parent = new Command(group.Key, $"{group.Key}: {string.Join(", ", group.Select(s => s.Name))}");
            foreach (var spec in group)
            {
                var command = new Command(spec.Name, spec.Help);
                var options = new Dictionary<string, Option>(StringComparer.Ordinal);
                foreach (var o in spec.Options)
                {
                    Option option = o.Switch
                        ? new Option<bool>("--" + o.Name) { Description = o.Help }
                        : new Option<string>("--" + o.Name) { Description = o.Help, Required = o.Required, HelpName = o.Value ?? o.Name.ToUpperInvariant() };
                    command.Options.Add(option);
                    options[o.Name] = option;
                }
                Argument<string>? file = null;
                if (spec.FileArgument is { } name)
                {
                    file = new Argument<string>(name) { Description = "a file of JSON lines, one usage event a line" };
                    command.Arguments.Add(file);
                }
                parent.Subcommands.Add(command);
                leaves[command] = new Leaf(spec.Group, spec.Name, options, file);
            }
            root.Subcommands.Add(parent);
        }
        return (root, leaves, @as);
    }
}
