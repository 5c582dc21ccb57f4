using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace Rpt.Portal.Tests.Support;

/// <summary>
/// A real PostgreSQL cluster of the tests' own: initdb in a temporary directory as the postgres user (the server refuses
/// to run as root), on loopback, on a free port, stopped and removed at the end; never the machine's own service.
/// test.sh installs Debian's postgresql package when it is missing. Each test takes a fresh database of its own.
/// </summary>
public sealed class PostgresCluster : IAsyncLifetime
{
    private string _dir = "";
    public int Port { get; private set; }

    /// <summary>The connection string of the cluster's maintenance database.</summary>
    public string AdminConnectionString => $"Host=127.0.0.1;Port={Port};Username=postgres;Database=postgres;Pooling=false";

    public static string BinDirectory()
    {
        var root = "/usr/lib/postgresql";
        var bin = Directory.Exists(root)
            ? Directory.GetDirectories(root).Select(d => Path.Combine(d, "bin")).Where(d => File.Exists(Path.Combine(d, "initdb"))).OrderDescending().FirstOrDefault()
            : null;
        return bin ?? throw new InvalidOperationException("PostgreSQL's initdb was not found under /usr/lib/postgresql: run ./test.sh, which installs Debian's postgresql package.");
    }

    public async Task InitializeAsync()
    {
        var bin = BinDirectory();
        _dir = Path.Combine(Path.GetTempPath(), "rpt-pg-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(_dir);
        Port = FreePort();
        await RunAsync("chown", "postgres:postgres", _dir);
        await AsPostgresAsync(Path.Combine(bin, "initdb"), "-D", Path.Combine(_dir, "data"), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync");
        await AsPostgresAsync(Path.Combine(bin, "pg_ctl"), "-D", Path.Combine(_dir, "data"), "-l", Path.Combine(_dir, "server.log"), "-w", "-t", "60",
            "-o", $"-p {Port} -k {_dir} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200", "start");
    }

    /// <summary>A new, empty database; its connection string.</summary>
    public async Task<string> CreateDatabaseAsync()
    {
        var name = "rpt_" + Guid.NewGuid().ToString("N")[..12];
        await using var c = new NpgsqlConnection(AdminConnectionString);
        await c.OpenAsync();
        await using (var cmd = new NpgsqlCommand($"CREATE DATABASE {name}", c)) await cmd.ExecuteNonQueryAsync();
        return $"Host=127.0.0.1;Port={Port};Username=postgres;Database={name}";
    }

    public async Task DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        try
        {
            await AsPostgresAsync(Path.Combine(BinDirectory(), "pg_ctl"), "-D", Path.Combine(_dir, "data"), "-m", "immediate", "-w", "stop");
        }
        finally
        {
            try { Directory.Delete(_dir, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    /// <summary>Runs a program as the postgres user (the server refuses root); throws with its output when it fails.</summary>
    internal static Task AsPostgresAsync(string program, params string[] args) =>
        Environment.UserName == "postgres" ? RunAsync(program, args) : RunAsync("runuser", ["-u", "postgres", "--", program, .. args]);

    internal static async Task RunAsync(string program, params string[] args)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEndAsync();
        var error = p.StandardError.ReadToEndAsync();
        await PortalProcess.WaitBoundedAsync(p, $"{program} {string.Join(' ', args)}", output, error);
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"{program} {string.Join(' ', args)} exited {p.ExitCode}: {await error}{await output}");
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}

[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresCluster>
{
    public const string Name = "postgres";
}
