using System.ComponentModel.DataAnnotations;
using MailKit.Net.Smtp;
using MailKit.Security;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;
using MimeKit;
using Rpt.Portal.Data;

namespace Rpt.Portal.Mail;

/// <summary>Rpt:Email. Without an SMTP host, mail is written to the log (Development).</summary>
public sealed class EmailOptions
{
    public string? SmtpHost { get; set; }

    [Range(1, 65535, ErrorMessage = "Rpt:Email:SmtpPort must be between 1 and 65535.")]
    public int SmtpPort { get; set; } = 587;

    public string? SmtpUser { get; set; }

    /// <summary>From an environment variable or user secrets, never a committed file.</summary>
    public string? SmtpPassword { get; set; }

    [Required(ErrorMessage = "Rpt:Email:From is required."), EmailAddress(ErrorMessage = "Rpt:Email:From must be an email address.")]
    public string From { get; set; } = "no-reply@rpt.local";
}

/// <summary>Sends account mail (confirmation, password reset) over SMTP with MailKit, or logs it when no SMTP host is set.</summary>
public sealed class PortalEmailSender(IOptions<EmailOptions> options, ILogger<PortalEmailSender> logger, Observability.PortalMetrics metrics)
    : IEmailSender<ApplicationUser>
{
    public bool DeliversMail => !string.IsNullOrWhiteSpace(options.Value.SmtpHost);

    public Task SendConfirmationLinkAsync(ApplicationUser user, string email, string confirmationLink) =>
        SendAsync(email, "Confirm your Rpt Portal account", $"Please confirm your account by <a href='{confirmationLink}'>clicking here</a>.");

    public Task SendPasswordResetLinkAsync(ApplicationUser user, string email, string resetLink) =>
        SendAsync(email, "Reset your Rpt Portal password", $"Please reset your password by <a href='{resetLink}'>clicking here</a>.");

    public Task SendPasswordResetCodeAsync(ApplicationUser user, string email, string resetCode) =>
        SendAsync(email, "Reset your Rpt Portal password", $"Please reset your password using the following code: {resetCode}");

    public Task SendAsync(string to, string subject, string html) => SendAsync(to, subject, html, MimeKit.Text.TextFormat.Html);

    /// <summary>A plain-text message (alerts: readable in any client, numbers and a link).</summary>
    public Task SendTextAsync(string to, string subject, string text) => SendAsync(to, subject, text, MimeKit.Text.TextFormat.Plain);

    private async Task SendAsync(string to, string subject, string body, MimeKit.Text.TextFormat format)
    {
        var o = options.Value;
        if (!DeliversMail)
        {
            logger.LogInformation("Email to {To} (no SMTP host configured, so it is logged): {Subject}\n{Body}", to, subject, body);
            return;
        }
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse(o.From));
        message.To.Add(MailboxAddress.Parse(to));
        message.Subject = subject;
        message.Body = new TextPart(format) { Text = body };
        try
        {
            using var client = new SmtpClient();
            await client.ConnectAsync(o.SmtpHost!, o.SmtpPort, SecureSocketOptions.Auto);
            if (!string.IsNullOrEmpty(o.SmtpUser)) await client.AuthenticateAsync(o.SmtpUser, o.SmtpPassword ?? "");
            await client.SendAsync(message);
            await client.DisconnectAsync(true);
        }
        catch
        {
            metrics.MailsFailed.Add(1);
            throw;
        }
        metrics.MailsSent.Add(1);
    }
}
