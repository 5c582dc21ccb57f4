using System.Diagnostics;

namespace Rpt.Portal.Tests.Support;

/// <summary>Runs tools/verify-statement.py, the customer's verifier, as a customer would: python3 on downloaded files.</summary>
public static class StatementVerifier
{
    public static async Task<(int Code, string Output)> RunAsync(params string[] files)
    {
        var start = new ProcessStartInfo("python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(Browser.BrowserFixture.RepositoryRoot(), "tools", "verify-statement.py"));
        foreach (var f in files) start.ArgumentList.Add(f);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await PortalProcess.WaitBoundedAsync(process, "verify-statement.py", output, error);
        return (process.ExitCode, await output + await error);
    }
}
