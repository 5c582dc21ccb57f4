using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Rpt.Portal.Data;
using Rpt.Portal.Ledger;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Billing;

/// <summary>An owner's auto top-up: below <see cref="ThresholdCredits"/> remaining, buy <see cref="PackCode"/>, at most <see cref="MaxPerPeriod"/> times a period.</summary>
public sealed class AutoTopUpSetting
{
    private AutoTopUpSetting() { }

    public AutoTopUpSetting(string tenantId) => TenantId = tenantId;

    public string TenantId { get; private set; } = "";
    public bool Enabled { get; private set; }
    public long ThresholdCredits { get; private set; }
    public string PackCode { get; private set; } = "";
    public int MaxPerPeriod { get; private set; }
    /// <summary>Fires only when armed; disarmed by a purchase, armed again once remaining is at or above the threshold.</summary>
    public bool Armed { get; private set; } = true;
    public DateTimeOffset UpdatedAt { get; private set; }

    public void Configure(bool enabled, long threshold, string pack, int maxPerPeriod, DateTimeOffset at)
    {
        Enabled = enabled;
        ThresholdCredits = threshold;
        PackCode = pack;
        MaxPerPeriod = maxPerPeriod;
        Armed = true;
        UpdatedAt = at;
    }

    public void Disarm() => Armed = false;
    public void Rearm() => Armed = true;
}

public enum AutoTopUpStatus { Pending, Succeeded, Failed }

/// <summary>One purchase: keyed <c>auto_top_up:{tenant}:{period}:{n}</c> (also the key of its grant and of the payment's idempotency).</summary>
public sealed class AutoTopUpAttempt
{
    private AutoTopUpAttempt() { }

    public AutoTopUpAttempt(string key, string tenantId, DateOnly periodStart, int number, string packCode, DateTimeOffset at)
    {
        Key = key;
        TenantId = tenantId;
        PeriodStart = periodStart;
        Number = number;
        PackCode = packCode;
        CreatedAt = at;
    }

    public string Key { get; private set; } = "";
    public string TenantId { get; private set; } = "";
    public DateOnly PeriodStart { get; private set; }
    public int Number { get; private set; }
    public string PackCode { get; private set; } = "";
    public AutoTopUpStatus Status { get; private set; }
    public string? PaymentIntentId { get; private set; }
    public string? Error { get; private set; }
    public DateTimeOffset CreatedAt { get; private set; }
    public DateTimeOffset? CompletedAt { get; private set; }

    public void Succeeded(string? paymentIntent, DateTimeOffset at)
    {
        Status = AutoTopUpStatus.Succeeded;
        PaymentIntentId = paymentIntent ?? PaymentIntentId;
        Error = null;
        CompletedAt = at;
    }

    public void Failed(string? paymentIntent, string error, DateTimeOffset at)
    {
        if (Status == AutoTopUpStatus.Succeeded) return; // a late failure of an earlier try never undoes a payment
        Status = AutoTopUpStatus.Failed;
        PaymentIntentId = paymentIntent ?? PaymentIntentId;
        Error = error.Length > 500 ? error[..500] : error;
        CompletedAt = at;
    }
}

public sealed class AutoTopUpConfiguration : IEntityTypeConfiguration<AutoTopUpSetting>, IEntityTypeConfiguration<AutoTopUpAttempt>
{
    public void Configure(EntityTypeBuilder<AutoTopUpSetting> b)
    {
        b.ToTable("auto_top_ups");
        b.HasKey(s => s.TenantId);
        b.Property(s => s.TenantId).HasMaxLength(64);
        b.Property(s => s.PackCode).HasMaxLength(32);
    }

    public void Configure(EntityTypeBuilder<AutoTopUpAttempt> b)
    {
        b.ToTable("auto_top_up_attempts");
        b.HasKey(a => a.Key);
        b.Property(a => a.Key).HasMaxLength(200);
        b.Property(a => a.TenantId).HasMaxLength(64);
        b.Property(a => a.PackCode).HasMaxLength(32);
        b.Property(a => a.Status).HasConversion(EnumText.Converter<AutoTopUpStatus>()).HasMaxLength(16);
        b.Property(a => a.PaymentIntentId).HasMaxLength(255);
        b.Property(a => a.Error).HasMaxLength(500);
        b.HasIndex(a => new { a.TenantId, a.PeriodStart, a.Number }).IsUnique();
    }
}

public sealed record AutoTopUpView(AutoTopUpSetting? Setting, IReadOnlyList<AutoTopUpAttempt> Attempts)
{
    public AutoTopUpAttempt? LastFailure => Attempts.FirstOrDefault() is { Status: AutoTopUpStatus.Failed } a ? a : null;
}

/// <summary>
/// Auto top-up (docs/RULES.md): when a tenant's remaining credits fall below the owner's threshold, one pack is
/// bought off-session on the saved card. It fires at most once per crossing (the setting is disarmed by the
/// purchase and armed again only once remaining is back at or above the threshold), at most
/// <c>max_per_period</c> times a period, each purchase keyed <c>auto_top_up:{tenant}:{period}:{n}</c> in the
/// database before the payment is asked for; the credits are granted only when the payment succeeded
/// (<c>payment_intent.succeeded</c>). A failed payment is recorded and shown to owners, never retried in a loop.
/// Evaluated when a tenant's balance moves (flush, grant), for tenants that turned it on: never by polling.
/// </summary>
public sealed class AutoTopUps(IDbContextFactory<ApplicationDbContext> dbFactory, GetBalance balances, IBillingGateway gateway,
    Alerts.Webhooks webhooks, TimeProvider time, TenantChanges changes, ILogger<AutoTopUps> logger)
{
    public const long MaxThreshold = 1_000_000_000;
    public const int MaxPurchasesPerPeriod = 10;

    private readonly ConcurrentDictionary<string, SemaphoreSlim> _locks = new(StringComparer.Ordinal);

    public async Task<AutoTopUpView> ViewAsync(string tenantId, CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var setting = await db.AutoTopUps.AsNoTracking().FirstOrDefaultAsync(s => s.TenantId == tenantId, ct);
        var attempts = await db.AutoTopUpAttempts.AsNoTracking().Where(a => a.TenantId == tenantId)
            .OrderByDescending(a => a.CreatedAt).ThenByDescending(a => a.Number).Take(20).ToListAsync(ct);
        return new(setting, attempts);
    }

    /// <summary>Saves an owner's setting; every value is checked and named when it is wrong.</summary>
    public async Task<BillingStep> ConfigureAsync(string tenantId, string role, bool enabled, long threshold, string packCode, int maxPerPeriod,
        CancellationToken ct = default)
    {
        if (role != PortalRoles.Owner) return new(false, "Only an owner of the account can set up auto top-up.");
        if (threshold is < 1 or > MaxThreshold) return new(false, $"threshold must be between 1 and {MaxThreshold:N0} credits.");
        if (TopUpPacks.Find(packCode) is null) return new(false, $"pack '{packCode}' is not one of: {string.Join(", ", TopUpPacks.All.Select(p => p.Code))}.");
        if (maxPerPeriod is < 1 or > MaxPurchasesPerPeriod) return new(false, $"max_per_period must be between 1 and {MaxPurchasesPerPeriod}.");
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var setting = await db.AutoTopUps.FirstOrDefaultAsync(s => s.TenantId == tenantId, ct);
        if (setting is null) db.AutoTopUps.Add(setting = new AutoTopUpSetting(tenantId));
        setting.Configure(enabled, threshold, packCode, maxPerPeriod, time.GetUtcNow());
        await db.SaveChangesAsync(ct);
        _ = Task.Run(() => EvaluateAsync(tenantId));
        return new(true, enabled
            ? $"Auto top-up is on: below {threshold:N0} credits, one {TopUpPacks.Find(packCode)!.Name} pack is bought, at most {maxPerPeriod} a period."
            : "Auto top-up is off.");
    }

    /// <summary>Looks at one tenant's balance and buys a pack if the rule says so; returns the key of the purchase it started.</summary>
    public async Task<string?> EvaluateAsync(string tenantId, CancellationToken ct = default)
    {
        var gate = _locks.GetOrAdd(tenantId, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(ct);
        try
        {
            AutoTopUpAttempt attempt;
            await using (var db = await dbFactory.CreateDbContextAsync(ct))
            {
                await using var tx = await db.Database.BeginTransactionAsync(ct);
                // The gate above keeps one process to one evaluation per tenant; the tenant's lock does so across
                // instances, so the count of this period's purchases is still so when the next one is recorded.
                await TenantLock.TakeAsync(db, tenantId, ct);
                var setting = await db.AutoTopUps.FirstOrDefaultAsync(s => s.TenantId == tenantId && s.Enabled, ct);
                if (setting is null) return null;
                var balance = balances.Execute(tenantId);
                if (balance is null || balance.Unlimited) return null;
                var remaining = balance.Allocated!.Value - balance.Consumed; // below zero too: the overage is what a pack would cover
                if (remaining >= setting.ThresholdCredits)
                {
                    if (!setting.Armed)
                    {
                        setting.Rearm();
                        await db.SaveChangesAsync(ct);
                        await tx.CommitAsync(ct);
                    }
                    return null;
                }
                if (!setting.Armed) return null;
                var period = balance.Period.Start;
                var count = await db.AutoTopUpAttempts.CountAsync(a => a.TenantId == tenantId && a.PeriodStart == period, ct);
                if (count >= setting.MaxPerPeriod) return null;
                var n = count + 1;
                attempt = new AutoTopUpAttempt($"auto_top_up:{tenantId}:{period.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)}:{n}",
                    tenantId, period, n, setting.PackCode, time.GetUtcNow());
                db.AutoTopUpAttempts.Add(attempt);
                setting.Disarm();
                await db.SaveChangesAsync(ct);
                await tx.CommitAsync(ct);
            }
            logger.LogInformation("Auto top-up {Key}: {Pack}", attempt.Key, attempt.PackCode);
            await ChargeAsync(attempt, ct);
            return attempt.Key;
        }
        finally
        {
            gate.Release();
        }
    }

    private async Task ChargeAsync(AutoTopUpAttempt attempt, CancellationToken ct)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var tenant = await db.Tenants.AsNoTracking().FirstAsync(t => t.Id == attempt.TenantId, ct);
        try
        {
            await gateway.ChargeAutoTopUpAsync(tenant, TopUpPacks.Find(attempt.PackCode)!, attempt.Key, ct);
        }
        catch (Exception ex) when (ex is BillingException or Stripe.StripeException or HttpRequestException)
        {
            // Stripe declines an off-session payment with an error: recorded, shown, not retried.
            var message = ex is Stripe.StripeException se ? se.StripeError?.Message ?? se.Message : ex.Message;
            await RecordAsync(attempt.Key, null, false, message, ct);
        }
    }

    /// <summary>What became of a purchase (from the payment's webhook, or the decline Stripe answered at once).</summary>
    internal async Task RecordAsync(string key, string? paymentIntent, bool succeeded, string? error, CancellationToken ct)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var attempt = await db.AutoTopUpAttempts.FirstOrDefaultAsync(a => a.Key == key, ct);
        if (attempt is null) return;
        if (succeeded) attempt.Succeeded(paymentIntent, time.GetUtcNow());
        else attempt.Failed(paymentIntent, error ?? "the payment failed", time.GetUtcNow());
        await db.SaveChangesAsync(ct);
        changes.Publish(TenantChange.BillingChanged, attempt.TenantId);
        if (!succeeded)
        {
            logger.LogWarning("Auto top-up {Key} failed: {Error}", key, error);
            await webhooks.EmitAsync(attempt.TenantId, "top_up.failed", new { pack = attempt.PackCode, auto_top_up = key, error, stripe_object = paymentIntent }, ct);
        }
    }
}

/// <summary>Evaluates auto top-up when a tenant's balance moves, for the tenants that turned it on.</summary>
public sealed class AutoTopUpMonitor(TenantChanges changes, AutoTopUps autoTopUps, IDbContextFactory<ApplicationDbContext> dbFactory,
    ILogger<AutoTopUpMonitor> logger) : IHostedService
{
    private IDisposable? _subscription;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _subscription = changes.SubscribeAll(async (change, tenants) =>
        {
            if (change is not (TenantChange.UsageFlushed or TenantChange.GrantChanged or TenantChange.PlanChanged)) return;
            HashSet<string> enabled;
            await using (var db = await dbFactory.CreateDbContextAsync())
                enabled = (await db.AutoTopUps.AsNoTracking().Where(s => s.Enabled).Select(s => s.TenantId).ToListAsync()).ToHashSet(StringComparer.Ordinal);
            foreach (var tenant in tenants.Where(enabled.Contains))
            {
                try
                {
                    await autoTopUps.EvaluateAsync(tenant);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    logger.LogWarning(ex, "Evaluating the auto top-up of {Tenant} failed; its next balance change retries", tenant);
                }
            }
        });
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _subscription?.Dispose();
        return Task.CompletedTask;
    }
}
