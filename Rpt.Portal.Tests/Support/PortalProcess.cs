using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Rpt.Portal.Tests.Support;

/// <summary>
/// The real portal as a process of its own (the test's build of Rpt.Portal.dll, Production, the settings given as
/// environment variables), as an operator runs it: started on a loopback port and awaited until it answers, or run as
/// an operator command. Killed with SIGKILL when disposed.
/// </summary>
public sealed class PortalProcess : IAsyncDisposable
{
    private readonly StringBuilder _log = new();

    private PortalProcess(Uri address, Process process)
    {
        Address = address;
        Process = process;
    }

    public Uri Address { get; }
    public Process Process { get; }

    /// <summary>What the process wrote (warnings and errors: Production logs at Warning), for a failure's message.</summary>
    public string Log
    {
        get { lock (_log) return _log.ToString(); }
    }

    private static string Dll => Path.Combine(AppContext.BaseDirectory, "Rpt.Portal.dll");

    /// <summary>The load balancer (Rpt.Proxy) of the same build as the tests (Debug or Release).</summary>
    public static string ProxyDll => Path.Combine(Browser.BrowserFixture.RepositoryRoot(), "Rpt.Proxy", "bin",
        new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name, "net10.0", "Rpt.Proxy.dll");

    /// <summary>Settings such as "ConnectionStrings:Rpt", as the environment variables a container would carry.</summary>
    public static Dictionary<string, string> Environment(IReadOnlyDictionary<string, string?> settings)
    {
        var env = new Dictionary<string, string>
        {
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["Rpt__Api__RequestsPerSecond"] = "1000000",
            ["Rpt__Api__Burst"] = "1000000",
            ["Logging__LogLevel__Default"] = "Warning",
        };
        foreach (var (k, v) in settings) env[k.Replace(":", "__")] = v ?? "";
        return env;
    }

    private static ProcessStartInfo StartInfo(IReadOnlyDictionary<string, string> environment, IEnumerable<string> args, string? dll = null)
    {
        dll ??= Dll;
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = Path.GetDirectoryName(dll)!, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in environment) psi.Environment[k] = v;
        return psi;
    }

    /// <summary>
    /// Starts the server on <paramref name="address"/> (a free loopback port when null) and returns once
    /// <paramref name="readyPath"/> answers (at most 60 s). <paramref name="dll"/>: another of the repository's servers
    /// (the load balancer), from the same build.
    /// </summary>
    public static async Task<PortalProcess> StartAsync(IReadOnlyDictionary<string, string> environment, Uri? address = null, string? dll = null,
        string readyPath = "/healthz")
    {
        address ??= new Uri($"http://127.0.0.1:{FreePort()}");
        var process = Process.Start(StartInfo(environment, ["--urls", address.ToString().TrimEnd('/')], dll))!;
        var portal = new PortalProcess(address, process);
        process.OutputDataReceived += (_, e) => portal.Append(e.Data);
        process.ErrorDataReceived += (_, e) => portal.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var probe = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(2) };
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            try
            {
                if ((await probe.GetAsync(readyPath)).IsSuccessStatusCode) return portal;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { }
            if (process.HasExited) throw new InvalidOperationException($"the portal exited while starting ({process.ExitCode}):\n{portal.Log}");
            await Task.Delay(50);
        }
        await portal.DisposeAsync();
        throw new TimeoutException($"the portal did not answer within 60 s:\n{portal.Log}");
    }

    /// <summary>Runs an operator command to its end; its standard output, or a failure with what it printed.</summary>
    public static async Task<string> RunCommandAsync(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        using var cli = Process.Start(StartInfo(environment, args))!;
        var output = cli.StandardOutput.ReadToEndAsync();
        var error = cli.StandardError.ReadToEndAsync();
        await WaitBoundedAsync(cli, $"`{string.Join(' ', args)}`", output, error);
        if (cli.ExitCode != 0) throw new InvalidOperationException($"`{string.Join(' ', args)}` exited {cli.ExitCode}: {await error}{await output}");
        return await output;
    }

    /// <summary>
    /// Waits for a program the tests started to end, at most <see cref="ProgramTimeout"/>: one that does not is killed
    /// and the test fails with what it printed, instead of the whole run waiting on it.
    /// </summary>
    internal static async Task WaitBoundedAsync(Process process, string what, Task<string> output, Task<string> error)
    {
        using var timeout = new CancellationTokenSource(ProgramTimeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            await process.WaitForExitAsync();
            throw new TimeoutException($"{what} did not end within {ProgramTimeout.TotalMinutes:0} minutes and was killed: {await error}{await output}");
        }
    }

    /// <summary>The longest any program a test runs (an operator command, initdb, pg_basebackup, pg_ctl) may take.</summary>
    internal static readonly TimeSpan ProgramTimeout = TimeSpan.FromMinutes(5);

    /// <summary>The value of a "name: value" line an operator command printed.</summary>
    public static string Field(string output, string name) =>
        output.Split('\n').First(l => l.StartsWith(name + ": ", StringComparison.Ordinal))[(name.Length + 2)..].Trim();

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_log)
        {
            if (_log.Length < 200_000) _log.AppendLine(line);
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!Process.HasExited)
            {
                Process.Kill(entireProcessTree: true);
                await Process.WaitForExitAsync();
            }
        }
        catch (InvalidOperationException) { }
        Process.Dispose();
    }
}
