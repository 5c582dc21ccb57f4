using Rpt.Portal.Ledger;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Operations;

/// <summary>What a correction did, for the console and the command line alike.</summary>
/// <param name="Field">The input at fault when refused.</param>
public sealed record CorrectionResult(bool Done, bool Repeated, LedgerEntry? Entry, string? Error = null, string? Field = null);

/// <summary>
/// An operator's corrections of a tenant's credits: a grant (<c>adjustment</c> or <c>top_up</c>, with a reason) and a
/// void of what a grant still holds. Each writes its ledger entry, then its audit record, whose subject names the entry
/// (<c>ledger seq N</c>) so that the reconciliation pairs them. A retry with the same key writes neither again, and
/// writes the audit record if the first attempt stopped between the two.
/// </summary>
public sealed class Corrections(GrantCredits grant, VoidGrant @void, AuditLog audit)
{
    public const string GrantAction = "credits.grant";
    public const string VoidAction = "credits.void";

    /// <summary>The audit subject of a ledger entry.</summary>
    public static string Subject(long seq) => $"ledger seq {seq}";

    public async Task<CorrectionResult> GrantAsync(AuditActor actor, string tenantId, EntrySource source, long credits, string key, string? reason,
        DateTimeOffset? expiresAt, bool reasonRequired, CancellationToken cancellationToken = default)
    {
        reason = reason?.Trim();
        if (reasonRequired && string.IsNullOrEmpty(reason))
            return new(false, false, null, "a reason is required: the tenant reads it on the grant, the audit log keeps it", "reason");
        if (reason is { Length: > VoidGrant.MaxReason }) return new(false, false, null, $"the reason is {reason.Length} characters; at most {VoidGrant.MaxReason}", "reason");
        if (source is not (EntrySource.Adjustment or EntrySource.TopUp))
            return new(false, false, null, "an operator grants an adjustment or a top-up", "source");
        var result = await grant.ExecuteAsync(tenantId, source, credits, $"{EnumText.ToText(source)}:{key}", string.IsNullOrEmpty(reason) ? null : reason,
            expiresAt: expiresAt, cancellationToken: cancellationToken);
        if (result.Status == GrantStatus.Rejected) return new(false, false, null, result.Error, "credits");
        var entry = result.Entry!;
        await RecordOnceAsync(actor, GrantAction, tenantId, entry, new
        {
            credits = Credit.FloorCredits(entry.AmountMicroCredits), source = EnumText.ToText(entry.Source), key, reason = entry.Description,
            expires_at = entry.ExpiresAt >= CreditGrants.Never ? null : entry.ExpiresAt,
        }, null, cancellationToken);
        return new(true, result.Status == GrantStatus.AlreadyGranted, entry);
    }

    public async Task<CorrectionResult> VoidAsync(AuditActor actor, string tenantId, long grantSeq, string key, string? reason,
        CancellationToken cancellationToken = default)
    {
        var result = await @void.ExecuteAsync(tenantId, grantSeq, reason, $"void:{key}", cancellationToken);
        if (result.Status == VoidStatus.Rejected) return new(false, false, null, result.Error, result.Field);
        var entry = result.Entry!;
        await RecordOnceAsync(actor, VoidAction, tenantId, entry,
            new { grant_seq = grantSeq, remaining_credits = 0, voided_credits = entry.Credits, key, reason = entry.Description },
            new { grant_seq = grantSeq, remaining_credits = entry.Credits }, cancellationToken);
        return new(true, result.Status == VoidStatus.AlreadyVoided, entry);
    }

    private async Task RecordOnceAsync(AuditActor actor, string action, string tenantId, LedgerEntry entry, object after, object? before,
        CancellationToken cancellationToken)
    {
        if (await audit.RecordedAsync(action, tenantId, Subject(entry.Seq), cancellationToken)) return;
        await audit.AppendAsync(actor, action, tenantId, Subject(entry.Seq), before, after, cancellationToken);
    }
}
