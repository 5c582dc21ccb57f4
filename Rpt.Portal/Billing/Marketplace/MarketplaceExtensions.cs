using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;

namespace Rpt.Portal.Billing.Marketplace;

public static class MarketplaceExtensions
{
    public const int RegistrationsPerMinute = 20;

    public static IHostApplicationBuilder AddMarketplace(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<AwsMarketplaceOptions>().BindConfiguration("Rpt:Marketplace:Aws")
            .ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<AwsCredentialSource>();
        builder.Services.AddHttpClient(nameof(AwsMeteringClient), c => c.Timeout = TimeSpan.FromSeconds(30));
        builder.Services.AddSingleton(sp => ActivatorUtilities.CreateInstance<AwsMeteringClient>(sp,
            sp.GetRequiredService<IHttpClientFactory>().CreateClient(nameof(AwsMeteringClient))));
        builder.Services.AddSingleton<ReportMarketplaceUsage>();
        builder.Services.AddSingleton<MarketplaceRegistrations>();
        builder.Services.AddHostedService<MarketplaceReportScheduler>();
        builder.Services.AddSingleton<MarketplaceEntitlements>();
        builder.Services.AddSingleton<Metering.IIngestGate>(sp => sp.GetRequiredService<MarketplaceEntitlements>());
        builder.Services.AddSingleton<MarketplaceNotifications>();
        builder.Services.AddHostedService<MarketplaceNotificationReader>();
        builder.Services.AddHostedService<MarketplaceStartupNote>();
        return builder;
    }

    /// <summary>
    /// Where AWS posts a buyer's browser after they subscribe: the token is resolved, and the buyer goes on to open the
    /// account (or link the one they own), or to a page that says why not. AWS posts from its own site, so there is no
    /// antiforgery token to check; the token itself is the proof, good once.
    /// </summary>
    public static IEndpointRouteBuilder MapMarketplace(this IEndpointRouteBuilder app)
    {
        // Each post may cost a call to AWS: one address gets RegistrationsPerMinute a minute, then a page asking it to wait.
        var perAddress = PartitionedRateLimiter.Create<HttpContext, string>(http => RateLimitPartition.GetFixedWindowLimiter(
            http.Connection.RemoteIpAddress?.ToString() ?? "unknown",
            _ => new FixedWindowRateLimiterOptions { PermitLimit = RegistrationsPerMinute, Window = TimeSpan.FromMinutes(1), QueueLimit = 0 }));
        app.MapPost("/marketplace/aws/register", async (HttpContext http, HttpRequest request, MarketplaceRegistrations registrations, CancellationToken ct) =>
        {
            using var lease = perAddress.AttemptAcquire(http);
            if (!lease.IsAcquired) return Results.Redirect("/marketplace/aws/registration/busy");
            string? token = null;
            if (request.HasFormContentType && (request.ContentLength ?? 0) <= 64 * 1024)
            {
                try
                {
                    var form = await request.ReadFormAsync(ct);
                    token = form["x-amzn-marketplace-token"].ToString();
                }
                catch (Exception ex) when (ex is InvalidDataException or BadHttpRequestException)
                {
                    token = null; // a form that cannot be read (a NUL, too many fields) carries no token
                }
            }
            var (outcome, id) = await registrations.RegisterAsync(token, ct);
            return outcome == RegistrationOutcome.Resolved
                ? Results.Redirect($"/Account/Register?marketplace={id}", permanent: false, preserveMethod: false)
                : Results.Redirect($"/marketplace/aws/registration/{outcome.ToString().ToLowerInvariant()}");
        }).DisableAntiforgery().ExcludeFromDescription();
        return app;
    }
}

/// <summary>Says at start-up whether AWS Marketplace billing is on, and which settings turn it on.</summary>
public sealed class MarketplaceStartupNote(IOptions<AwsMarketplaceOptions> options, ILogger<MarketplaceStartupNote> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        var o = options.Value;
        if (o.Enabled)
            logger.LogInformation("AWS Marketplace billing is on: product {Product}, dimension {Dimension}, metering at {Endpoint}, records every {Interval}; entitlement notifications {Queue}",
                o.ProductCode, o.Dimension, o.Endpoint, o.ReportInterval, o.QueueUrl is null ? "are not read (Rpt:Marketplace:Aws:QueueUrl is not set)" : $"from {o.QueueUrl}");
        else
            logger.LogInformation("AWS Marketplace billing is off: set Rpt:Marketplace:Aws:ProductCode (and Dimension, QueueUrl) to sell through AWS Marketplace");
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
