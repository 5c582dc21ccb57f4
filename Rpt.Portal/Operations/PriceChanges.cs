using System.Globalization;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Microsoft.Extensions.Options;
using Rpt.Portal.Alerts;
using Rpt.Portal.Data;
using Rpt.Portal.Metering;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Operations;

/// <summary><c>Rpt:Prices</c>: how far ahead a price change that raises any tenant's charges is announced.</summary>
public sealed class PriceChangeOptions
{
    /// <summary>A version that makes any tenant pay more takes effect at least this many days after it is added; its notices go out at once.</summary>
    public int NoticeDays { get; set; } = 30;

    /// <summary>How often the notices of scheduled versions are looked for (a version added by another instance or the command line).</summary>
    public TimeSpan NoticeInterval { get; set; } = TimeSpan.FromMinutes(1);
}

/// <summary>One tenant's last 30 days, charged as they were and re-rated under a proposed price.</summary>
public sealed record RepriceRow(string TenantId, string TenantName, long Calls, long ThenMicroCredits, long NowMicroCredits)
{
    public long DifferenceMicroCredits => NowMicroCredits - ThenMicroCredits;
}

/// <summary>
/// What a proposed price would have charged over [<see cref="From"/>, <see cref="ToExclusive"/>), per tenant that used the
/// model or meter, sorted by the size of the difference.
/// </summary>
public sealed record RepricePreview(Price Proposed, Price? Current, DateOnly From, DateOnly ToExclusive, IReadOnlyList<RepriceRow> Tenants)
{
    public long ThenMicroCredits => Tenants.Aggregate(0L, (s, t) => checked(s + t.ThenMicroCredits));
    public long NowMicroCredits => Tenants.Aggregate(0L, (s, t) => checked(s + t.NowMicroCredits));
    public bool AnyonePaysMore => Tenants.Any(t => t.DifferenceMicroCredits > 0);
}

/// <param name="Preview">The re-rating the rules were checked against (and the notices will repeat).</param>
public sealed record PriceChangeResult(Price? Saved, string? Error = null, string? Field = null, RepricePreview? Preview = null);

/// <summary>
/// The price book's changes: a preview that re-rates every tenant's last 30 days under a proposed version, and adding
/// a version (never editing one: a version that is in effect stays as it is, and no past charge is re-rated). A version
/// that would make any tenant pay more starts no sooner than <see cref="PriceChangeOptions.NoticeDays"/> after it is
/// added, and its notices (<see cref="PriceNotices"/>) go out at once. The command line and the console both come here.
/// </summary>
/// <remarks>
/// The preview re-rates the daily rollups (tokens and quantities per tenant, day, model and feature), not each call: a
/// call's charge is rounded to the µcr by itself, so a day's re-rated sum can differ from the sum of re-rated calls by at
/// most half a µcr per call. The console shows whole credits.
/// </remarks>
public sealed class PriceChanges(IDbContextFactory<ApplicationDbContext> dbFactory, PortalDatabase database, IUsageStore usage,
    PriceBookProvider prices, AuditLog audit, TimeProvider time, IOptions<PriceChangeOptions> options)
{
    public const int PreviewDays = 30;

    public RepricePreview Preview(Price proposed)
    {
        var book = prices.Current;
        var now = time.GetUtcNow();
        var today = DateOnly.FromDateTime(now.UtcDateTime);
        var (from, to) = (today.AddDays(-PreviewDays + 1), today.AddDays(1));
        var current = book.Find(proposed.Provider, proposed.Name, proposed.IsMeter, now).Price;
        var rows = new List<RepriceRow>();
        List<(string Id, string Name)> tenants;
        using (var db = dbFactory.CreateDbContext())
            tenants = db.Tenants.AsNoTracking().OrderBy(t => t.Id).Select(t => new { t.Id, t.Name }).AsEnumerable().Select(t => (t.Id, t.Name)).ToList();
        using var connection = database.Open();
        foreach (var (id, name) in tenants)
        {
            long calls = 0, then = 0, again = 0;
            foreach (var r in usage.Daily(connection, null, id, from, to, UsageCategory.Billable))
            {
                if (r.IsMeter != proposed.IsMeter || !string.Equals(r.Provider, proposed.Provider, StringComparison.OrdinalIgnoreCase)
                    || !string.Equals(r.Name, proposed.Name, StringComparison.OrdinalIgnoreCase)) continue;
                calls += r.Calls;
                then = checked(then + r.MicroCredits);
                var rule = book.RuleAt(new DateTimeOffset(r.Day.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero));
                again = checked(again + Rating.MicroCredits(Rating.CostUsd(proposed, r.InputTokens, r.OutputTokens, r.CachedInputTokens, r.QuantityMicro / 1_000_000m), rule));
            }
            if (calls > 0) rows.Add(new RepriceRow(id, name, calls, then, again));
        }
        return new RepricePreview(proposed, current, from, to,
            rows.OrderByDescending(r => Math.Abs(r.DifferenceMicroCredits)).ThenBy(r => r.TenantId, StringComparer.Ordinal).ToList());
    }

    /// <summary>The earliest instant a version that raises someone's charges may take effect, added now.</summary>
    public DateTimeOffset EarliestRaise => time.GetUtcNow().AddDays(options.Value.NoticeDays);

    public async Task<PriceChangeResult> AddAsync(AuditActor actor, Price proposed, CancellationToken cancellationToken = default)
    {
        var now = time.GetUtcNow();
        // A price that starts in the past would rate late-reported calls differently from the ones already charged.
        if (proposed.EffectiveFrom < now.AddMinutes(-1))
            return new(null, $"effective_from {proposed.EffectiveFrom:O} is in the past; a price applies from now or later, so no charge is ever re-rated", "effective_from");
        var preview = Preview(proposed);
        if (preview.AnyonePaysMore && proposed.EffectiveFrom < EarliestRaise.AddMinutes(-1))
            return new(null, $"effective_from: this version raises the charges of {preview.Tenants.Count(t => t.DifferenceMicroCredits > 0)} tenant(s) over their last {PreviewDays} days, "
                + $"so it takes effect at least {options.Value.NoticeDays} days after it is announced: {EarliestRaise:yyyy-MM-dd HH:mm} UTC or later", "effective_from");
        await using (var db = await dbFactory.CreateDbContextAsync(cancellationToken))
        {
            if (await db.Prices.AnyAsync(p => p.Provider == proposed.Provider && p.Model == proposed.Model && p.Meter == proposed.Meter && p.EffectiveFrom == proposed.EffectiveFrom, cancellationToken))
                return new(null, $"{proposed.Provider} {proposed.Name} already has a price effective from {proposed.EffectiveFrom:O}", "effective_from");
            db.Prices.Add(proposed);
            await db.SaveChangesAsync(cancellationToken);
        }
        prices.Reload();
        await audit.AppendAsync(actor, "price.add", null, $"{proposed.Provider} {(proposed.IsMeter ? "meter:" : "")}{proposed.Name}",
            preview.Current is { } c ? Values(c) : null, Values(proposed), cancellationToken);
        return new(proposed, Preview: preview);
    }

    public static object Values(Price p) => p.IsMeter
        ? new { price_id = p.Id, unit = p.UnitPrice, effective_from = p.EffectiveFrom }
        : new { price_id = p.Id, input_per_mtok = p.InputPerMtok, output_per_mtok = p.OutputPerMtok, cached_input_per_mtok = p.CachedInputPerMtok, effective_from = p.EffectiveFrom };
}

/// <summary>That a tenant was told of a scheduled price version (tenant <c>*</c>: every affected tenant was).</summary>
public sealed class PriceNotice
{
    private PriceNotice() { }

    public PriceNotice(long priceId, string tenantId, long thenMicroCredits, long nowMicroCredits, DateTimeOffset sentAt)
    {
        PriceId = priceId;
        TenantId = tenantId;
        ThenMicroCredits = thenMicroCredits;
        NowMicroCredits = nowMicroCredits;
        SentAt = sentAt;
    }

    public const string Done = "*";

    public long PriceId { get; private set; }
    public string TenantId { get; private set; } = "";
    public long ThenMicroCredits { get; private set; }
    public long NowMicroCredits { get; private set; }
    public DateTimeOffset SentAt { get; private set; }
}

public sealed class PriceNoticeConfiguration : IEntityTypeConfiguration<PriceNotice>
{
    public void Configure(EntityTypeBuilder<PriceNotice> b)
    {
        b.ToTable("price_notices");
        b.HasKey(n => new { n.PriceId, n.TenantId });
        b.Property(n => n.TenantId).HasMaxLength(64);
    }
}

/// <summary>
/// Tells each tenant that used a model or meter in the last 30 days of a version scheduled for it: a mail to its owners
/// and the <c>price.changed</c> webhook, each with the tenant's own estimate (its last 30 days, charged then and
/// re-rated). Once per tenant and version (<see cref="PriceNotice"/>), whichever instance or process added it.
/// </summary>
public sealed class PriceNotices(IDbContextFactory<ApplicationDbContext> dbFactory, PriceChanges changes, PriceBookProvider prices, Webhooks webhooks,
    AlertMails mails, IServiceScopeFactory scopes, TimeProvider time, ILogger<PriceNotices> logger)
{
    public async Task<int> ExecuteAsync(CancellationToken cancellationToken = default)
    {
        var now = time.GetUtcNow();
        List<Price> scheduled;
        await using (var db = await dbFactory.CreateDbContextAsync(cancellationToken))
        {
            var done = db.PriceNotices.Where(n => n.TenantId == PriceNotice.Done).Select(n => n.PriceId);
            scheduled = await db.Prices.AsNoTracking().Where(p => !done.Contains(p.Id)).ToListAsync(cancellationToken);
            scheduled = scheduled.Where(p => p.EffectiveFrom > now).OrderBy(p => p.Id).ToList();
        }
        if (scheduled.Count == 0) return 0;
        prices.RefreshIfChanged();
        var sent = 0;
        foreach (var price in scheduled)
        {
            var preview = changes.Preview(price);
            HashSet<string> told;
            await using (var db = await dbFactory.CreateDbContextAsync(cancellationToken))
                told = (await db.PriceNotices.Where(n => n.PriceId == price.Id).Select(n => n.TenantId).ToListAsync(cancellationToken)).ToHashSet(StringComparer.Ordinal);
            foreach (var row in preview.Tenants.Where(t => !told.Contains(t.TenantId)))
            {
                try
                {
                    await TellAsync(preview, row, cancellationToken);
                    sent++;
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    logger.LogWarning(ex, "The notice of price {Price} to {Tenant} failed; the next run tries again", price.Id, row.TenantId);
                    return sent; // this version stays open; the next run resumes where it stopped
                }
            }
            await using (var db = await dbFactory.CreateDbContextAsync(cancellationToken))
            {
                db.PriceNotices.Add(new PriceNotice(price.Id, PriceNotice.Done, preview.ThenMicroCredits, preview.NowMicroCredits, time.GetUtcNow()));
                try { await db.SaveChangesAsync(cancellationToken); } catch (DbUpdateException) { /* another instance finished it */ }
            }
        }
        return sent;
    }

    private async Task TellAsync(RepricePreview preview, RepriceRow row, CancellationToken ct)
    {
        var price = preview.Proposed;
        var effective = price.EffectiveFrom.UtcDateTime.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture);
        var then = Credit.Format(row.ThenMicroCredits);
        var again = Credit.Format(row.NowMicroCredits);
        var difference = (row.DifferenceMicroCredits >= 0 ? "+" : "") + Credit.Format(row.DifferenceMicroCredits);
        await webhooks.EmitAsync(row.TenantId, "price.changed", new
        {
            provider = price.Provider,
            model = price.IsMeter ? null : price.Model,
            meter = price.IsMeter ? price.Meter : null,
            effective_from = price.EffectiveFrom,
            current = preview.Current is { } c ? PriceChanges.Values(c) : null,
            next = PriceChanges.Values(price),
            estimate = new
            {
                from = preview.From, to = preview.ToExclusive.AddDays(-1), calls = row.Calls,
                charged_micro_credits = row.ThenMicroCredits, at_new_price_micro_credits = row.NowMicroCredits, difference_micro_credits = row.DifferenceMicroCredits,
            },
        }, ct);
        List<string> owners;
        using (var scope = scopes.CreateScope())
        {
            var users = scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>();
            owners = (await users.GetUsersInRoleAsync(PortalRoles.Owner)).Where(u => u.TenantId == row.TenantId && u.Email is not null).Select(u => u.Email!).ToList();
        }
        var subject = $"Price change for {price.Name} from {effective} UTC";
        var body = $"""
            The price of {price.Provider} {price.Name} changes on {effective} UTC.
            Now: {Describe(preview.Current)}
            From then: {Describe(price)}

            Your estimate, from your own usage of {price.Name} from {preview.From:yyyy-MM-dd} to {preview.ToExclusive.AddDays(-1):yyyy-MM-dd} ({row.Calls:N0} calls):
            charged {then} credits; at the new price {again} credits ({difference}).
            Charges made before {effective} UTC do not change.
            """;
        var key = $"price:{price.Id}:{row.TenantId}";
        if (owners.Count > 0) await mails.EnqueueAsync(owners.Select(o => new AlertMail(key, row.TenantId, o, subject, body, time.GetUtcNow())).ToList(), ct);
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        db.PriceNotices.Add(new PriceNotice(price.Id, row.TenantId, row.ThenMicroCredits, row.NowMicroCredits, time.GetUtcNow()));
        await db.SaveChangesAsync(ct);
    }

    private static string Describe(Price? p) => p is null ? "no price"
        : p.IsMeter ? $"{Usd(p.UnitPrice!.Value)} per unit"
        : $"{Usd(p.InputPerMtok!.Value)} input, {Usd(p.OutputPerMtok!.Value)} output"
          + (p.CachedInputPerMtok is { } c ? $", {Usd(c)} cached input" : ", cached input at the input price") + " per million tokens";

    private static string Usd(decimal usd) => "$" + usd.ToString("0.00##########", CultureInfo.InvariantCulture);
}

public sealed class PriceNoticeScheduler(PriceNotices notices, IOptions<PriceChangeOptions> options, TimeProvider time, ILogger<PriceNoticeScheduler> logger,
    IWorkLeases leases) : PeriodicJob(time, logger, leases)
{
    protected override string? Lease => Data.Lease.PriceNotices;
    protected override TimeSpan Interval => options.Value.NoticeInterval;
    protected override string FailureMessage => "Sending price-change notices failed";

    protected override async Task RunOnceAsync(CancellationToken cancellationToken)
    {
        var n = await notices.ExecuteAsync();
        if (n > 0) logger.LogInformation("Sent {Count} price-change notices", n);
    }
}
