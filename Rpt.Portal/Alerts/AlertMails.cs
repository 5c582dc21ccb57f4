using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Rpt.Portal.Mail;
using Rpt.Portal.Data;
using Rpt.Portal.Ledger;

namespace Rpt.Portal.Alerts;

public enum AlertMailStatus { Pending, Sent, Failed }

/// <summary>
/// One alert mail to one recipient, written before it is sent, so that a mail server that is down or refuses
/// delays the alert instead of losing it: attempts follow the webhooks' schedule, each one logged as a delivery.
/// </summary>
public sealed class AlertMail
{
    private AlertMail() { }

    public AlertMail(string firingKey, string tenantId, string recipient, string subject, string body, DateTimeOffset at)
    {
        FiringKey = firingKey;
        TenantId = tenantId;
        Recipient = recipient;
        Subject = subject;
        Body = body;
        CreatedAt = at;
        NextAttemptAt = at;
    }

    public long Id { get; private set; }
    public string FiringKey { get; private set; } = "";
    public string TenantId { get; private set; } = "";
    public string Recipient { get; private set; } = "";
    public string Subject { get; private set; } = "";
    public string Body { get; private set; } = "";
    public DateTimeOffset CreatedAt { get; private set; }
    public AlertMailStatus Status { get; private set; }
    public int Attempts { get; private set; }
    public DateTimeOffset NextAttemptAt { get; private set; }

    /// <summary>Immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, as webhooks.</summary>
    public void Attempted(bool sent, DateTimeOffset at)
    {
        Attempts++;
        if (sent) Status = AlertMailStatus.Sent;
        else if (DeliverySchedule.Next(Attempts, at) is { } next) NextAttemptAt = next;
        else Status = AlertMailStatus.Failed;
    }
}

public sealed class AlertMailConfiguration : IEntityTypeConfiguration<AlertMail>
{
    public void Configure(EntityTypeBuilder<AlertMail> b)
    {
        b.ToTable("alert_mails");
        b.HasKey(m => m.Id);
        b.Property(m => m.FiringKey).HasMaxLength(200);
        b.Property(m => m.TenantId).HasMaxLength(64);
        b.Property(m => m.Recipient).HasMaxLength(320);
        b.Property(m => m.Subject).HasMaxLength(300);
        b.Property(m => m.Body).HasMaxLength(8000);
        b.Property(m => m.Status).HasConversion(EnumText.Converter<AlertMailStatus>()).HasMaxLength(16);
        b.HasIndex(m => new { m.Status, m.NextAttemptAt });
    }
}

/// <summary>Sends the alert mails that are due; one recipient's failure never holds back another.</summary>
public sealed class AlertMails(IDbContextFactory<ApplicationDbContext> dbFactory, PortalEmailSender mail, TimeProvider time, ILogger<AlertMails> logger)
{
    private readonly SemaphoreSlim _sending = new(1, 1);

    public async Task EnqueueAsync(IEnumerable<AlertMail> mails, CancellationToken ct = default)
    {
        await using (var db = await dbFactory.CreateDbContextAsync(ct))
        {
            db.AlertMails.AddRange(mails);
            await db.SaveChangesAsync(ct);
        }
        await DeliverDueAsync(ct);
    }

    /// <summary>How long an attempt holds its mail: another instance takes it over after this if the sender died mid-send.</summary>
    public static readonly TimeSpan ClaimFor = TimeSpan.FromMinutes(2);

    /// <summary>
    /// Every attempt that is due. Each mail is claimed first by a conditional update (its attempt count and due time
    /// as read), so that several instances on one database send it once; the claim moves its due time on, so a
    /// claim whose sender died is taken over after <see cref="ClaimFor"/>.
    /// </summary>
    public async Task<int> DeliverDueAsync(CancellationToken ct = default)
    {
        await _sending.WaitAsync(ct);
        try
        {
            var now = time.GetUtcNow();
            await using var db = await dbFactory.CreateDbContextAsync(ct);
            var due = await db.AlertMails.AsNoTracking().Where(m => m.Status == AlertMailStatus.Pending && m.NextAttemptAt <= now)
                .OrderBy(m => m.NextAttemptAt).Take(200).Select(m => new { m.Id, m.Attempts, m.NextAttemptAt }).ToListAsync(ct);
            var sent = 0;
            foreach (var candidate in due)
            {
                var claimed = await db.AlertMails
                    .Where(m => m.Id == candidate.Id && m.Status == AlertMailStatus.Pending && m.Attempts == candidate.Attempts && m.NextAttemptAt == candidate.NextAttemptAt)
                    .ExecuteUpdateAsync(u => u.SetProperty(m => m.NextAttemptAt, now + ClaimFor), ct);
                if (claimed == 0) continue; // another instance has it
                var message = await db.AlertMails.FirstAsync(m => m.Id == candidate.Id, ct);
                string? error = null;
                try
                {
                    await mail.SendTextAsync(message.Recipient, message.Subject, message.Body);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    error = Describe(ex);
                    logger.LogWarning(ex, "Alert {Key} could not be mailed to {To} (attempt {N}); it is tried again later", message.FiringKey, message.Recipient, message.Attempts + 1);
                }
                var at = time.GetUtcNow();
                message.Attempted(error is null, at);
                db.AlertDeliveries.Add(new AlertDelivery(message.FiringKey, message.TenantId, AlertChannels.Email, message.Recipient, error is null, error, at));
                await db.SaveChangesAsync(ct);
                if (error is null) sent++;
            }
            return sent;
        }
        finally
        {
            _sending.Release();
        }
    }

    /// <summary>What the delivery history says of a failed attempt: the server's answer, never an empty line.</summary>
    private static string Describe(Exception ex) => ex switch
    {
        MailKit.Net.Smtp.SmtpCommandException smtp => $"the mail server refused the message ({(int)smtp.StatusCode} {smtp.StatusCode}){(string.IsNullOrWhiteSpace(smtp.Message) ? "" : ": " + smtp.Message)}",
        _ when string.IsNullOrWhiteSpace(ex.Message) => ex.GetType().Name,
        _ => ex.Message,
    };
}

/// <summary>Makes the alert mail attempts that fall due.</summary>
public sealed class AlertMailDispatcher(AlertMails mails, TimeProvider time, ILogger<AlertMailDispatcher> logger, IWorkLeases leases) : PeriodicJob(time, logger, leases)
{
    protected override string? Lease => Data.Lease.AlertMail;

    protected override TimeSpan Interval => TimeSpan.FromSeconds(1);
    protected override string FailureMessage => "Sending alert mail failed";
    protected override Task RunOnceAsync(CancellationToken cancellationToken) => mails.DeliverDueAsync();
}
