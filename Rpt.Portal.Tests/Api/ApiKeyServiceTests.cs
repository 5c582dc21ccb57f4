using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Rpt.Portal.Api;

namespace Rpt.Portal.Tests.Api;

[Trait("Kind", "Sqlite")]
public class ApiKeyServiceTests
{
    /// <summary>Misses were cached for any rpt_… string and never evicted: memory grew with every forged key.</summary>
    [Fact]
    public async Task Authenticate_ManyForgedKeys_TheCacheStaysBounded_AndRealKeysStillWork()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme");
        var keys = h.Get<ApiKeyService>();
        var real = await keys.CreateAsync("acme", "real", ApiScopes.Read);
        // Sent eight at a time, as a hostile client would (and so that the 15,000 lookups do not take half a minute on PostgreSQL).
        await Parallel.ForEachAsync(Enumerable.Range(0, ApiKeyService.CacheEntries + 5_000), new ParallelOptions { MaxDegreeOfParallelism = 8 },
            async (i, _) => Assert.Null(await keys.AuthenticateAsync($"rpt_forged{i:D29}")));
        Assert.True(keys.CachedKeys <= ApiKeyService.CacheEntries, $"{keys.CachedKeys} keys cached");
        Assert.NotNull(await keys.AuthenticateAsync(real));
    }

    [Fact]
    public async Task Create_PastThePlansMaxApiKeys_IsRefusedNamingTheLimit_AndARevokedKeyFreesItsPlace()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme", "free"); // max_api_keys 2
        var keys = h.Get<ApiKeyService>();
        var first = await keys.TryCreateAsync("acme", "one", ApiScopes.Read);
        Assert.NotNull((await keys.TryCreateAsync("acme", "two", ApiScopes.Read)).Secret);
        var third = await keys.TryCreateAsync("acme", "three", ApiScopes.Read);
        Assert.Null(third.Secret);
        Assert.Contains("allows 2 active API keys", third.Error);

        var id = (await keys.ListAsync("acme")).First(k => k.Name == "one").Id;
        Assert.True(await keys.RevokeAsync("acme", id));
        Assert.Null(await keys.AuthenticateAsync(first.Secret!));
        Assert.NotNull((await keys.TryCreateAsync("acme", "three", ApiScopes.Read)).Secret);
    }

    [Fact]
    public async Task Authenticate_RecordsLastUseInTheBackground()
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme");
        var keys = h.Get<ApiKeyService>();
        var secret = await keys.CreateAsync("acme", "k", ApiScopes.Read);
        var recorder = h.Services.GetServices<IHostedService>().OfType<ApiKeyUsageRecorder>().Single();
        await recorder.StartAsync(CancellationToken.None);
        try
        {
            Assert.NotNull(await keys.AuthenticateAsync(secret));
            for (var i = 0; i < 100 && (await keys.ListAsync("acme"))[0].LastUsedAt is null; i++) await Task.Delay(50);
            Assert.Equal(h.Time.GetUtcNow(), (await keys.ListAsync("acme"))[0].LastUsedAt);
        }
        finally
        {
            await recorder.StopAsync(CancellationToken.None);
        }
    }
}
