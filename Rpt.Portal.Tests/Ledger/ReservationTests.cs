using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using FsCheck;
using FsCheck.Fluent;
using Rpt.Portal.Ledger;

namespace Rpt.Portal.Tests.Ledger;

/// <summary>Holds on credits for long jobs, as a job runner uses them over the API.</summary>
[Trait("Kind", "Sqlite")]
public sealed class ReservationTests
{
    private static object Call(string id, string job, DateTimeOffset at) =>
        new { id, occurred_at = at, model = "gpt-4o", input_tokens = 100_000, output_tokens = 0, job_id = job }; // 30 credits

    private static async Task<JsonNode> Json(HttpResponseMessage response, HttpStatusCode expected)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"{(int)response.StatusCode}: {body}");
        return JsonNode.Parse(body)!;
    }

    private static async Task<JsonNode> Credits(HttpClient client) => JsonNode.Parse(await client.GetStringAsync("/v1/credits/balance"))!["credits"]!;

    [Fact]
    public async Task ALongJob_HoldsCredits_ItsUsageDrawsTheHoldDown_ReleaseFreesTheRest_AndWhatDoesNotFitIsRefusedWith402()
    {
        await using var app = new ApiFactory();
        var (_, client) = await app.TenantAsync("acme", "starter"); // 5,000 credits, stops there
        var hold = await Json(await client.PostAsJsonAsync("/v1/credits/reservations", new { id = "render-42", credits = 3_000, job_id = "job-42", expires_in_seconds = 3600 }), HttpStatusCode.Created);
        Assert.Equal(("held", 3_000m, 0m), ((string?)hold["status"], (decimal)hold["credits"]!, (decimal)hold["used"]!));
        var credits = await Credits(client);
        Assert.Equal((5_000L, 3_000L, 2_000L), ((long)credits["remaining"]!, (long)credits["reserved"]!, (long)credits["available"]!));

        // A retry answers the same hold; the id cannot name another.
        var again = await Json(await client.PostAsJsonAsync("/v1/credits/reservations", new { id = "render-42", credits = 3_000, job_id = "job-42" }), HttpStatusCode.OK);
        Assert.Equal((string?)hold["expires_at"], (string?)again["expires_at"]);
        await Json(await client.PostAsJsonAsync("/v1/credits/reservations", new { id = "render-42", credits = 10, job_id = "job-42" }), HttpStatusCode.Conflict);
        // Another job that does not fit in what is available: 402, naming what is.
        var refused = await Json(await client.PostAsJsonAsync("/v1/credits/reservations", new { id = "other", credits = 2_500, job_id = "job-43" }), HttpStatusCode.PaymentRequired);
        Assert.Equal(2_000L, (long)refused["available_credits"]!);
        Assert.Contains("2,000 credits available", (string?)refused["detail"]);

        // The job runs: 30 calls of 30 credits draw the hold down as they are accepted.
        var now = app.Time.GetUtcNow();
        (await client.PostAsJsonAsync("/v1/usage/events", new { events = Enumerable.Range(0, 30).Select(i => Call($"c{i}", "job-42", now)) })).EnsureSuccessStatusCode();
        var during = await Json(await client.GetAsync("/v1/credits/reservations/render-42"), HttpStatusCode.OK);
        Assert.Equal((900m, 2_100m), ((decimal)during["used"]!, (decimal)during["remaining"]!));
        credits = await Credits(client);
        Assert.Equal((900L, 4_100L, 2_100L, 2_000L), ((long)credits["consumed"]!, (long)credits["remaining"]!, (long)credits["reserved"]!, (long)credits["available"]!));

        // A new job of 2,500 does not fit; this job may go on with what is left of its hold.
        var newJob = await Json(await client.PostAsJsonAsync("/v1/quota/check", new { estimated_credits = 2_500 }), HttpStatusCode.OK);
        Assert.False((bool)newJob["allowed"]!);
        var goOn = await Json(await client.PostAsJsonAsync("/v1/quota/check", new { estimated_credits = 2_500, reservation_id = "render-42" }), HttpStatusCode.OK);
        Assert.True((bool)goOn["allowed"]!);
        Assert.Equal(2_100m, (decimal)goOn["hold_remaining"]!);

        // Extended (a heartbeat), then released: the rest is free at once.
        var extended = await Json(await client.PatchAsJsonAsync("/v1/credits/reservations/render-42", new { expires_in_seconds = 7200 }), HttpStatusCode.OK);
        Assert.True(DateTimeOffset.Parse((string)extended["expires_at"]!) > DateTimeOffset.Parse((string)hold["expires_at"]!));
        var released = await Json(await client.PostAsync("/v1/credits/reservations/render-42/release", null), HttpStatusCode.OK);
        Assert.Equal(("released", 900m, 0m), ((string?)released["status"], (decimal)released["used"]!, (decimal)released["remaining"]!));
        credits = await Credits(client);
        Assert.Equal((0L, 4_100L), ((long)credits["reserved"]!, (long)credits["available"]!));
        await Json(await client.PatchAsJsonAsync("/v1/credits/reservations/render-42", new { expires_in_seconds = 60 }), HttpStatusCode.Conflict);

        // A hold that is not released expires by itself; none of it entered the ledger.
        await Json(await client.PostAsJsonAsync("/v1/credits/reservations", new { id = "short", credits = 1_000, expires_in_seconds = 10 }), HttpStatusCode.Created);
        Assert.Equal(1_000L, (long)(await Credits(client))["reserved"]!);
        app.Time.Advance(TimeSpan.FromSeconds(11));
        Assert.Equal(0L, (long)(await Credits(client))["reserved"]!);
        Assert.Equal("expired", (string?)(await Json(await client.GetAsync("/v1/credits/reservations/short"), HttpStatusCode.OK))["status"]);
        await app.FlushAsync();
        Assert.True((await app.Get<VerifyLedger>().ExecuteAsync("acme", deep: true)).Intact);

        // An expired hold cannot be extended; a hold lives at most 24 h in all, however often it is extended.
        var expired = await Json(await client.PatchAsJsonAsync("/v1/credits/reservations/short", new { expires_in_seconds = 60 }), HttpStatusCode.Conflict);
        Assert.Contains("was expired", (string?)expired["detail"]);
        var day = await Json(await client.PostAsJsonAsync("/v1/credits/reservations", new { id = "day", credits = 10, expires_in_seconds = 86_400 }), HttpStatusCode.Created);
        // An hour on (not 23: every periodic job of the test server ticks through the clock's advance), a day more is past it.
        app.Time.Advance(TimeSpan.FromHours(1));
        var tooLong = await Json(await client.PatchAsJsonAsync("/v1/credits/reservations/day", new { expires_in_seconds = 86_400 }), HttpStatusCode.BadRequest);
        Assert.Contains("at most 24 h in all", tooLong["errors"]!["expires_in_seconds"]![0]!.ToString());
        var lastHour = await Json(await client.PatchAsJsonAsync("/v1/credits/reservations/day", new { expires_in_seconds = 3000 }), HttpStatusCode.OK);
        // Instants are kept to the millisecond.
        Assert.Equal(DateTimeOffset.FromUnixTimeMilliseconds(app.Time.GetUtcNow().AddSeconds(3000).ToUnixTimeMilliseconds()), DateTimeOffset.Parse((string)lastHour["expires_at"]!));
        Assert.Equal("held", (string?)lastHour["status"]);
        Assert.NotEqual((string?)day["expires_at"], (string?)lastHour["expires_at"]);
    }

    /// <summary>Several jobs running at once, each with its hold: the balance reserves what is left of each, drawn down by its own job only.</summary>
    [Fact]
    public async Task SeveralRunningJobs_EachHoldIsDrawnDownByItsOwnJob_AndTheBalanceReservesWhatIsLeftOfEach()
    {
        await using var app = new ApiFactory();
        var (_, client) = await app.TenantAsync("acme", "starter"); // 5,000 credits, stops there
        foreach (var (id, credits, job, seconds) in new[] { ("a", 1_000, "job-a", 3600), ("b", 500, "job-b", 3600), ("c", 300, (string?)null, 3600), ("d", 200, "job-d", 3600), ("e", 100, "job-e", 10) })
            await Json(await client.PostAsJsonAsync("/v1/credits/reservations", new { id, credits, job_id = job, expires_in_seconds = seconds }), HttpStatusCode.Created);
        var now = app.Time.GetUtcNow();
        // job-a uses 300 of its 1,000; job-b 600, more than its 500; a job without a hold uses 90; d is released unused.
        var calls = Enumerable.Range(0, 10).Select(i => Call($"a{i}", "job-a", now))
            .Concat(Enumerable.Range(0, 20).Select(i => Call($"b{i}", "job-b", now)))
            .Concat(Enumerable.Range(0, 3).Select(i => Call($"x{i}", "job-x", now)));
        (await client.PostAsJsonAsync("/v1/usage/events", new { events = calls })).EnsureSuccessStatusCode();
        await Json(await client.PostAsync("/v1/credits/reservations/d/release", null), HttpStatusCode.OK);

        // Held: a 700 left, b 0 (its job drew it all), c 300 (no job draws it), e 100; consumed 300 + 600 + 90 = 990.
        var balance = await Credits(client);
        Assert.Equal((990L, 4_010L, 1_100L, 2_910L), ((long)balance["consumed"]!, (long)balance["remaining"]!, (long)balance["reserved"]!, (long)balance["available"]!));
        var quota = await Json(await client.PostAsJsonAsync("/v1/quota/check", new { estimated_credits = 2_911 }), HttpStatusCode.OK);
        Assert.False((bool)quota["allowed"]!);
        Assert.Equal(1_100L, (long)quota["reserved"]!);
        // e expires by itself.
        app.Time.Advance(TimeSpan.FromSeconds(11));
        Assert.Equal((1_000L, 3_010L), ((long)(await Credits(client))["reserved"]!, (long)(await Credits(client))["available"]!));

        // Released: b shows what its job drew of it, at most the hold (600 drawn of 500); a retry answers the same; e, released
        // after it expired, is stamped released at its expiry; an id never placed is not found.
        var releasedB = await Json(await client.PostAsync("/v1/credits/reservations/b/release", null), HttpStatusCode.OK);
        Assert.Equal(("released", 500m, 0m), ((string?)releasedB["status"], (decimal)releasedB["used"]!, (decimal)releasedB["remaining"]!));
        var againB = await Json(await client.PostAsync("/v1/credits/reservations/b/release", null), HttpStatusCode.OK);
        Assert.Equal(((string?)releasedB["released_at"], 500m), ((string?)againB["released_at"], (decimal)againB["used"]!));
        var releasedE = await Json(await client.PostAsync("/v1/credits/reservations/e/release", null), HttpStatusCode.OK);
        Assert.Equal(("released", (string?)releasedE["expires_at"], 0m), ((string?)releasedE["status"], (string?)releasedE["released_at"], (decimal)releasedE["used"]!));
        await Json(await client.PostAsync("/v1/credits/reservations/never/release", null), HttpStatusCode.NotFound);
        Assert.Equal((1_000L, 3_010L), ((long)(await Credits(client))["reserved"]!, (long)(await Credits(client))["available"]!));

        // A hold on a job that ran before it (job-x, 90 credits): only the calls after the hold draw it down.
        var x = await Json(await client.PostAsJsonAsync("/v1/credits/reservations", new { id = "x", credits = 500, job_id = "job-x" }), HttpStatusCode.Created);
        Assert.Equal(0m, (decimal)x["used"]!);
        (await client.PostAsJsonAsync("/v1/usage/events", new { events = new[] { Call("x3", "job-x", now), Call("x4", "job-x", now) } })).EnsureSuccessStatusCode();
        Assert.Equal((60m, 440m), ((decimal)(await Json(await client.GetAsync("/v1/credits/reservations/x"), HttpStatusCode.OK))["used"]!,
            (decimal)(await Json(await client.GetAsync("/v1/credits/reservations/x"), HttpStatusCode.OK))["remaining"]!));
    }

    [Fact]
    public async Task BadInput_IsRefusedNamingTheField_AndAnOveragePlanHoldsPastItsAllocation()
    {
        await using var app = new ApiFactory();
        var (_, client) = await app.TenantAsync("acme", "professional"); // 25,000 credits, then overage
        foreach (var (body, field) in new (object, string)[]
                 {
                     (new { id = "a b", credits = 1 }, "id"), (new { id = "x", credits = 0 }, "credits"), (new { id = "x" }, "credits"),
                     (new { id = "x", credits = 1, expires_in_seconds = 90_000 }, "expires_in_seconds"), (new { id = "x", credits = 1, job_id = new string('j', 129) }, "job_id"),
                     (new { id = "x", credits = 100_000_000_001L }, "credits"),
                 })
        {
            var problem = await Json(await client.PostAsJsonAsync("/v1/credits/reservations", body), HttpStatusCode.BadRequest);
            Assert.True(problem["errors"]![field] is not null, $"{field}: {problem}");
        }
        var over = await Json(await client.PostAsJsonAsync("/v1/credits/reservations", new { id = "big", credits = 30_000 }), HttpStatusCode.Created);
        Assert.True((bool)over["into_overage"]!);
        Assert.Equal(-5_000L, (long)(await Credits(client))["available"]!);
        await Json(await client.GetAsync("/v1/credits/reservations/nope"), HttpStatusCode.NotFound);
    }

    /// <summary>64 holds at once on a plan that stops at its allocation: whatever their sizes, they never hold more than was available.</summary>
    [Fact]
    public void ParallelHolds_OnABlockedPlan_NeverHoldMoreThanIsAvailable()
    {
        Prop.ForAll(Gen.Choose(1, 400).ArrayOf(64).ToArbitrary(), sizes => HoldAllAsync(sizes).GetAwaiter().GetResult())
            .Check(Config.QuickThrowOnFailure.WithMaxTest(5));
    }

    private static async Task<bool> HoldAllAsync(int[] sizes)
    {
        await using var h = await PortalHarness.StartAsync();
        await h.CreateTenantAsync("acme", "starter"); // 5,000 credits
        var reservations = h.Get<Reservations>();
        var results = await Task.WhenAll(sizes.Select((credits, i) => Task.Run(() => reservations.ReserveAsync("acme", $"h{i}", credits, $"job{i}", 600))));
        var held = sizes.Where((_, i) => results[i].Outcome == ReservationOutcome.Held).Sum();
        Assert.All(results, r => Assert.True(r.Outcome is ReservationOutcome.Held or ReservationOutcome.Refused, r.Error));
        Assert.True(held <= 5_000, $"{held} credits held of 5,000");
        // Refused only when it did not fit: what was left when it was refused is less than it asked for.
        Assert.All(results.Where(r => r.Outcome == ReservationOutcome.Refused), r => Assert.True(r.AvailableCredits < 400));
        Assert.Equal(5_000 - held, h.Balance("acme").Available);
        return true;
    }
}
