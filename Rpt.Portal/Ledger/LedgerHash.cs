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
            .Add(e.EventsDigest).Add(e.CreatedAt.ToUnixTimeMilliseconds());
        // Grant fields joined the ledger later: appended only when present, so every earlier entry keeps its hash.
        if (e.ExpiresAt is not null || e.GrantSeq is not null)
            canonical.Add(e.ExpiresAt?.ToUnixTimeMilliseconds()).Add(e.GrantSeq);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(e.PrevHash + canonical.ToString())));
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
