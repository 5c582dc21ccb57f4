using Amazon.Runtime;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Rpt.Portal.Billing.Marketplace;
using Rpt.Portal.Data;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Tests.Billing.Marketplace;

/// <summary>
/// AWS Marketplace metered billing against a metering server on loopback that speaks the service's wire format and
/// checks every request's Signature Version 4: registration, Σ reported = floor(consumed) over many hours, throttling
/// and unprocessed records retried unchanged, a gap of more than six hours carried into the next record.
/// </summary>
[Trait("Kind", "Sqlite")]
public sealed class MarketplaceReportingTests(Xunit.Abstractions.ITestOutputHelper output) : IAsyncLifetime
{
    public const string Product = "rpt-credits-product";
    private AwsMeteringServer _aws = null!;
    private PortalHarness _harness = null!;

    public async Task InitializeAsync()
    {
        // The options read the server's address when first used, after both are up; the server keeps the portal's clock.
        _harness = await StartHarnessAsync(AwsMeteringServer.SecretKey);
        _aws = await AwsMeteringServer.StartAsync(_harness.Time);
    }

    private Task<PortalHarness> StartHarnessAsync(string secret, string? directory = null) => PortalHarness.StartAsync(new Dictionary<string, string?>
    {
        ["Rpt:Marketplace:Aws:ProductCode"] = Product,
        ["Rpt:Marketplace:Aws:Dimension"] = "credits",
        ["Rpt:Marketplace:Aws:ServiceUrl"] = "http://placeholder.invalid/",
    }, directory: directory, services: s =>
    {
        s.AddSingleton(AwsMeteringServer.Credentials(secret));
        // The server's address is known only once it runs; the options read it through this.
        s.PostConfigure<AwsMarketplaceOptions>(o => o.ServiceUrl = _aws.Address);
    });

    public async Task DisposeAsync()
    {
        await _harness.DisposeAsync();
        await _aws.DisposeAsync();
    }

    private ReportMarketplaceUsage Report => _harness.Get<ReportMarketplaceUsage>();

    /// <summary>A tenant registered from AWS Marketplace: the token resolved, the organisation opened and linked.</summary>
    private async Task<string> RegisterAsync(string tenant, string account)
    {
        _aws.Tokens[$"token-{tenant}"] = ($"cust-{account}", account, Product);
        var (outcome, id) = await _harness.Get<MarketplaceRegistrations>().RegisterAsync($"token-{tenant}");
        Assert.Equal(RegistrationOutcome.Resolved, outcome);
        await _harness.CreateTenantAsync(tenant, "enterprise");
        Assert.Null(await _harness.Get<MarketplaceRegistrations>().CompleteAsync(id!, tenant));
        return account;
    }

    private long FloorConsumed(string tenant) => (long)(Report.ConsumedMicroCredits(tenant) / Credit.MicroPerCredit);

    private async Task SpendAsync(string tenant, Random random, int calls)
    {
        var events = Enumerable.Range(0, calls).Select(_ => Events.Call(Guid.NewGuid().ToString(), "gpt-4o-mini", random.Next(1, 400_000), random.Next(0, 50_000),
            at: _harness.Time.GetUtcNow())).ToArray();
        Assert.Equal(calls, (await _harness.IngestAsync(tenant, events)).Accepted);
    }

    private async Task<List<MarketplaceReport>> LogAsync(string tenant) => (await Report.LogAsync(tenant, take: 10_000)).OrderBy(r => r.Sequence).ToList();

    [Fact]
    public async Task AMonthOfHourlyUsage_WhatAwsCounts_IsFloorOfConsumed_AfterEveryReport_ThroughThrottlingUnprocessedRecordsAndAnOutage()
    {
        var account = await RegisterAsync("acme", "111122223333");
        var random = new Random(24);
        const int Hours = 31 * 24;
        for (var hour = 0; hour < Hours; hour++)
        {
            await SpendAsync("acme", random, random.Next(0, 12));
            if (hour == 7) _aws.ThrottleNext = 2;
            if (hour == 13) _aws.LeaveUnprocessedNext = 1;
            var outage = hour is >= 400 and < 408; // AWS unreachable for eight hours: what could not be sent is carried
            if (outage) _aws.ThrottleNext = 1_000;
            if (hour == 408) _aws.ThrottleNext = 0;
            await Report.ExecuteAsync();
            for (var retry = 0; !outage && retry < 4 && (await LogAsync("acme")).Any(r => r.Status == MarketplaceReportStatus.Pending); retry++)
            {
                _harness.Time.Advance(TimeSpan.FromSeconds(70));
                await Report.SendAsync();
            }
            if (!outage) Assert.True(FloorConsumed("acme") == _aws.Total(account), $"hour {hour}: floor {FloorConsumed("acme")}, AWS {_aws.Total(account)}, log {string.Join(' ', (await LogAsync("acme")).Select(r => $"{r.Quantity}/{r.Status}"))}");
            _harness.Time.Advance(TimeSpan.FromHours(1));
        }

        var log = await LogAsync("acme");
        Assert.All(log, r => Assert.True(r.Quantity > 0, $"#{r.Sequence}: {r.Quantity}"));
        Assert.All(log.Where(r => r.Counts), r => Assert.Equal(MarketplaceReportStatus.Accepted, r.Status));
        Assert.Equal(log.Select(r => r.Timestamp).Order(), log.Select(r => r.Timestamp));
        Assert.Equal(log.Where(r => r.Counts).Sum(r => r.Quantity), log.Last(r => r.Counts).Cumulative);
        Assert.Contains(log, r => r.Attempts == 3); // throttled twice, then answered
        Assert.Contains(log, r => r.Attempts == 2 && r.Status == MarketplaceReportStatus.Accepted); // unprocessed once, then answered
        Assert.InRange(log.Count(r => r.Status == MarketplaceReportStatus.Expired), 1, 3); // the outage's records, carried
        Assert.Equal(FloorConsumed("acme"), _aws.Total(account));
        Assert.Equal(log.Count(r => r.Counts), _aws.Accepted.Count);
        Assert.Equal(0, _aws.BadSignatures);

        // The month as the operator's log and AWS saw it (for the record of a run).
        var consumed = Report.ConsumedMicroCredits("acme");
        output.WriteLine($"consumed {consumed} µcr = {FloorConsumed("acme")} whole credits; AWS billed {_aws.Total(account)} in {_aws.Accepted.Count} records; " +
            $"log: {log.Count} records, {log.Count(r => r.Status == MarketplaceReportStatus.Expired)} expired and carried, {_aws.Calls.Count} calls");
        foreach (var r in log.Where(r => r.Sequence <= 16 || r.Status != MarketplaceReportStatus.Accepted || r.Attempts > 1 || r.Sequence > log.Count - 3))
            output.WriteLine($"  #{r.Sequence} {r.Timestamp:u} {r.Quantity} credits, reported in all {r.Cumulative}, {r.Status}, {r.Attempts} attempt(s){(r.LastError is { } e ? ", " + e : "")}");
        foreach (var call in _aws.Calls.Where(c => !c.EndsWith("Success", StringComparison.Ordinal)).Take(12)) output.WriteLine("  AWS: " + call);
    }

    [Fact]
    public async Task ARecordAwsCouldNotTakeForSixHours_IsGivenUp_AndItsCreditsGoIntoTheNextRecord()
    {
        var account = await RegisterAsync("acme", "444455556666");
        var random = new Random(6);
        await SpendAsync("acme", random, 30);
        _aws.ThrottleNext = 1_000;
        for (var hour = 0; hour < 7; hour++)
        {
            await Report.ExecuteAsync();
            _harness.Time.Advance(TimeSpan.FromHours(1));
            await SpendAsync("acme", random, 5);
        }
        Assert.Equal(0, _aws.Total(account));
        _aws.ThrottleNext = 0;
        await Report.ExecuteAsync();

        var log = await LogAsync("acme");
        Assert.Contains(log, r => r.Status == MarketplaceReportStatus.Expired && r.LastError!.Contains("carried"));
        Assert.Equal(FloorConsumed("acme"), _aws.Total(account));
        Assert.Equal(FloorConsumed("acme"), log.Where(r => r.Counts).Sum(r => r.Quantity));
        Assert.DoesNotContain(_aws.Calls, c => c.Contains("TimestampOutOfBounds"));
    }

    [Fact]
    public async Task ACustomerAwsSaysIsNotSubscribed_StopsTheTenantsReporting_AndTheOperatorIsTold()
    {
        var account = await RegisterAsync("acme", "777788889999");
        await SpendAsync("acme", new Random(1), 20);
        _aws.NotSubscribed[account] = 0;
        await Report.ExecuteAsync();
        var stopped = await _harness.Get<MarketplaceRegistrations>().AccountAsync("acme");
        Assert.Contains("CustomerNotSubscribed", stopped!.ReportingStopped);
        Assert.Equal(MarketplaceReportStatus.NotSubscribed, (await LogAsync("acme")).Single().Status);

        _harness.Time.Advance(TimeSpan.FromHours(2));
        await SpendAsync("acme", new Random(2), 5);
        Assert.Equal((0, 0), await Report.ExecuteAsync()); // nothing written or sent until an operator looks
    }

    [Fact]
    public async Task ARequestSignedWithAnotherSecret_IsRefusedByTheServer_AndTheRecordWaitsUnchanged()
    {
        await _harness.DisposeAsync();
        await _aws.DisposeAsync();
        _harness = await StartHarnessAsync("not-the-secret");
        _aws = await AwsMeteringServer.StartAsync(_harness.Time);
        _aws.Tokens["t"] = ("c", "000011112222", Product);
        Assert.Equal(RegistrationOutcome.Unavailable, (await _harness.Get<MarketplaceRegistrations>().RegisterAsync("t")).Outcome);
        Assert.True(_aws.BadSignatures > 0);
    }

    [Fact]
    public async Task Registration_ResolvesAGoodToken_RefusesUnknownReplayedAndOtherProductTokens_AndCreatesNothingTwice()
    {
        var registrations = _harness.Get<MarketplaceRegistrations>();
        _aws.Tokens["good"] = ("cust-1", "123456789012", Product);
        _aws.Tokens["other"] = ("cust-2", "210987654321", "someone-elses-product");
        _aws.Tokens["again"] = ("cust-1", "123456789012", Product); // a second registration of the same AWS customer

        var (outcome, id) = await registrations.RegisterAsync("good");
        Assert.Equal(RegistrationOutcome.Resolved, outcome);
        Assert.Equal("123456789012", (await registrations.OpenAsync(id))!.CustomerAwsAccountId);
        Assert.Equal(RegistrationOutcome.Replayed, (await registrations.RegisterAsync("good")).Outcome);
        Assert.Equal(RegistrationOutcome.Invalid, (await registrations.RegisterAsync("never-issued")).Outcome);
        Assert.Equal(RegistrationOutcome.OtherProduct, (await registrations.RegisterAsync("other")).Outcome);
        Assert.Equal(RegistrationOutcome.Missing, (await registrations.RegisterAsync("")).Outcome);
        Assert.Equal(RegistrationOutcome.Missing, (await registrations.RegisterAsync(new string('x', MarketplaceRegistrations.MaxTokenLength + 1))).Outcome);

        await _harness.CreateTenantAsync("acme", "enterprise");
        Assert.Null(await registrations.CompleteAsync(id!, "acme"));
        Assert.NotNull(await registrations.CompleteAsync(id!, "acme")); // finished already
        Assert.Null(await registrations.OpenAsync(id));
        Assert.Equal(RegistrationOutcome.AlreadyRegistered, (await registrations.RegisterAsync("again")).Outcome);

        await using var db = await _harness.Get<IDbContextFactory<ApplicationDbContext>>().CreateDbContextAsync();
        var linked = await db.MarketplaceAccounts.SingleAsync();
        Assert.Equal(("acme", "123456789012", MarketplaceStatus.Subscribed), (linked.TenantId, linked.CustomerAwsAccountId, linked.Status));
    }
}
