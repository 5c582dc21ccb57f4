using Amazon.Runtime;
using Microsoft.Extensions.DependencyInjection;
using Rpt.Portal.Billing.Marketplace;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Tests.Billing.Marketplace;

/// <summary>
/// The real portal as its own process, killed with SIGKILL after AWS stored its metering record and before the answer
/// was written to the report log; started again, the identical record is sent again (by it or another instance on the
/// same database), AWS answers DuplicateRecord, and
/// what AWS bills is floor(consumed): nothing reported twice, nothing lost.
/// </summary>
[Trait("Kind", "Process")]
public sealed class MarketplaceCrashTests : IAsyncLifetime
{
    private readonly string _dir = PortalHarness.NewDirectory();
    private PortalProcess? _portal;

    private Dictionary<string, string?> Settings(Uri aws) => new(TestEngine.DatabaseSettings(_dir))
    {
        ["Rpt:Marketplace:Aws:ProductCode"] = MarketplaceReportingTests.Product,
        ["Rpt:Marketplace:Aws:Dimension"] = "credits",
        ["Rpt:Marketplace:Aws:ServiceUrl"] = aws.ToString(),
        ["Rpt:Marketplace:Aws:ReportInterval"] = "00:00:01",
        ["Rpt:Marketplace:Aws:SendInterval"] = "00:00:00.200",
    };

    private Task<PortalHarness> HarnessAsync(Uri aws) => PortalHarness.StartAsync(Settings(aws), start: DateTimeOffset.UtcNow, directory: _dir,
        services: s => s.AddSingleton(AwsMeteringServer.Credentials()));

    [Fact]
    public async Task KilledBetweenTheSendAndTheLogWrite_SendsTheIdenticalRecordAgain_AndAwsBillsFloorOfConsumedOnce()
    {
        await using var aws = await AwsMeteringServer.StartAsync();
        const string Account = "135792468013";
        aws.Tokens["crash-token"] = ("cust-crash", Account, MarketplaceReportingTests.Product);
        long floor;
        await using (var harness = await HarnessAsync(aws.Address))
        {
            var (_, id) = await harness.Get<MarketplaceRegistrations>().RegisterAsync("crash-token");
            await harness.CreateTenantAsync("crash", "enterprise");
            Assert.Null(await harness.Get<MarketplaceRegistrations>().CompleteAsync(id!, "crash"));
            var random = new Random(9);
            var events = Enumerable.Range(0, 200).Select(_ => Events.Call(Guid.NewGuid().ToString(), "gpt-4o", random.Next(1, 300_000), random.Next(0, 40_000),
                at: harness.Time.GetUtcNow())).ToArray();
            Assert.Equal(200, (await harness.IngestAsync("crash", events)).Accepted);
            floor = (long)(harness.Get<ReportMarketplaceUsage>().ConsumedMicroCredits("crash") / Credit.MicroPerCredit);
        }
        Assert.True(floor > 0);

        var environment = PortalProcess.Environment(Settings(aws.Address));
        environment["AWS_ACCESS_KEY_ID"] = AwsMeteringServer.AccessKey; // the standard AWS chain reads these
        environment["AWS_SECRET_ACCESS_KEY"] = AwsMeteringServer.SecretKey;
        var killed = new TaskCompletionSource();
        var started = new TaskCompletionSource<PortalProcess>(); // the portal may report before its start-up is awaited here
        aws.BeforeAnswer = async () =>
        {
            aws.BeforeAnswer = null;
            var portal = await started.Task;
            portal.Process.Kill(entireProcessTree: true); // SIGKILL: AWS has the record; the log does not have the answer
            await portal.Process.WaitForExitAsync();
            killed.TrySetResult();
        };
        _portal = await PortalProcess.StartAsync(environment);
        started.SetResult(_portal);
        var first = _portal;
        await killed.Task.WaitAsync(TimeSpan.FromSeconds(60)).ContinueWith(t =>
        {
            if (!t.IsCompletedSuccessfully) Assert.Fail($"The portal sent no record in 60 s. AWS saw: {string.Join(" | ", aws.Calls)}. The portal wrote: {first.Log}");
        });
        Assert.Equal(floor, aws.Total(Account));

        await using (var harness = await HarnessAsync(aws.Address))
        {
            var pending = Assert.Single(await harness.Get<ReportMarketplaceUsage>().LogAsync("crash"));
            Assert.Equal((MarketplaceReportStatus.Pending, floor), (pending.Status, pending.Quantity));
        }

        await _portal.DisposeAsync();
        _portal = await PortalProcess.StartAsync(environment);
        // The log is read through one harness on the same database, kept for the whole wait (a harness per look started
        // and stopped 150 in-process hosts beside the portal; one of them once never finished). The harness is another
        // instance of the same deployment: whichever instance holds the reporting lease re-sends the record.
        MarketplaceReport? answered = null;
        await using (var harness = await HarnessAsync(aws.Address))
        {
            var reports = harness.Get<ReportMarketplaceUsage>();
            for (var i = 0; i < 150 && answered is null; i++)
            {
                await Task.Delay(200);
                answered = (await reports.LogAsync("crash")).SingleOrDefault(r => r.Status != MarketplaceReportStatus.Pending);
            }
        }
        Assert.NotNull(answered);
        Assert.Equal(MarketplaceReportStatus.Duplicate, answered.Status);
        Assert.Equal(floor, answered.Quantity);
        Assert.Single(aws.Accepted); // one record at AWS: the re-send was the identical request
        Assert.Equal(floor, aws.Total(Account));
        Assert.Contains(aws.Calls, c => c.Contains("DuplicateRecord"));
        Assert.Equal(0, aws.BadSignatures);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    // IAsyncLifetime, which this xunit calls (it left the restarted portal running when this was IAsyncDisposable).
    public async Task DisposeAsync()
    {
        if (_portal is not null) await _portal.DisposeAsync();
    }
}
