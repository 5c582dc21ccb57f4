using System.Diagnostics.Metrics;

namespace Rpt.Portal.Observability;

/// <summary>
/// The portal's own instruments (meter <c>Rpt.Portal</c>), recorded where the work happens and exported with the
/// libraries' (ASP.NET Core, the runtime, HttpClient, Npgsql) on /metrics. Tags are few and fixed (an outcome, a reason,
/// a kind): never a tenant, a key or an id, so no client can grow the series. docs/OPERATIONS.md lists them.
/// </summary>
public sealed class PortalMetrics
{
    public const string MeterName = "Rpt.Portal";

    private long _laggingTenants;
    private long _unflushedEvents;

    public PortalMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(MeterName);
        EventsAccepted = meter.CreateCounter<long>("rpt.events.accepted", "{event}", "Usage events accepted: durable and counted in the balance.");
        EventsDuplicate = meter.CreateCounter<long>("rpt.events.duplicate", "{event}", "Usage events whose id was already counted (a client's retry).");
        EventsRejected = meter.CreateCounter<long>("rpt.events.rejected", "{event}",
            "Usage events rejected, by reason: malformed (not the JSON of an event), invalid (a field out of its rules), unpriced (no price for the model or meter), period_limit.");
        BatchDuration = meter.CreateHistogram<double>("rpt.ingest.batch.duration", "s", "From a batch's arrival to its answer, every event durable.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });
        BalanceLatency = meter.CreateHistogram<double>("rpt.events.balance_latency", "s",
            "From an event's arrival until the balance counts it (the commit that writes it also updates the running totals).",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] });
        FlushDuration = meter.CreateHistogram<double>("rpt.flush.duration", "s", "One run of the flusher, which writes rated usage to the ledger.");
        FlushedEvents = meter.CreateCounter<long>("rpt.flush.events", "{event}", "Audit records the flusher wrote into consumption entries.");
        meter.CreateObservableGauge("rpt.flush.lagging_tenants", () => Volatile.Read(ref _laggingTenants), "{tenant}",
            "Tenants whose usage the flusher could not write in its last run (each retried on its own).");
        meter.CreateObservableGauge("rpt.flush.unflushed_events", () => Volatile.Read(ref _unflushedEvents), "{event}",
            "Accepted events not yet in the ledger after the flusher's last run (they count in every balance already).");
        QuotaChecks = meter.CreateCounter<long>("rpt.quota.checks", "{check}", "Quota checks by outcome: allowed, denied, fail_open (the ledger did not answer in time).");
        WebhookAttempts = meter.CreateCounter<long>("rpt.webhooks.attempts", "{attempt}", "Webhook delivery attempts by outcome: delivered, failed.");
        AlertsFired = meter.CreateCounter<long>("rpt.alerts.fired", "{alert}", "Alert rules that fired, by kind.");
        MailsSent = meter.CreateCounter<long>("rpt.mail.sent", "{mail}", "Mails handed to the SMTP server.");
        MailsFailed = meter.CreateCounter<long>("rpt.mail.failed", "{mail}", "Mails the SMTP server did not take (alert mails are retried).");
    }

    public Counter<long> EventsAccepted { get; }
    public Counter<long> EventsDuplicate { get; }
    public Counter<long> EventsRejected { get; }
    public Histogram<double> BatchDuration { get; }
    public Histogram<double> BalanceLatency { get; }
    public Histogram<double> FlushDuration { get; }
    public Counter<long> FlushedEvents { get; }
    public Counter<long> QuotaChecks { get; }
    public Counter<long> WebhookAttempts { get; }
    public Counter<long> AlertsFired { get; }
    public Counter<long> MailsSent { get; }
    public Counter<long> MailsFailed { get; }

    /// <summary>What the flusher left behind in its last run.</summary>
    public void FlushState(long laggingTenants, long unflushedEvents)
    {
        Volatile.Write(ref _laggingTenants, laggingTenants);
        Volatile.Write(ref _unflushedEvents, Math.Max(0, unflushedEvents));
    }

    public void Rejected(string reason, long count = 1) => EventsRejected.Add(count, new KeyValuePair<string, object?>("reason", reason));
    public void Outcome(Counter<long> counter, string outcome) => counter.Add(1, new KeyValuePair<string, object?>("outcome", outcome));
}
