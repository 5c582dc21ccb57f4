using System.ComponentModel.DataAnnotations;

namespace Rpt.Portal.Billing;

/// <summary>
/// Rpt:Stripe. Without a secret key, Development runs in <b>test mode</b>: a labelled checkout inside the
/// portal drives the same state changes that Stripe's webhooks drive, so every flow works without an
/// account. Any other environment runs test mode only when <c>Rpt:Stripe:TestMode=true</c> says so on
/// purpose; otherwise payments are unavailable (a test checkout there would hand out real credits).
/// Keys come from the environment or user secrets, never from a committed file.
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

    /// <summary>Rpt:Stripe:TestMode: true turns test mode on outside Development, false turns it off in Development.</summary>
    [ConfigurationKeyName("TestMode")]
    public bool? TestModeSetting { get; set; }

    /// <summary>Set from the host's environment, not from configuration.</summary>
    public bool InDevelopment { get; internal set; }

    /// <summary>A Stripe account is configured.</summary>
    public bool Configured => !string.IsNullOrWhiteSpace(SecretKey);

    public bool TestMode => !Configured && (TestModeSetting ?? InDevelopment);

    /// <summary>Neither Stripe nor test mode: plan changes and packs are refused with <see cref="UnavailableMessage"/>.</summary>
    public bool PaymentsUnavailable => !Configured && !TestMode;

    public const string UnavailableMessage =
        "Payments are not set up on this portal yet, so plans and credits cannot be bought here. Please ask the portal's operator.";

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (Configured && TestModeSetting == true)
            yield return new("Rpt:Stripe:TestMode is true but Rpt:Stripe:SecretKey is set: choose one (remove the key for test mode).");
        if (!Configured) yield break;
        if (string.IsNullOrWhiteSpace(WebhookSecret))
            yield return new("Rpt:Stripe:WebhookSecret is required when Rpt:Stripe:SecretKey is set: without it no webhook can be verified.");
        if (ApiBase is { Length: > 0 } && !Uri.TryCreate(ApiBase, UriKind.Absolute, out _))
            yield return new($"Rpt:Stripe:ApiBase '{ApiBase}' is not an absolute URL.");
        foreach (var (plan, price) in PlanPrices)
            if (string.IsNullOrWhiteSpace(price)) yield return new($"Rpt:Stripe:PlanPrices:{plan} is empty.");
    }
}
