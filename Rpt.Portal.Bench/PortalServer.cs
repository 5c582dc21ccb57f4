using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Rpt.Portal.Bench;

/// <summary>The Rpt Portal server as its own process, Release build, on a free loopback port and a fresh database.</summary>
public sealed class PortalServer : IAsyncDisposable
{
    private Process _process;
    private readonly string _dataDir;
    private readonly bool _keep;
    private readonly Dictionary<string, string> _env;
    private readonly string _dll;

    private PortalServer(Process process, string dll, Dictionary<string, string> env, string dataDir, Uri baseAddress, bool keep)
    {
        _process = process;
        _dll = dll;
        _env = env;
        _dataDir = dataDir;
        BaseAddress = baseAddress;
        _keep = keep;
    }

    public Uri BaseAddress { get; }

    /// <summary>The engine of every server this run starts (--provider sqlite|postgres).</summary>
    public static string Provider { get; set; } = "sqlite";

    /// <summary>Settings added to every server's environment (--server-env NAME=VALUE,…), e.g. a runtime setting to compare.</summary>
    public static Dictionary<string, string> ExtraEnv { get; } = new();

    /// <summary>The database on disk: the SQLite file with its WAL, or the PostgreSQL database's size.</summary>
    public long DatabaseBytes() => _env.TryGetValue("Rpt__Data__Provider", out _)
        ? BenchPostgres.DatabaseBytes(_env["ConnectionStrings__Rpt"])
        : Directory.GetFiles(_dataDir).Sum(f => new FileInfo(f).Length);
    public int Pid => _process.Id;

    /// <summary>The server's database, for what a benchmark writes into it directly (<c>--ledger-entries</c>).</summary>
    public string ConnectionString => _env["ConnectionStrings__Rpt"];
    public bool OnPostgres => _env.ContainsKey("Rpt__Data__Provider");

    public static async Task<PortalServer> StartAsync(bool keep)
    {
        var root = FindRepositoryRoot();
        Run("dotnet", $"build \"{Path.Combine(root, "Rpt.Portal", "Rpt.Portal.csproj")}\" -c Release --nologo -v q", root);
        var dll = Path.Combine(root, "Rpt.Portal", "bin", "Release", "net10.0", "Rpt.Portal.dll");
        var dataDir = Path.Combine(Path.GetTempPath(), "rpt-bench-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dataDir);
        var port = FreePort();
        var env = new Dictionary<string, string>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["ConnectionStrings__Rpt"] = Provider == "postgres" ? BenchPostgres.NewDatabase() : $"Data Source={Path.Combine(dataDir, "rpt.db")}",
            ["Rpt__Api__RequestsPerSecond"] = "1000000",
            ["Rpt__Api__Burst"] = "1000000",
            ["Logging__LogLevel__Default"] = "Warning",
        };
        if (Provider == "postgres") env["Rpt__Data__Provider"] = "Postgres";
        foreach (var (k, v) in ExtraEnv) env[k] = v;
        var baseAddress = new Uri($"http://127.0.0.1:{port}");
        var process = await LaunchAsync(dll, env, baseAddress);
        var server = new PortalServer(process, dll, env, dataDir, baseAddress, keep);
        Console.WriteLine($"server: pid {process.Id} at {server.BaseAddress}, database {(Provider == "postgres" ? env["ConnectionStrings__Rpt"] : Path.Combine(dataDir, "rpt.db"))}");
        return server;
    }

    private static async Task<Process> LaunchAsync(string dll, Dictionary<string, string> env, Uri baseAddress)
    {
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = Path.GetDirectoryName(dll)!, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(dll);
        psi.ArgumentList.Add("--urls");
        psi.ArgumentList.Add(baseAddress.ToString().TrimEnd('/'));
        foreach (var (k, v) in env) psi.Environment[k] = v;
        var process = Process.Start(psi)!;
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) Console.Error.WriteLine("server: " + e.Data); };
        process.BeginErrorReadLine();
        process.OutputDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        using var probe = new HttpClient { BaseAddress = baseAddress };
        for (var i = 0; ; i++)
        {
            try
            {
                if ((await probe.GetAsync("/v1/plans")).StatusCode == HttpStatusCode.OK) break;
            }
            catch (HttpRequestException) when (i < 1200) { }
            if (process.HasExited) throw new InvalidOperationException("The server exited during start-up.");
            await Task.Delay(50);
        }
        return process;
    }

    /// <summary>Another instance of the server on the same database (PostgreSQL), on its own port.</summary>
    public async Task<PortalServer> StartAnotherInstanceAsync()
    {
        var baseAddress = new Uri($"http://127.0.0.1:{FreePort()}");
        var process = await LaunchAsync(_dll, _env, baseAddress);
        Console.WriteLine($"server: pid {process.Id} at {baseAddress}, the same database");
        return new PortalServer(process, _dll, _env, _dataDir, baseAddress, keep: true);
    }

    /// <summary>
    /// Kills the server (SIGKILL: no shutdown of any kind) and starts it again on the same database and address;
    /// returns when the new process answers HTTP. The caller measures when ingestion is accepted again.
    /// </summary>
    public async Task RestartAfterKillAsync()
    {
        _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
        _process = await LaunchAsync(_dll, _env, BaseAddress);
    }

    /// <summary>A confirmed portal sign-in for the tenant, made with the operator command line; returns its password.</summary>
    public string CreateUser(string tenant, string email)
    {
        var output = Run("dotnet", $"\"{_dll}\" users create --tenant {tenant} --email {email} --role owner", Path.GetDirectoryName(_dll)!, _env);
        var line = output.Split('\n').FirstOrDefault(l => l.StartsWith("password: ", StringComparison.Ordinal))
            ?? throw new InvalidOperationException("users create printed no password: " + output);
        return line["password: ".Length..].Trim();
    }

    /// <summary>Opens the tenant with the operator command line of the same executable, while the server runs.</summary>
    public Task<string> CreateTenantAsync(string id, string plan, DateTimeOffset? subscriptionStart = null)
    {
        var start = subscriptionStart is { } s ? $" --subscription-start {s.UtcDateTime:yyyy-MM-ddTHH:mm:ssZ}" : "";
        var output = Run("dotnet", $"\"{_dll}\" tenants create --name {id} --id {id} --plan {plan}{start}", Path.GetDirectoryName(_dll)!, _env);
        var line = output.Split('\n').FirstOrDefault(l => l.StartsWith("api_key: ", StringComparison.Ordinal))
            ?? throw new InvalidOperationException("tenants create printed no api_key: " + output);
        return Task.FromResult(line["api_key: ".Length..].Trim());
    }

    /// <summary>Another key of the tenant (through the command line): its secret and its id.</summary>
    public (string Secret, string Id) CreateKey(string tenant, string scopes, string name)
    {
        var output = Run("dotnet", $"\"{_dll}\" keys create --tenant {tenant} --scopes {scopes} --name {name}", Path.GetDirectoryName(_dll)!, _env);
        string Line(string prefix) => output.Split('\n').FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal))?[prefix.Length..].Trim()
            ?? throw new InvalidOperationException("keys create printed no " + prefix + output);
        return (Line("api_key: "), Line("key_id: "));
    }

    private static string Run(string file, string arguments, string workingDirectory, Dictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo(file, arguments) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        if (env is not null) foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {arguments} failed ({p.ExitCode}): {stderr.Result}{stdout.Result}");
        return stdout.Result;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Rpt.Portal.sln"))) return dir.FullName;
        throw new InvalidOperationException("Run the benchmark from inside the Rpt Portal repository.");
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        if (!_keep)
        {
            try { Directory.Delete(_dataDir, true); } catch (IOException) { }
        }
    }
}
