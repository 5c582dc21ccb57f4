using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace Rpt.Portal.Tests.Browser;

/// <summary>
/// The real server on Kestrel (loopback, its own SQLite file) and Debian's Chromium driven by Playwright.
/// Never downloads a browser: the machine's /usr/bin/chromium is used, and test.sh installs it.
/// </summary>
public sealed class BrowserFixture : IAsyncLifetime
{
    public const string Chromium = "/usr/bin/chromium";

    /// <summary>The portal's mail goes to a real SMTP listener on loopback, where the tests read it as a person would.</summary>
    public SmtpListener Mail { get; } = new();

    public ApiFactory App { get; }
    public IPlaywright Playwright { get; private set; } = default!;
    public IBrowser Browser { get; private set; } = default!;
    public string BaseUrl { get; private set; } = "";

    /// <summary>Screenshots land here; test.sh keeps them as artifacts.</summary>
    public static string ArtifactsDirectory => Path.Combine(RepositoryRoot(), "artifacts", "screenshots");

    /// <summary>The path of an artifact a test writes for people to read (artifacts/NAME), its directory created: a fresh clone has none.</summary>
    public static string Artifact(string name)
    {
        var dir = Path.Combine(RepositoryRoot(), "artifacts");
        Directory.CreateDirectory(dir);
        return Path.Combine(dir, name);
    }

    public BrowserFixture()
    {
        var settings = Mail.Settings();
        settings["Rpt:Ledger:FlushInterval"] = "00:00:01";
        // AWS Marketplace is on, against a metering server on loopback, for the buyer who arrives from it.
        Aws = AwsMeteringServer.StartAsync().GetAwaiter().GetResult();
        settings["Rpt:Marketplace:Aws:ProductCode"] = MarketplaceProduct;
        settings["Rpt:Marketplace:Aws:ServiceUrl"] = Aws.Address.ToString();
        App = new(settings, fakeClock: false, environment: "Development",
            services: s => s.AddSingleton(AwsMeteringServer.Credentials()));
    }

    public const string MarketplaceProduct = "rpt-browser-product";
    public AwsMeteringServer Aws { get; }


    /// <summary>The first message to <paramref name="to"/> whose subject contains <paramref name="subject"/>, waited for.</summary>
    public async Task<MimeKit.MimeMessage> MailAsync(string to, string subject)
    {
        for (var i = 0; i < 100; i++)
        {
            var found = Mail.Messages.FirstOrDefault(m => m.To.Mailboxes.Any(a => a.Address == to) && (m.Subject ?? "").Contains(subject, StringComparison.Ordinal));
            if (found is not null) return found;
            await Task.Delay(100);
        }
        throw new TimeoutException($"No mail to {to} about '{subject}' within 10 s; received: {string.Join("; ", Mail.Messages.Select(m => $"{m.To} '{m.Subject}'"))}");
    }

    /// <summary>The first link of a mail, as a person clicking it would follow it.</summary>
    public static string LinkIn(MimeKit.MimeMessage message)
    {
        var body = message.HtmlBody ?? message.TextBody ?? "";
        var match = System.Text.RegularExpressions.Regex.Match(body, "https?://[^\\s'\"<>]+");
        Assert.True(match.Success, $"no link in the mail '{message.Subject}': {body}");
        return System.Net.WebUtility.HtmlDecode(match.Value);
    }

    public async Task InitializeAsync()
    {
        if (!File.Exists(Chromium))
            throw new InvalidOperationException($"{Chromium} is missing: run ./test.sh, which installs Debian's chromium package.");
        App.UseKestrel(0);
        App.StartServer();
        BaseUrl = App.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses
            .First().Replace("[::]", "localhost").Replace("0.0.0.0", "localhost").Replace("127.0.0.1", "localhost").TrimEnd('/');
        Playwright = await Microsoft.Playwright.Playwright.CreateAsync();
        Browser = await Playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
        Directory.CreateDirectory(ArtifactsDirectory);
    }

    public async Task DisposeAsync()
    {
        await Browser.DisposeAsync();
        Playwright.Dispose();
        await App.DisposeAsync();
        await Mail.DisposeAsync();
        await Aws.DisposeAsync();
    }

    public static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Rpt.Portal.sln"))) return dir.FullName;
        throw new InvalidOperationException("Not inside the Rpt Portal repository.");
    }
}

[CollectionDefinition(Name)]
public sealed class BrowserCollection : ICollectionFixture<BrowserFixture>
{
    public const string Name = "browser";
}
