using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Rpt.Portal.Alerts;
using Rpt.Portal.Data;
using Rpt.Portal.Metering;
using Rpt.Portal.Operations;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Tests.Operations;

/// <summary>A price change as an operator makes it and as the tenants hear of it: previewed on their own usage, never backdated, announced ahead.</summary>
[Trait("Kind", "Sqlite")]
public sealed class PriceChangesTests : IAsyncLifetime
{
    private static readonly AuditActor Operator = new("ops@rpt.test", "browser@127.0.0.1");
    private readonly SmtpListener _smtp = new();
    private PortalHarness _h = default!;

    public async Task InitializeAsync()
    {
        _h = await PortalHarness.StartAsync(new Dictionary<string, string?>(_smtp.Settings()) { ["Rpt:Webhooks:AllowPrivateNetworks"] = "true" });
    }

    public async Task DisposeAsync()
    {
        await _h.DisposeAsync();
        await _smtp.DisposeAsync();
    }

    private async Task OwnerAsync(string tenant, string email)
    {
        using var scope = _h.Services.CreateScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>();
        var user = new ApplicationUser { UserName = email, Email = email, EmailConfirmed = true, TenantId = tenant };
        Assert.True((await users.CreateAsync(user, "Secret-123!")).Succeeded);
        Assert.True((await users.AddToRoleAsync(user, PortalRoles.Owner)).Succeeded);
    }

    /// <summary>Calls of gpt-4o-mini (and of another model, which the preview must leave out) over the last 40 days, seeded.</summary>
    private async Task<List<(string Tenant, DateTimeOffset At, long Input, long Output)>> UsageAsync()
    {
        var random = new Random(20261205);
        var sent = new List<(string, DateTimeOffset, long, long)>();
        var now = _h.Time.GetUtcNow();
        foreach (var tenant in new[] { "acme", "globex", "initech" })
        {
            var calls = tenant == "initech" ? 3 : 40;
            var events = new List<UsageEventInput>();
            for (var i = 0; i < calls; i++)
            {
                var at = now.AddDays(-random.Next(0, 40)).AddMinutes(-random.Next(0, 600));
                long input = random.Next(1, 200_000), output = random.Next(1, 20_000);
                events.Add(Events.Call($"{tenant}-{i}", "gpt-4o-mini", input, output, at: at));
                events.Add(Events.Call($"{tenant}-other-{i}", "gpt-4o", input, output, at: at));
                sent.Add((tenant, at, input, output));
            }
            await _h.IngestAsync(tenant, [.. events]);
        }
        await _h.FlushAsync();
        return sent;
    }

    [Fact]
    public async Task ThePreview_EqualsAnIndependentRecomputationOfEachTenantsLast30Days_SortedByImpact()
    {
        // The harness starts on 1 Apr 2026; tenants subscribed 40 days earlier, so every call falls in a period of theirs.
        foreach (var t in new[] { "acme", "globex", "initech" }) await _h.CreateTenantAsync(t);
        var sent = await UsageAsync();
        var book = _h.Get<PriceBookProvider>().Current;
        var now = _h.Time.GetUtcNow();
        var proposed = Price.ForModel("openai", "gpt-4o-mini", 0.30m, 1.20m, null, now.AddDays(31));
        var preview = _h.Get<PriceChanges>().Preview(proposed);

        // Independently: the published rule, per call, for calls on the 30 UTC days ending today.
        var firstDay = DateOnly.FromDateTime(now.UtcDateTime).AddDays(-29);
        var old = book.Find("openai", "gpt-4o-mini", false, now).Price!;
        foreach (var tenant in new[] { "acme", "globex", "initech" })
        {
            var calls = sent.Where(s => s.Tenant == tenant && DateOnly.FromDateTime(s.At.UtcDateTime) >= firstDay).ToList();
            var rule = book.RuleAt(now);
            long Charge(decimal input, decimal output, (string, DateTimeOffset, long In, long Out) c) =>
                (long)Math.Round((c.In * input + c.Out * output) / 1_000_000m * (1 + rule.Overhead) / rule.UsdPerCredit * 1_000_000m, MidpointRounding.AwayFromZero);
            var then = calls.Sum(c => Charge(old.InputPerMtok!.Value, old.OutputPerMtok!.Value, c));
            var again = calls.Sum(c => Charge(0.30m, 1.20m, c));
            var row = preview.Tenants.SingleOrDefault(r => r.TenantId == tenant);
            if (calls.Count == 0)
            {
                Assert.Null(row);
                continue;
            }
            Assert.NotNull(row);
            Assert.Equal((long)calls.Count, row.Calls);
            Assert.Equal(then, row.ThenMicroCredits); // what was charged, call by call
            // Re-rated per day and model: each call's own rounding is within half a µcr.
            Assert.True(Math.Abs(again - row.NowMicroCredits) * 2 <= calls.Count, $"{tenant}: {row.NowMicroCredits} µcr re-rated, {again} µcr call by call, over {calls.Count} calls");
            Assert.True(row.NowMicroCredits > row.ThenMicroCredits); // the new price is dearer
        }
        Assert.Equal(preview.Tenants.OrderByDescending(r => Math.Abs(r.DifferenceMicroCredits)).Select(r => r.TenantId), preview.Tenants.Select(r => r.TenantId));
        Assert.True(preview.AnyonePaysMore);
    }

    [Fact]
    public async Task ARaise_IsAnnouncedNDaysAhead_EachOwnerHearsTheirOwnEstimate_ByMailAndWebhook_Once()
    {
        foreach (var t in new[] { "acme", "globex", "initech" }) await _h.CreateTenantAsync(t, "professional");
        await OwnerAsync("acme", "owner@acme.test");
        await OwnerAsync("globex", "owner@globex.test");
        Assert.Null((await _h.Get<Webhooks>().CreateEndpointAsync("acme", "https://hooks.acme.test/rpt")).Error);
        await UsageAsync();
        var changes = _h.Get<PriceChanges>();
        var now = _h.Time.GetUtcNow();

        var tooSoon = await changes.AddAsync(Operator, Price.ForModel("openai", "gpt-4o-mini", 0.30m, 1.20m, null, now.AddDays(7)));
        Assert.Equal("effective_from", tooSoon.Field);
        Assert.Contains("at least 30 days after it is announced", tooSoon.Error);
        var backdated = await changes.AddAsync(Operator, Price.ForModel("openai", "gpt-4o-mini", 0.10m, 0.40m, null, now.AddDays(-1)));
        Assert.Contains("is in the past", backdated.Error);

        var effective = now.AddDays(31);
        var saved = await changes.AddAsync(Operator, Price.ForModel("openai", "gpt-4o-mini", 0.30m, 1.20m, null, effective));
        Assert.NotNull(saved.Saved);
        var record = Assert.Single(await _h.Get<AuditLog>().ListAsync(), r => r.Action == "price.add");
        Assert.Equal(("ops@rpt.test", "openai gpt-4o-mini"), (record.Actor, record.Subject));
        Assert.Contains("\"input_per_mtok\":0.15", record.OldValue);
        Assert.Contains("\"input_per_mtok\":0.30", record.NewValue);

        var preview = changes.Preview(saved.Saved);
        Assert.Equal(3, await _h.Get<PriceNotices>().ExecuteAsync());
        Assert.Equal(0, await _h.Get<PriceNotices>().ExecuteAsync()); // once
        await _h.Get<AlertMails>().DeliverDueAsync();
        var mails = _smtp.Messages.ToList();
        Assert.Equal(["owner@acme.test", "owner@globex.test"], mails.Select(m => m.To.ToString()).Order());
        var acme = preview.Tenants.Single(t => t.TenantId == "acme");
        var acmeMail = mails.Single(m => m.To.ToString() == "owner@acme.test").TextBody;
        Assert.Contains($"charged {Credit.Format(acme.ThenMicroCredits)} credits; at the new price {Credit.Format(acme.NowMicroCredits)} credits", acmeMail);
        Assert.Contains("Charges made before", acmeMail);

        await using var db = await _h.Get<IDbContextFactory<ApplicationDbContext>>().CreateDbContextAsync();
        var message = await db.WebhookMessages.SingleAsync(m => m.Type == "price.changed");
        Assert.Equal("acme", message.TenantId);
        var estimate = JsonNode.Parse(message.Payload)!["data"]?["estimate"] ?? JsonNode.Parse(message.Payload)!["estimate"]!;
        Assert.Equal((acme.ThenMicroCredits, acme.NowMicroCredits), ((long)estimate["charged_micro_credits"]!, (long)estimate["at_new_price_micro_credits"]!));
        Assert.Equal(["*", "acme", "globex", "initech"], await db.PriceNotices.Where(n => n.PriceId == saved.Saved.Id).Select(n => n.TenantId).OrderBy(t => t).ToListAsync());
    }

    [Fact]
    public async Task AVersion_TakesEffectFromItsDate_AndLeavesPastChargesAsTheyWere()
    {
        await _h.CreateTenantAsync("acme");
        var now = _h.Time.GetUtcNow();
        await _h.IngestAsync("acme", Events.Call("before", "gpt-4o-mini", 1_000_000, 0, at: now));
        await _h.FlushAsync();
        var before = _h.Scalar("SELECT micro_credits FROM usage_events WHERE event_id = 'before'");

        var saved = await _h.Get<PriceChanges>().AddAsync(Operator, Price.ForModel("openai", "gpt-4o-mini", 0.30m, 0.60m, null, now.AddDays(31)));
        Assert.NotNull(saved.Saved);
        _h.Time.Advance(TimeSpan.FromDays(32));
        await _h.IngestAsync("acme", Events.Call("after", "gpt-4o-mini", 1_000_000, 0, at: _h.Time.GetUtcNow()));
        // Reported late, for an instant before the new version: rated at the old price.
        await _h.IngestAsync("acme", Events.Call("late", "gpt-4o-mini", 1_000_000, 0, at: now.AddDays(30)));
        await _h.FlushAsync();

        Assert.Equal(before, _h.Scalar("SELECT micro_credits FROM usage_events WHERE event_id = 'before'"));
        Assert.Equal(before, _h.Scalar("SELECT micro_credits FROM usage_events WHERE event_id = 'late'"));
        Assert.Equal(2 * before, _h.Scalar("SELECT micro_credits FROM usage_events WHERE event_id = 'after'")); // $0.30 against $0.15 a million input tokens
        Assert.True((await _h.Get<Rpt.Portal.Ledger.VerifyLedger>().ExecuteAsync("acme", deep: true)).Intact);
    }
}
