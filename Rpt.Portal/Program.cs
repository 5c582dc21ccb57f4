using Rpt.Portal;
using Rpt.Portal.Cli;
using Rpt.Portal.Data;

if (OperatorCli.Handles(args)) return await OperatorCli.RunAsync(args);

var builder = WebApplication.CreateBuilder(args);
WebApplication app;
try
{
    builder.AddPortal();
    app = builder.Build();
    await app.Services.PrepareDatabaseAsync();
}
catch (StorageSettingException ex)
{
    // One line that names the setting, not a stack trace: the operator's fix is in the configuration.
    await Console.Error.WriteLineAsync($"Rpt Portal cannot start: {ex.Message}");
    return 1;
}
if (app.Environment.IsDevelopment() && app.Configuration.GetValue("Rpt:Demo:Enabled", true))
{
    var demo = await DemoData.EnsureAsync(app.Services);
    app.Lifetime.ApplicationStarted.Register(() => Console.WriteLine($"""

        Rpt Portal demo tenant '{DemoData.TenantId}' is ready.
          Sign in at {string.Join(", ", app.Urls)}/Account/Login as {demo.Email} with password {demo.Password}
          API key: {demo.ApiKey}
          Try:     curl -H "Authorization: Bearer {demo.ApiKey}" {app.Urls.FirstOrDefault()}/v1/credits/balance

        """));
}

app.UsePortal();
await app.RunAsync();
return 0;

/// <summary>The entry point; public so that integration tests can host it.</summary>
public partial class Program;
