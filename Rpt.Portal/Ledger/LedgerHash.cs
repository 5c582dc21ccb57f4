using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Rpt.Portal.Ledger;

/// <summary>
/// hash = SHA-256(previous_hash ‖ canonical form of the entry). The canonical form length-prefixes every
/// field ("7:acme-01;"), so no value can be shifted from one field into the next without changing it.
/// </summary>
public static class LedgerHash
{
    public const string Genesis = "0000000000000000000000000000000000000000000000000000000000000000";

    public static string Compute(LedgerEntry e)
    {
        var canonical = new CanonicalWriter()
            .Add(e.TenantId).Add(e.Seq).Add(EnumText.ToText(e.Kind)).Add(EnumText.ToText(e.Source))
            .Add(e.AmountMicroCredits).Add(e.PeriodStart.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture))
            .Add(e.IdempotencyKey).Add(e.Description).Add(e.CoversFromSeq).Add(e.CoversToSeq).Add(e.EventCount)
            .Add(e.EventsDigest).Add(e.CreatedAt.ToUnixTimeMilliseconds())
            .ToString();
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(e.PrevHash + canonical)));
    }
}

/// <summary>Length-prefixed, culture-invariant field encoding shared by the ledger and audit digests.</summary>
public sealed class CanonicalWriter
{
    private readonly StringBuilder _sb = new(256);

    public CanonicalWriter Add(string? value)
    {
        if (value is null) _sb.Append("-;");
        else _sb.Append(value.Length).Append(':').Append(value).Append(';');
        return this;
    }

    public CanonicalWriter Add(long? value) => Add(value?.ToString(CultureInfo.InvariantCulture));

    public void Clear() => _sb.Clear();

    public override string ToString() => _sb.ToString();
}

/// <summary>
/// The canonical form of a usage event (audit record) for the digest a consumption entry carries: every
/// column, length-prefixed ("5:acme1;", "-;" for null), built by SQLite itself so that reading an audit
/// record costs one string, not twenty values. The flusher and the verifier select <see cref="Expression"/>.
/// </summary>
public static class AuditCanonical
{
    private static readonly string[] Columns =
    [
        "seq", "event_id", "occurred_at", "provider", "model", "meter", "quantity", "input_tokens", "output_tokens",
        "cached_input_tokens", "feature", "job_id", "user_id", "status", "internal", "billable", "price_id", "rule_id",
        "cost_usd", "micro_credits",
    ];

    public static readonly string Expression = string.Join(" || ", Columns.Select(c =>
        $"(CASE WHEN {c} IS NULL THEN '-;' ELSE length(CAST({c} AS TEXT)) || ':' || CAST({c} AS TEXT) || ';' END)"));

    public static void Append(IncrementalHash hash, string canonical, ref byte[] buffer)
    {
        var max = Encoding.UTF8.GetMaxByteCount(canonical.Length);
        if (buffer.Length < max) buffer = new byte[Math.Max(max, buffer.Length * 2)];
        var n = Encoding.UTF8.GetBytes(canonical, buffer);
        hash.AppendData(buffer, 0, n);
    }
}
