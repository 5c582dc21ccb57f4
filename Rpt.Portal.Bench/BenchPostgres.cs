using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace Rpt.Portal.Bench;

/// <summary>
/// The PostgreSQL of a --provider postgres run: a cluster of the benchmark's own on this machine (initdb as the postgres
/// user in a temporary directory, loopback, a free port), stopped and removed when the run ends. Its settings are an
/// operator's ordinary ones for a machine this size, durability untouched: fsync and synchronous_commit on,
/// shared_buffers 4 GB, max_wal_size 8 GB so that checkpoints do not come every few seconds under bulk ingestion.
/// </summary>
public static class BenchPostgres
{
    private static string? _dir;
    private static int _port;

    public static string Settings => "fsync=on, synchronous_commit=on, shared_buffers=4GB, max_wal_size=8GB, checkpoint_timeout=15min";

    /// <summary>More settings for the cluster (--pg-setting NAME=VALUE,…), e.g. <c>log_min_duration_statement=3</c> to place a stall.</summary>
    public static List<string> ExtraSettings { get; } = [];

    /// <summary>Where the cluster's log is copied when the run ends.</summary>
    public static string LogKeptAt => Path.Combine(Path.GetTempPath(), "rpt-bench-pg-last.log");

    /// <summary>The cluster's postmaster (its backends are its children), or null before the cluster starts.</summary>
    public static int? PostmasterPid => _dir is null ? null
        : int.Parse(File.ReadLines(Path.Combine(_dir, "data", "postmaster.pid")).First(), System.Globalization.CultureInfo.InvariantCulture);

    public static string NewDatabase()
    {
        if (_dir is null) Start();
        var name = "rpt_bench_" + Guid.NewGuid().ToString("N")[..8];
        using var c = new NpgsqlConnection($"Host=127.0.0.1;Port={_port};Username=postgres;Database=postgres;Pooling=false");
        c.Open();
        using (var cmd = new NpgsqlCommand($"CREATE DATABASE {name}", c)) cmd.ExecuteNonQuery();
        return $"Host=127.0.0.1;Port={_port};Username=postgres;Database={name}";
    }

    public static long DatabaseBytes(string connectionString)
    {
        using var c = new NpgsqlConnection(connectionString + ";Pooling=false");
        c.Open();
        using var cmd = new NpgsqlCommand("SELECT pg_database_size(current_database())", c);
        return (long)cmd.ExecuteScalar()!;
    }

    /// <summary>
    /// Waits until autovacuum has analyzed every one of <paramref name="tables"/> since <paramref name="since"/> (at most
    /// <paramref name="limit"/>); answers how long that took from <paramref name="since"/>, or null past the limit.
    /// </summary>
    public static async Task<TimeSpan?> WaitForAnalyzeAsync(string connectionString, string[] tables, DateTime since, TimeSpan limit)
    {
        await using var c = new NpgsqlConnection(connectionString + ";Pooling=false");
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT count(*) FROM pg_stat_user_tables WHERE relname = ANY(@t) AND last_autoanalyze > @since", c);
        cmd.Parameters.AddWithValue("t", tables);
        cmd.Parameters.AddWithValue("since", since);
        while (DateTime.UtcNow - since < limit)
        {
            if ((long)(await cmd.ExecuteScalarAsync())! == tables.Length) return DateTime.UtcNow - since;
            await Task.Delay(1_000);
        }
        return null;
    }

    private static void Start()
    {
        var bin = Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")).Where(d => File.Exists(Path.Combine(d, "initdb"))).OrderDescending().FirstOrDefault()
            ?? throw new InvalidOperationException("PostgreSQL is not installed (./test.sh installs Debian's postgresql package).");
        _dir = Path.Combine(Path.GetTempPath(), "rpt-bench-pg-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(_dir);
        using (var l = new TcpListener(IPAddress.Loopback, 0)) { l.Start(); _port = ((IPEndPoint)l.LocalEndpoint).Port; }
        Run("chown", "postgres:postgres", _dir);
        Run("runuser", "-u", "postgres", "--", Path.Combine(bin, "initdb"), "-D", Path.Combine(_dir, "data"), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8");
        Run("runuser", "-u", "postgres", "--", Path.Combine(bin, "pg_ctl"), "-D", Path.Combine(_dir, "data"), "-l", Path.Combine(_dir, "server.log"), "-w", "-t", "60",
            "-o", $"-p {_port} -k {_dir} -c listen_addresses=127.0.0.1 -c shared_buffers=4GB -c max_wal_size=8GB -c checkpoint_timeout=15min -c max_connections=200"
            // What the cluster did, for a stall to be matched against: checkpoints, autovacuum runs, lock waits, statements of 200 ms and more.
            + " -c log_checkpoints=on -c log_autovacuum_min_duration=0 -c log_lock_waits=on -c log_min_duration_statement=200 -c log_line_prefix=%m"
            + string.Concat(ExtraSettings.Select(setting => " -c " + setting)), "start");
        Console.WriteLine($"postgres: {bin}, port {_port}, {Settings}{string.Concat(ExtraSettings.Select(setting => ", " + setting))}; its log is kept at {LogKeptAt}");
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { Run("runuser", "-u", "postgres", "--", Path.Combine(bin, "pg_ctl"), "-D", Path.Combine(_dir, "data"), "-m", "fast", "-w", "stop"); } catch (InvalidOperationException) { }
            // The cluster's log outlives it, for reading after the run.
            try { File.Copy(Path.Combine(_dir, "server.log"), LogKeptAt, overwrite: true); } catch (IOException) { }
            try { Directory.Delete(_dir, true); } catch (IOException) { }
        };
    }

    private static void Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited {p.ExitCode}: {err.Result}");
    }
}
