using System.Globalization;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Microsoft.Extensions.Options;
using Rpt.Portal.Data;
using Rpt.Portal.Ledger;

namespace Rpt.Portal.Billing;

public enum MeterReportStatus { Pending, Sent }

/// <summary>
/// One report of overage to Stripe's billing meter: a whole number of credits (the delta since the last report of
/// the period), identified by <c>overage:{tenant}:{period}:{cumulative}</c>. The identifier depends only on what
/// has been reported in total, so a retry, a second process or a restart sends the same identifier, and Stripe
/// counts it once.
/// </summary>
public sealed class MeterReport
{
    private MeterReport() { }

    public MeterReport(string tenantId, string customerId, DateOnly periodStart, long quantity, long cumulative, DateTimeOffset at)
    {
        TenantId = tenantId;
        CustomerId = customerId;
        PeriodStart = periodStart;
        Quantity = quantity;
        Cumulative = cumulative;
        Identifier = $"overage:{tenantId}:{periodStart.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)}:{cumulative}";
        CreatedAt = at;
        NextAttemptAt = at;
    }

    public string Identifier { get; private set; } = "";
    public string TenantId { get; private set; } = "";
    public string CustomerId { get; private set; } = "";
    public DateOnly PeriodStart { get; private set; }
    /// <summary>Credits this report adds (positive).</summary>
    public long Quantity { get; private set; }
    /// <summary>Credits reported for the period once this one is counted.</summary>
    public long Cumulative { get; private set; }
    public MeterReportStatus Status { get; private set; }
    public int Attempts { get; private set; }
    public DateTimeOffset NextAttemptAt { get; private set; }
    public string? LastError { get; private set; }
    public DateTimeOffset CreatedAt { get; private set; }
    public DateTimeOffset? SentAt { get; private set; }

    public void Sent(DateTimeOffset at)
    {
        Attempts++;
        Status = MeterReportStatus.Sent;
        SentAt = at;
        LastError = null;
    }

    /// <summary>Waits 1, 2, 4 … minutes, at most an hour, before the next try.</summary>
    public void Failed(string error, DateTimeOffset at)
    {
        Attempts++;
        LastError = error.Length > 500 ? error[..500] : error;
        NextAttemptAt = at + TimeSpan.FromMinutes(Math.Min(60, Math.Pow(2, Math.Min(Attempts - 1, 6))));
    }
}

public sealed class MeterReportConfiguration : IEntityTypeConfiguration<MeterReport>
{
    public void Configure(EntityTypeBuilder<MeterReport> b)
    {
        b.ToTable("meter_reports");
        b.HasKey(r => r.Identifier);
        b.Property(r => r.Identifier).HasMaxLength(200);
        b.Property(r => r.TenantId).HasMaxLength(64);
        b.Property(r => r.CustomerId).HasMaxLength(128);
        b.Property(r => r.Status).HasConversion(EnumText.Converter<MeterReportStatus>()).HasMaxLength(16);
        b.Property(r => r.LastError).HasMaxLength(500);
        b.HasIndex(r => new { r.TenantId, r.PeriodStart, r.Cumulative }).IsUnique();
        b.HasIndex(r => new { r.Status, r.NextAttemptAt });
    }
}

/// <summary>
/// Reports overage (credits past every grant, on plans that bill it) to Stripe's billing meter as whole-credit
/// deltas (docs/RULES.md, "External reporting"): quantity = overage so far − what was reported, never negative
/// (overage that a later top-up covers was reported already and stays reported). A report is written to
/// <c>meter_reports</c> before it is sent; one that fails is retried on a growing schedule that the row holds,
/// so it survives restarts, while Stripe.net retries a request's transient failures with the same
/// idempotency key. A tenant whose report fails never holds back another.
/// </summary>
public sealed class ReportOverage(IDbContextFactory<ApplicationDbContext> dbFactory, GetBalance balances, IBillingGateway gateway,
    IOptions<StripeOptions> options, TimeProvider time, ILogger<ReportOverage> logger)
{
    public async Task<(int Written, int Sent)> ExecuteAsync(CancellationToken ct = default)
    {
        var now = time.GetUtcNow();
        var written = 0;
        await using (var db = await dbFactory.CreateDbContextAsync(ct))
        {
            var tenants = await db.Tenants.AsNoTracking().Where(t => t.StripeCustomerId != null)
                .Join(db.Plans.Where(p => p.Overage == Plans.OveragePolicy.Overage), t => t.PlanCode, p => p.Code, (t, p) => t)
                .ToListAsync(ct);
            foreach (var tenant in tenants)
            {
                var current = tenant.PeriodAt(now);
                // The period that just ended too: its last usage may have been flushed after the last run.
                foreach (var at in new[] { current.StartInstant.AddMilliseconds(-1), now })
                {
                    if (at < tenant.SubscriptionStart) continue;
                    var balance = balances.Execute(tenant.Id, at);
                    if (balance is null || balance.Overage != Plans.OveragePolicy.Overage) continue;
                    var period = balance.Period.Start;
                    var reported = await db.MeterReports.Where(r => r.TenantId == tenant.Id && r.PeriodStart == period)
                        .Select(r => (long?)r.Cumulative).MaxAsync(ct) ?? 0;
                    var delta = balance.OverageCredits - reported;
                    if (delta <= 0) continue;
                    db.MeterReports.Add(new MeterReport(tenant.Id, tenant.StripeCustomerId!, period, delta, balance.OverageCredits, now));
                    try
                    {
                        await db.SaveChangesAsync(ct);
                        written++;
                    }
                    catch (DbUpdateException)
                    {
                        db.ChangeTracker.Clear(); // another process wrote the same report first
                    }
                }
            }
        }

        var sent = 0;
        await using (var db = await dbFactory.CreateDbContextAsync(ct))
        {
            var due = await db.MeterReports.Where(r => r.Status == MeterReportStatus.Pending && r.NextAttemptAt <= now)
                .OrderBy(r => r.CreatedAt).Take(500).ToListAsync(ct);
            foreach (var report in due)
            {
                try
                {
                    await gateway.ReportMeterEventAsync(options.Value.OverageMeterEvent, report.CustomerId, report.Quantity, report.Identifier,
                        report.CreatedAt, ct);
                    report.Sent(time.GetUtcNow());
                    sent++;
                }
                catch (Exception ex) when (ex is Stripe.StripeException or HttpRequestException or BillingException or TaskCanceledException)
                {
                    report.Failed(ex.Message, time.GetUtcNow());
                    logger.LogWarning("Overage report {Identifier} failed (attempt {Attempts}); next try at {Next}: {Error}",
                        report.Identifier, report.Attempts, report.NextAttemptAt, ex.Message);
                }
                await db.SaveChangesAsync(ct);
            }
        }
        return (written, sent);
    }

    /// <summary>The report log, newest first, for the operator.</summary>
    public async Task<IReadOnlyList<MeterReport>> LogAsync(string? tenantId, int take = 200, CancellationToken ct = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(ct);
        var query = db.MeterReports.AsNoTracking();
        if (tenantId is not null) query = query.Where(r => r.TenantId == tenantId);
        return await query.OrderByDescending(r => r.CreatedAt).ThenByDescending(r => r.Cumulative).Take(take).ToListAsync(ct);
    }
}

public sealed class OverageReportScheduler(ReportOverage report, IOptions<Ledger.LedgerOptions> ledger, TimeProvider time,
    ILogger<OverageReportScheduler> logger, IWorkLeases leases) : PeriodicJob(time, logger, leases)
{
    protected override string? Lease => Data.Lease.OverageReports;

    protected override TimeSpan Interval => ledger.Value.RenewalInterval;
    protected override string FailureMessage => "Reporting overage failed";

    protected override async Task RunOnceAsync(CancellationToken cancellationToken)
    {
        var (written, sent) = await report.ExecuteAsync();
        if (written + sent > 0) logger.LogInformation("Overage reports: {Written} written, {Sent} sent", written, sent);
    }
}
