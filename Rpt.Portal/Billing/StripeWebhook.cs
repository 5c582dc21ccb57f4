using System.Text;
using Microsoft.Extensions.Options;
using Stripe;

namespace Rpt.Portal.Billing;

/// <summary>
/// <c>POST /stripe/webhook</c>: Stripe's signature (<c>Stripe-Signature</c>, HMAC-SHA256 over <c>t.payload</c>,
/// at most <see cref="StripeOptions.WebhookTolerance"/> old) is checked by Stripe.net before anything is read;
/// a bad, missing or stale one is a 400 and changes nothing. A verified event is stored, then processed
/// (<see cref="BillingEvents"/>); unknown types are stored and answered 200.
/// </summary>
public static class StripeWebhook
{
    public static IEndpointRouteBuilder MapStripeWebhook(this IEndpointRouteBuilder app)
    {
        app.MapPost("/stripe/webhook", ReceiveAsync).DisableAntiforgery().ExcludeFromDescription();
        return app;
    }

    private static async Task<IResult> ReceiveAsync(HttpContext http, BillingEvents events, IOptions<StripeOptions> options, TimeProvider time,
        ILoggerFactory loggers)
    {
        var logger = loggers.CreateLogger(typeof(StripeWebhook));
        var secret = options.Value.WebhookSecret;
        if (string.IsNullOrWhiteSpace(secret))
            return Problem(404, "Stripe webhooks are not configured", "Rpt:Stripe:WebhookSecret is not set; in test mode the portal makes its own events.");
        var json = await ReadBodyAsync(http.Request, BillingEvents.MaxPayloadBytes, http.RequestAborted);
        if (json is null)
            return Problem(413, "Payload too large", $"A Stripe event is at most {BillingEvents.MaxPayloadBytes / 1024} KiB.");
        var signature = http.Request.Headers["Stripe-Signature"].ToString();
        if (signature.Length == 0)
            return Problem(400, "Missing signature", "The Stripe-Signature header is required.");
        try
        {
            EventUtility.ValidateSignature(json, signature, secret, (long)options.Value.WebhookTolerance.TotalSeconds, time.GetUtcNow().ToUnixTimeSeconds());
        }
        catch (StripeException ex)
        {
            logger.LogWarning("Refused a Stripe webhook: {Reason}", ex.Message);
            return Problem(400, "Invalid signature",
                $"The Stripe-Signature header does not match the payload, or is older than {options.Value.WebhookTolerance.TotalSeconds:0} s.");
        }
        try
        {
            BillingEvents.Parse(json);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return Problem(400, "Not a Stripe event", "The payload is signed but is not an event with an id, a type and an object.");
        }
        var result = await events.ReceiveAsync(json, http.RequestAborted);
        return Results.Ok(new { received = true, id = result.EventId, status = result.Status == StripeEventStatus.Processed ? "processed" : "already_processed" });
    }

    /// <summary>The body as text, or null when it is longer than <paramref name="limit"/> bytes.</summary>
    private static async Task<string?> ReadBodyAsync(HttpRequest request, int limit, CancellationToken ct)
    {
        if (request.ContentLength > limit) return null;
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, ct)) > 0)
        {
            if (buffer.Length + read > limit) return null;
            buffer.Write(chunk, 0, read);
        }
        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    private static IResult Problem(int status, string title, string detail) =>
        Results.Problem(statusCode: status, title: title, detail: detail);
}
