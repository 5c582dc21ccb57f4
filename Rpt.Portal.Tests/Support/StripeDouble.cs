using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Rpt.Portal.Tests.Support;

/// <summary>A request as Stripe.net really sent it: method, path, the form-encoded body decoded, and the headers that matter.</summary>
public sealed record StripeRequest(string Method, string Path, IReadOnlyDictionary<string, string> Form, string? IdempotencyKey, string? Authorization);

/// <summary>
/// Stands in for Stripe's API on loopback (Stripe's servers cannot run here): a real HTTP server that
/// records what Stripe.net sends and answers with Stripe-shaped JSON for the calls the portal makes —
/// customers, Checkout Sessions, subscriptions (get, update, cancel), invoices and billing-portal sessions.
/// </summary>
public sealed class StripeDouble : IAsyncDisposable
{
    public const string ApiKey = "sk_test_double";
    public const string WebhookSecret = "whsec_double_secret_for_tests";

    private readonly WebApplication _app;
    private int _next;

    public ConcurrentQueue<StripeRequest> Requests { get; } = new();
    public ConcurrentDictionary<string, JsonObject> Subscriptions { get; } = new();
    public ConcurrentDictionary<string, List<JsonObject>> InvoicesByCustomer { get; } = new();
    /// <summary>Checkout Sessions as Stripe lists them (<c>GET /v1/checkout/sessions</c>): the ones a test says were completed.</summary>
    public ConcurrentDictionary<string, JsonObject> CompletedSessions { get; } = new();
    public string BaseUrl { get; }
    /// <summary>The saved card (default payment method) per customer.</summary>
    public ConcurrentDictionary<string, string> SavedCards { get; } = new();
    private int _meterFailures;

    /// <summary>The next <paramref name="count"/> meter events answer 500, as Stripe does on a bad day.</summary>
    public void FailMeterEvents(int count) => Interlocked.Exchange(ref _meterFailures, count);

    /// <summary>Meter events as Stripe counts them: once per identifier.</summary>
    public ConcurrentDictionary<string, (string Customer, long Value)> MeterEvents { get; } = new();

    private JsonObject MeterEvent(Dictionary<string, string> form)
    {
        var identifier = form["identifier"];
        MeterEvents.TryAdd(identifier, (form["payload[stripe_customer_id]"], long.Parse(form["payload[value]"])));
        return new JsonObject
        {
            ["object"] = "billing.meter_event", ["event_name"] = form["event_name"], ["identifier"] = identifier, ["livemode"] = false,
            ["created"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(), ["timestamp"] = long.Parse(form["timestamp"]),
            ["payload"] = new JsonObject { ["stripe_customer_id"] = form["payload[stripe_customer_id]"], ["value"] = form["payload[value]"] },
        };
    }

    /// <summary>Off-session payments are declined (402 card_declined), as Stripe answers them.</summary>
    public bool DeclineCards { get; set; }

    private StripeDouble(WebApplication app, string baseUrl)
    {
        _app = app;
        BaseUrl = baseUrl;
    }

    public static async Task<StripeDouble> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        StripeDouble? self = null;
        app.Run(async http => await self!.HandleAsync(http));
        await app.StartAsync();
        var url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        self = new StripeDouble(app, url);
        return self;
    }

    /// <summary>Settings that point the portal's Stripe.net at this double, with plan prices <c>price_{plan}</c>.</summary>
    public Dictionary<string, string?> Settings() => new()
    {
        ["Rpt:Stripe:SecretKey"] = ApiKey,
        ["Rpt:Stripe:WebhookSecret"] = WebhookSecret,
        ["Rpt:Stripe:ApiBase"] = BaseUrl,
        ["Rpt:Stripe:PlanPrices:starter"] = "price_starter",
        ["Rpt:Stripe:PlanPrices:professional"] = "price_professional",
        ["Rpt:Stripe:PlanPrices:business"] = "price_business",
        ["Rpt:Stripe:PackPrices:topup_5k"] = "price_topup_5k",
    };

    public IReadOnlyList<StripeRequest> RequestsTo(string method, string pathPrefix) =>
        Requests.Where(r => r.Method == method && r.Path.StartsWith(pathPrefix, StringComparison.Ordinal)).ToList();

    private string Id(string prefix) => $"{prefix}{Interlocked.Increment(ref _next):D6}";

    private async Task HandleAsync(HttpContext http)
    {
        var form = new Dictionary<string, string>(StringComparer.Ordinal);
        if (http.Request.HasFormContentType)
            foreach (var (k, v) in await http.Request.ReadFormAsync()) form[k] = v.ToString();
        foreach (var (k, v) in http.Request.Query) form[k] = v.ToString();
        var path = http.Request.Path.Value ?? "";
        Requests.Enqueue(new(http.Request.Method, path, form, http.Request.Headers["Idempotency-Key"].FirstOrDefault(),
            http.Request.Headers.Authorization.FirstOrDefault()));
        if (http.Request.Headers.Authorization.FirstOrDefault() != $"Bearer {ApiKey}")
        {
            await Json(http, 401, new JsonObject { ["error"] = new JsonObject { ["type"] = "invalid_request_error", ["message"] = "Invalid API Key provided" } });
            return;
        }
        var segments = path.Trim('/').Split('/');
        JsonObject? answer = (http.Request.Method, segments) switch
        {
            ("POST", ["v1", "customers"]) => new JsonObject
            {
                ["id"] = Id("cus_"), ["object"] = "customer", ["name"] = form.GetValueOrDefault("name"),
                ["metadata"] = new JsonObject { ["tenant_id"] = form.GetValueOrDefault("metadata[tenant_id]") },
            },
            ("POST", ["v1", "checkout", "sessions"]) => Session(form),
            ("GET", ["v1", "customers", var id]) => new JsonObject
            {
                ["id"] = id, ["object"] = "customer",
                ["invoice_settings"] = new JsonObject { ["default_payment_method"] = SavedCards.GetValueOrDefault(id) },
            },
            ("GET", ["v1", "payment_methods"]) => new JsonObject
            {
                ["object"] = "list", ["url"] = "/v1/payment_methods", ["has_more"] = false, ["data"] = new JsonArray(),
            },
            ("POST", ["v1", "payment_intents"]) when DeclineCards => null,
            ("POST", ["v1", "payment_intents"]) => new JsonObject
            {
                ["id"] = Id("pi_"), ["object"] = "payment_intent", ["amount"] = long.Parse(form["amount"]), ["currency"] = form["currency"],
                ["customer"] = form.GetValueOrDefault("customer"), ["payment_method"] = form.GetValueOrDefault("payment_method"), ["status"] = "succeeded",
                ["metadata"] = new JsonObject
                {
                    ["tenant_id"] = form.GetValueOrDefault("metadata[tenant_id]"), ["kind"] = form.GetValueOrDefault("metadata[kind]"),
                    ["pack"] = form.GetValueOrDefault("metadata[pack]"), ["key"] = form.GetValueOrDefault("metadata[key]"),
                },
            },
            ("POST", ["v1", "billing", "meter_events"]) when Interlocked.Decrement(ref _meterFailures) >= 0 => null,
            ("POST", ["v1", "billing", "meter_events"]) => MeterEvent(form),
            ("GET", ["v1", "subscriptions", var id]) => Subscriptions.GetValueOrDefault(id),
            ("POST", ["v1", "subscriptions", var id]) => UpdateSubscription(id, form),
            ("DELETE", ["v1", "subscriptions", var id]) => CancelSubscription(id),
            ("GET", ["v1", "invoices"]) => new JsonObject
            {
                ["object"] = "list", ["url"] = "/v1/invoices", ["has_more"] = false,
                ["data"] = new JsonArray((form.GetValueOrDefault("customer") is { } customer ? InvoicesByCustomer.GetValueOrDefault(customer, []) : InvoicesByCustomer.Values.SelectMany(l => l))
                    .Where(i => form.GetValueOrDefault("status") is not { } status || (string?)i["status"] == status)
                    .Select(i => (JsonNode)i.DeepClone()).ToArray()),
            },
            ("GET", ["v1", "checkout", "sessions"]) => new JsonObject
            {
                ["object"] = "list", ["url"] = "/v1/checkout/sessions", ["has_more"] = false,
                ["data"] = new JsonArray(CompletedSessions.Values.Where(c => form.GetValueOrDefault("status") is not { } status || (string?)c["status"] == status)
                    .Select(c => (JsonNode)c.DeepClone()).ToArray()),
            },
            ("GET", ["v1", "payment_intents"]) => new JsonObject
            {
                ["object"] = "list", ["url"] = "/v1/payment_intents", ["has_more"] = false, ["data"] = new JsonArray(),
            },
            ("POST", ["v1", "billing_portal", "sessions"]) => new JsonObject
            {
                ["id"] = Id("bps_"), ["object"] = "billing_portal.session", ["customer"] = form.GetValueOrDefault("customer"),
                ["return_url"] = form.GetValueOrDefault("return_url"), ["url"] = "https://billing.stripe.com/p/session/test_" + _next,
            },
            _ => null,
        };
        if (answer is null && path == "/v1/billing/meter_events")
            await Json(http, 500, new JsonObject { ["error"] = new JsonObject { ["type"] = "api_error", ["message"] = "An unknown error occurred" } });
        else if (answer is null && DeclineCards && path == "/v1/payment_intents")
            await Json(http, 402, new JsonObject
            {
                ["error"] = new JsonObject { ["type"] = "card_error", ["code"] = "card_declined", ["decline_code"] = "insufficient_funds", ["message"] = "Your card has insufficient funds." },
            });
        else if (answer is null)
            await Json(http, 404, new JsonObject { ["error"] = new JsonObject { ["type"] = "invalid_request_error", ["message"] = $"No such resource: {path}" } });
        else
            await Json(http, 200, answer);
    }

    private JsonObject Session(Dictionary<string, string> form)
    {
        var id = Id("cs_test_");
        return new JsonObject
        {
            ["id"] = id, ["object"] = "checkout.session", ["mode"] = form.GetValueOrDefault("mode"), ["status"] = "open",
            ["payment_status"] = "unpaid", ["client_reference_id"] = form.GetValueOrDefault("client_reference_id"),
            ["customer"] = form.GetValueOrDefault("customer"), ["url"] = $"https://checkout.stripe.com/c/pay/{id}",
            ["metadata"] = new JsonObject
            {
                ["tenant_id"] = form.GetValueOrDefault("metadata[tenant_id]"), ["kind"] = form.GetValueOrDefault("metadata[kind]"),
                ["plan"] = form.GetValueOrDefault("metadata[plan]"),
            },
        };
    }

    private JsonObject? UpdateSubscription(string id, Dictionary<string, string> form)
    {
        if (!Subscriptions.TryGetValue(id, out var sub)) return null;
        var item = sub["items"]!["data"]![0]!.AsObject();
        if (form.TryGetValue("items[0][price]", out var price)) item["price"] = StripeWire.Price(price);
        if (form.TryGetValue("cancel_at_period_end", out var cancel)) sub["cancel_at_period_end"] = cancel == "true";
        if (form.TryGetValue("metadata[plan]", out var plan)) sub["metadata"]!["plan"] = plan;
        return sub;
    }

    private JsonObject? CancelSubscription(string id)
    {
        if (!Subscriptions.TryGetValue(id, out var sub)) return null;
        sub["status"] = "canceled";
        return sub;
    }

    private static async Task Json(HttpContext http, int status, JsonObject body)
    {
        http.Response.StatusCode = status;
        http.Response.ContentType = "application/json";
        http.Response.Headers["Request-Id"] = "req_double";
        await http.Response.WriteAsync(body.ToJsonString());
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}

/// <summary>Stripe's wire format for the events the tests deliver, and Stripe's signature scheme.</summary>
public static class StripeWire
{
    /// <summary><c>Stripe-Signature: t={unix},v1={hex HMAC-SHA256 of "t.payload" under the secret}</c>.</summary>
    public static string Sign(string payload, string secret, DateTimeOffset at)
    {
        var t = at.ToUnixTimeSeconds();
        var mac = HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes($"{t}.{payload}"));
        return $"t={t},v1={Convert.ToHexStringLower(mac)}";
    }

    public static string Event(string id, string type, JsonObject data, DateTimeOffset created) => new JsonObject
    {
        ["id"] = id, ["object"] = "event", ["api_version"] = "2026-10-28.endive", ["created"] = created.ToUnixTimeSeconds(),
        ["livemode"] = false, ["pending_webhooks"] = 1, ["type"] = type,
        ["request"] = new JsonObject { ["id"] = null, ["idempotency_key"] = null },
        ["data"] = new JsonObject { ["object"] = data },
    }.ToJsonString();

    public static JsonObject Metadata(string tenant, string plan) => new() { ["tenant_id"] = tenant, ["kind"] = "plan", ["plan"] = plan };

    public static JsonObject Price(string id) => new()
    {
        ["id"] = id, ["object"] = "price", ["currency"] = "usd", ["active"] = true, ["type"] = "recurring",
        ["recurring"] = new JsonObject { ["interval"] = "month", ["interval_count"] = 1 },
    };

    public static JsonObject CheckoutSession(string id, string tenant, string customer, string subscription, string plan, string paymentStatus = "paid") => new()
    {
        ["id"] = id, ["object"] = "checkout.session", ["mode"] = "subscription", ["status"] = "complete",
        ["payment_status"] = paymentStatus, ["client_reference_id"] = tenant, ["customer"] = customer, ["subscription"] = subscription,
        ["metadata"] = Metadata(tenant, plan), ["amount_total"] = 9900, ["currency"] = "usd", ["livemode"] = false,
    };

    public static JsonObject Subscription(string id, string tenant, string customer, string price, string plan, DateTimeOffset periodStart,
        DateTimeOffset periodEnd, string status = "active", bool cancelAtPeriodEnd = false) => new()
    {
        ["id"] = id, ["object"] = "subscription", ["customer"] = customer, ["status"] = status, ["cancel_at_period_end"] = cancelAtPeriodEnd,
        ["metadata"] = Metadata(tenant, plan), ["livemode"] = false,
        ["items"] = new JsonObject
        {
            ["object"] = "list", ["has_more"] = false,
            ["data"] = new JsonArray(new JsonObject
            {
                ["id"] = "si_" + id, ["object"] = "subscription_item", ["quantity"] = 1, ["subscription"] = id, ["price"] = Price(price),
                ["current_period_start"] = periodStart.ToUnixTimeSeconds(), ["current_period_end"] = periodEnd.ToUnixTimeSeconds(),
            }),
        },
    };

    public static JsonObject Invoice(string id, string tenant, string customer, string subscription, string price, string plan, string reason,
        long cents, DateTimeOffset periodStart, DateTimeOffset periodEnd, string status = "paid") => new()
    {
        ["id"] = id, ["object"] = "invoice", ["customer"] = customer, ["status"] = status, ["billing_reason"] = reason,
        ["number"] = "INV-" + id, ["currency"] = "usd", ["amount_due"] = cents, ["amount_paid"] = status == "paid" ? cents : 0,
        ["total"] = cents, ["created"] = periodStart.ToUnixTimeSeconds(), ["livemode"] = false,
        ["hosted_invoice_url"] = $"https://invoice.stripe.com/i/{id}",
        ["parent"] = new JsonObject
        {
            ["type"] = "subscription_details",
            ["subscription_details"] = new JsonObject { ["subscription"] = subscription, ["metadata"] = Metadata(tenant, plan) },
        },
        ["lines"] = new JsonObject
        {
            ["object"] = "list", ["has_more"] = false,
            ["data"] = new JsonArray(new JsonObject
            {
                ["id"] = "il_" + id, ["object"] = "line_item", ["amount"] = cents, ["currency"] = "usd", ["quantity"] = 1,
                ["period"] = new JsonObject { ["start"] = periodStart.ToUnixTimeSeconds(), ["end"] = periodEnd.ToUnixTimeSeconds() },
                ["pricing"] = new JsonObject
                {
                    ["type"] = "price_details",
                    ["price_details"] = new JsonObject { ["price"] = price, ["product"] = "prod_" + plan },
                },
            }),
        },
    };
}
