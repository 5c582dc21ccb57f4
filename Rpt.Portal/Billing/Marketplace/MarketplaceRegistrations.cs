using System.Security.Cryptography;
using System.Text;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Rpt.Portal.Data;

namespace Rpt.Portal.Billing.Marketplace;

/// <summary>What a posted registration token came to: the page the buyer is sent to.</summary>
public enum RegistrationOutcome { Off, Missing, Invalid, OtherProduct, Replayed, AlreadyRegistered, Unavailable, Resolved }

/// <summary>
/// A buyer's registration from AWS Marketplace: the token AWS posts is resolved once (ResolveCustomer) to the buyer's AWS
/// account and product; the buyer then opens an account or links the one they own. A token is kept only as its
/// SHA-256, and a second post of it is refused; an AWS customer is linked to one tenant at most.
/// </summary>
public sealed class MarketplaceRegistrations(IDbContextFactory<ApplicationDbContext> dbFactory, AwsMeteringClient client, ReportMarketplaceUsage report,
    IOptions<AwsMarketplaceOptions> options, TimeProvider time, ILogger<MarketplaceRegistrations> logger)
{
    public const int MaxTokenLength = 4096;

    public async Task<(RegistrationOutcome Outcome, string? RegistrationId)> RegisterAsync(string? token, CancellationToken cancellationToken = default)
    {
        var o = options.Value;
        if (!o.Enabled) return (RegistrationOutcome.Off, null);
        if (string.IsNullOrWhiteSpace(token) || token.Length > MaxTokenLength) return (RegistrationOutcome.Missing, null);
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        if (await db.MarketplaceRegistrations.AnyAsync(r => r.TokenHash == hash, cancellationToken)) return (RegistrationOutcome.Replayed, null);

        ResolvedCustomer customer;
        try
        {
            customer = await client.ResolveCustomerAsync(token, cancellationToken);
        }
        catch (AwsServiceException ex) when (ex.Type is "InvalidTokenException" or "ExpiredTokenException")
        {
            logger.LogWarning("A marketplace registration token did not resolve: {Error}", ex.Message);
            return (RegistrationOutcome.Invalid, null);
        }
        catch (AwsServiceException ex) when (!ex.Retryable)
        {
            // Not the buyer's doing (our credentials, signature or settings): they are told to try later, the operator why.
            logger.LogError("AWS Marketplace refused to resolve a registration token: {Error}", ex.Message);
            return (RegistrationOutcome.Unavailable, null);
        }
        catch (Exception ex) when (ex is AwsServiceException or HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            logger.LogWarning("AWS Marketplace did not resolve a registration token now: {Error}", ex.Message);
            return (RegistrationOutcome.Unavailable, null);
        }
        if (customer.ProductCode != o.ProductCode) return (RegistrationOutcome.OtherProduct, null);
        if (customer.CustomerIdentifier.Length is 0 or > 256 || customer.CustomerAwsAccountId.Length is 0 or > 32) return (RegistrationOutcome.Invalid, null);

        var registration = new MarketplaceRegistration(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)), hash,
            customer.CustomerIdentifier, customer.CustomerAwsAccountId, customer.ProductCode, time.GetUtcNow());
        db.MarketplaceRegistrations.Add(registration);
        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateException)
        {
            return (RegistrationOutcome.Replayed, null); // the same token, posted twice at once
        }
        if (await db.MarketplaceAccounts.AnyAsync(a => a.CustomerIdentifier == customer.CustomerIdentifier, cancellationToken))
            return (RegistrationOutcome.AlreadyRegistered, null);
        return (RegistrationOutcome.Resolved, registration.Id);
    }

    /// <summary>A registration still waiting for its account, or null (unknown, or finished already).</summary>
    public async Task<MarketplaceRegistration?> OpenAsync(string? id, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrEmpty(id) || id.Length > 64) return null;
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        return await db.MarketplaceRegistrations.AsNoTracking().FirstOrDefaultAsync(r => r.Id == id && r.TenantId == null, cancellationToken);
    }

    /// <summary>Links the registration's AWS customer to <paramref name="tenantId"/>: its billing source becomes aws_marketplace. Null, or why not.</summary>
    public async Task<string?> CompleteAsync(string id, string tenantId, CancellationToken cancellationToken = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var registration = await db.MarketplaceRegistrations.FirstOrDefaultAsync(r => r.Id == id, cancellationToken);
        if (registration is null) return "This registration is not known; start again from your AWS Marketplace subscription.";
        if (registration.TenantId is not null) return "This registration was finished already.";
        if (await db.MarketplaceAccounts.AnyAsync(a => a.TenantId == tenantId, cancellationToken)) return "This organisation pays through AWS Marketplace already.";
        if (await db.MarketplaceAccounts.AnyAsync(a => a.CustomerIdentifier == registration.CustomerIdentifier, cancellationToken))
            return "This AWS account is linked to another organisation already.";
        var now = time.GetUtcNow();
        // What the tenant consumed before linking was paid for by its plan: only what follows is reported to AWS.
        var baseline = checked((long)report.ConsumedMicroCredits(tenantId));
        var account = new MarketplaceAccount(tenantId, registration.CustomerIdentifier, registration.CustomerAwsAccountId, registration.ProductCode, baseline, now);
        // Subscribed until the marketplace's notifications say otherwise: any notification, whenever sent, outranks linking,
        // including one that arrived before the buyer finished here (kept as "no tenant is linked to this customer yet").
        var earlier = await db.MarketplaceNotifications.AsNoTracking()
            .Where(n => n.CustomerIdentifier == registration.CustomerIdentifier || n.CustomerIdentifier == registration.CustomerAwsAccountId)
            .ToListAsync(cancellationToken);
        foreach (var n in earlier.OrderBy(n => n.SentAt))
            if (MarketplaceNotifications.StatusOf(n.Action) is { } status && !n.Outcome.StartsWith("for another product", StringComparison.Ordinal))
                account.Apply(status, n.SentAt);
        db.MarketplaceAccounts.Add(account);
        registration.Complete(tenantId, now);
        // From now on AWS bills every credit: the tenant moves to the marketplace plan, which has no allocation to run out of.
        var tenant = await db.Tenants.FirstOrDefaultAsync(t => t.Id == tenantId, cancellationToken);
        if (tenant is null) return $"Unknown organisation '{tenantId}'.";
        if (tenant.PlanCode != options.Value.PlanCode) tenant.ChangePlan(options.Value.PlanCode);
        try
        {
            await db.SaveChangesAsync(cancellationToken);
        }
        catch (DbUpdateException)
        {
            return "This AWS account or organisation was linked a moment ago.";
        }
        logger.LogInformation("Tenant {Tenant} now pays through AWS Marketplace (AWS account {Account})", tenantId, registration.CustomerAwsAccountId);
        return null;
    }

    public async Task<MarketplaceAccount?> AccountAsync(string tenantId, CancellationToken cancellationToken = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        return await db.MarketplaceAccounts.AsNoTracking().FirstOrDefaultAsync(a => a.TenantId == tenantId, cancellationToken);
    }
}
