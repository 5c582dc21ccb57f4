using System.ComponentModel.DataAnnotations;

namespace Rpt.Portal.Billing.Marketplace;

/// <summary>
/// Rpt:Marketplace:Aws: selling Rpt Portal as an AWS Marketplace SaaS product with metered credits. Off until
/// <see cref="ProductCode"/> is set; credentials come from the standard AWS chain (environment, profile, instance role).
/// </summary>
public sealed class AwsMarketplaceOptions : IValidatableObject
{
    /// <summary>The product's code in AWS Marketplace; a registration token resolving to another product is refused.</summary>
    [MaxLength(255, ErrorMessage = "Rpt:Marketplace:Aws:ProductCode must be at most 255 characters.")]
    public string? ProductCode { get; set; }

    /// <summary>The metering dimension every credit is reported on.</summary>
    [MaxLength(255, ErrorMessage = "Rpt:Marketplace:Aws:Dimension must be at most 255 characters.")]
    public string Dimension { get; set; } = "credits";

    /// <summary>The AWS region of the metering service (and of the signature).</summary>
    [RegularExpression("^[a-z]{2}(-[a-z]+)+-[0-9]+$", ErrorMessage = "Rpt:Marketplace:Aws:Region must be an AWS region such as us-east-1.")]
    public string Region { get; set; } = "us-east-1";

    /// <summary>Another endpoint for the metering service (a local test server); by default the region's.</summary>
    public Uri? ServiceUrl { get; set; }

    /// <summary>The SQS queue subscribed to the product's SNS topic; without it entitlement changes are not read.</summary>
    public Uri? QueueUrl { get; set; }

    /// <summary>How often each tenant's consumption is reported (AWS expects about hourly).</summary>
    [Range(typeof(TimeSpan), "00:00:01", "06:00:00", ErrorMessage = "Rpt:Marketplace:Aws:ReportInterval must be between 1 second and 6 hours.")]
    public TimeSpan ReportInterval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>How often pending records are (re)sent and the queue is read.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "01:00:00", ErrorMessage = "Rpt:Marketplace:Aws:SendInterval must be between 100 ms and 1 hour.")]
    public TimeSpan SendInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>The plan a marketplace tenant is on: one without an allocation (every credit is billed through AWS).</summary>
    public string PlanCode { get; set; } = "enterprise";

    /// <summary>Where a buyer manages the subscription (the Plans and Billing pages link to it).</summary>
    public Uri SubscriptionsUrl { get; set; } = new("https://console.aws.amazon.com/marketplace/home#/subscriptions");

    public bool Enabled => !string.IsNullOrWhiteSpace(ProductCode);

    /// <summary>The metering endpoint calls go to.</summary>
    public Uri Endpoint => ServiceUrl ?? new Uri($"https://metering.marketplace.{Region}.amazonaws.com/");

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (Enabled && string.IsNullOrWhiteSpace(Dimension))
            yield return new ValidationResult("Rpt:Marketplace:Aws:Dimension must be set when Rpt:Marketplace:Aws:ProductCode is.");
        if (ServiceUrl is { IsAbsoluteUri: false } || QueueUrl is { IsAbsoluteUri: false })
            yield return new ValidationResult("Rpt:Marketplace:Aws:ServiceUrl and QueueUrl must be absolute addresses.");
    }
}
