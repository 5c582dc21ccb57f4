using System.ComponentModel.DataAnnotations;

namespace Rpt.Portal.Billing;

/// <summary>
/// Rpt:Stripe. Without a secret key (the default) the portal runs in <b>test mode</b>: a labelled checkout
/// inside the portal drives the same state changes that Stripe's webhooks drive, so every flow works
/// without an account. Keys come from the environment or user secrets, never from a committed file.
/// </summary>
public sealed class StripeOptions : IValidatableObject
{
    /// <summary>sk_live_… or sk_test_…; empty for test mode.</summary>
    public string? SecretKey { get; set; }

    /// <summary>whsec_… of the endpoint that posts to /stripe/webhook.</summary>
    public string? WebhookSecret { get; set; }

    /// <summary>Another API base (a local test server); Stripe's own when empty.</summary>
    public string? ApiBase { get; set; }

    /// <summary>Stripe price id per plan code (self-serve plans with a price).</summary>
    public Dictionary<string, string> PlanPrices { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Stripe price id per top-up pack code.</summary>
    public Dictionary<string, string> PackPrices { get; set; } = new(StringComparer.Ordinal);

    /// <summary>The billing meter's event name that overage credits are reported under.</summary>
    [RegularExpression("^[a-z0-9_]{1,100}$", ErrorMessage = "Rpt:Stripe:OverageMeterEvent must be 1 to 100 lowercase letters, digits or underscores.")]
    public string OverageMeterEvent { get; set; } = "rpt_overage_credits";

    /// <summary>How old a signed webhook may be (Stripe's scheme: 300 s).</summary>
    [Range(typeof(TimeSpan), "00:00:30", "01:00:00", ErrorMessage = "Rpt:Stripe:WebhookTolerance must be between 30 s and 1 hour.")]
    public TimeSpan WebhookTolerance { get; set; } = TimeSpan.FromSeconds(300);

    /// <summary>Where Enterprise's "contact us" writes to.</summary>
    [EmailAddress(ErrorMessage = "Rpt:Stripe:SalesEmail must be an email address.")]
    public string SalesEmail { get; set; } = "sales@rpt-portal.example";

    public bool TestMode => string.IsNullOrWhiteSpace(SecretKey);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (TestMode) yield break;
        if (string.IsNullOrWhiteSpace(WebhookSecret))
            yield return new("Rpt:Stripe:WebhookSecret is required when Rpt:Stripe:SecretKey is set: without it no webhook can be verified.");
        if (ApiBase is { Length: > 0 } && !Uri.TryCreate(ApiBase, UriKind.Absolute, out _))
            yield return new($"Rpt:Stripe:ApiBase '{ApiBase}' is not an absolute URL.");
        foreach (var (plan, price) in PlanPrices)
            if (string.IsNullOrWhiteSpace(price)) yield return new($"Rpt:Stripe:PlanPrices:{plan} is empty.");
    }
}
