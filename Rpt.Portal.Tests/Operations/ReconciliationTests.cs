using System.Text.Json.Nodes;
using Rpt.Portal.Billing;
using Rpt.Portal.Ledger;
using Rpt.Portal.Operations;

namespace Rpt.Portal.Tests.Operations;

/// <summary>
/// The ledger reconciled with Stripe (over real HTTP, Stripe.net listing the double's Checkout Sessions and invoices) and with
/// the audit log: every difference found, named, and linked to both sides; nothing else reported.
/// </summary>
[Trait("Kind", "Http")]
public sealed class ReconciliationTests : IAsyncLifetime
{
    private StripeDouble _stripe = default!;
    private ApiFactory _app = default!;

    public async Task InitializeAsync()
    {
        _stripe = await StripeDouble.StartAsync();
        _app = new ApiFactory(_stripe.Settings());
        Assert.Null((await _app.Get<CreateTenant>().ExecuteAsync("Acme Analytics", "free", "acme")).Error);
        await using var db = await _app.Get<Microsoft.EntityFrameworkCore.IDbContextFactory<Rpt.Portal.Data.ApplicationDbContext>>().CreateDbContextAsync();
        (await Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.SingleAsync(db.Tenants, t => t.Id == "acme")).LinkStripeCustomer("cus_acme");
        await db.SaveChangesAsync();
    }

    public async Task DisposeAsync()
    {
        await _app.DisposeAsync();
        await _stripe.DisposeAsync();
    }

    private JsonObject PaidPack(string id) => new()
    {
        ["id"] = id, ["object"] = "checkout.session", ["mode"] = "payment", ["status"] = "complete", ["payment_status"] = "paid",
        ["client_reference_id"] = "acme", ["customer"] = "cus_acme", ["created"] = _app.Time.GetUtcNow().ToUnixTimeSeconds(),
        ["metadata"] = new JsonObject { ["tenant_id"] = "acme", ["kind"] = "top_up", ["pack"] = "topup_5k" },
    };

    [Fact]
    public async Task Reconciliation_FindsAPaidCheckoutWithoutItsGrant_AGrantWithoutItsStripeObject_AndAnOperatorGrantWithoutItsRecord()
    {
        var since = _app.Time.GetUtcNow().AddDays(-1);
        // Paid and granted: the webhook came.
        var paid = PaidPack("cs_test_paid");
        _stripe.CompletedSessions[(string)paid["id"]!] = paid;
        await _app.Get<BillingEvents>().ReceiveAsync(StripeWire.Event("evt_1", "checkout.session.completed", paid.DeepClone().AsObject(), _app.Time.GetUtcNow()));
        // Paid, but its webhook never arrived.
        _stripe.CompletedSessions["cs_test_lost"] = PaidPack("cs_test_lost");
        // A grant keyed by a session Stripe never had paid.
        await _app.Get<GrantCredits>().ExecuteAsync("acme", EntrySource.TopUp, 5_000, "stripe:checkout:cs_test_ghost", "5,000 credits top-up");
        // An operator's grant through the console (recorded), and one written around it (not recorded).
        Assert.True((await _app.Get<Corrections>().GrantAsync(new AuditActor("ops@rpt.test", "browser@127.0.0.1"), "acme", EntrySource.Adjustment, 100, "k1", "Outage", null, true)).Done);
        await _app.Get<GrantCredits>().ExecuteAsync("acme", EntrySource.Adjustment, 300, "adjustment:side-door", "no one knows");

        var report = await _app.Get<Reconciliation>().RunAsync(since);

        Assert.Equal((2, 2, 2, 1), (report.PaidObjects, report.StripeGrants, report.OperatorEntries, report.AuditRecords));
        Assert.Equal(3, report.Differences.Count);
        var lost = Assert.Single(report.Differences, d => d.Kind == "paid_without_grant");
        Assert.Equal(("acme", "cs_test_lost", "https://dashboard.stripe.com/checkout/sessions/cs_test_lost"), (lost.TenantId, lost.StripeId, lost.StripeUrl));
        var ghost = Assert.Single(report.Differences, d => d.Kind == "grant_without_payment");
        Assert.Equal(("acme", "cs_test_ghost"), (ghost.TenantId, ghost.StripeId));
        Assert.Contains("key stripe:checkout:cs_test_ghost", ghost.What);
        var unrecorded = Assert.Single(report.Differences, d => d.Kind == "entry_without_record");
        Assert.Contains("adjustment:side-door", unrecorded.What);
        Assert.Equal(5L, unrecorded.Seq);
        // Stripe was asked over HTTP for what it was paid.
        Assert.NotEmpty(_stripe.RequestsTo("GET", "/v1/checkout/sessions"));
        Assert.NotEmpty(_stripe.RequestsTo("GET", "/v1/invoices"));
    }

    [Fact]
    public async Task AnAuditRecordNamingNoEntry_IsADifferenceToo_AndACleanLedgerHasNone()
    {
        var since = _app.Time.GetUtcNow().AddDays(-1);
        Assert.Empty((await _app.Get<Reconciliation>().RunAsync(since)).Differences);
        await _app.Get<AuditLog>().AppendAsync(new AuditActor("ops@rpt.test", "cli@host"), Corrections.VoidAction, "acme", Corrections.Subject(1), null, new { reason = "typed by hand" });
        var difference = Assert.Single((await _app.Get<Reconciliation>().RunAsync(since)).Differences);
        Assert.Equal(("record_without_entry", 1L), (difference.Kind, difference.AuditSeq!.Value));
        Assert.Contains("which is no void entry", difference.What);
    }
}
