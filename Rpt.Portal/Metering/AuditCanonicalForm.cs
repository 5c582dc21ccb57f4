using System.Buffers.Text;

namespace Rpt.Portal.Metering;

/// <summary>
/// The canonical form of an audit record, what a consumption entry's digest is taken over, built here in C# so that
/// every storage engine gives the same bytes for the same record (docs/LEDGER-FORMAT.md specifies it). Version 1:
/// every column of <c>usage_events</c> in <see cref="Columns"/> order, each written as <c>{length}:{value};</c>, where the
/// value of an integer column is its decimal digits (a leading '-' when negative), the value of a text column is the
/// text itself, and the length counts Unicode characters (scalar values), not bytes; a null is written <c>-;</c>.
/// The whole form is UTF-8. Version 1 is, byte for byte, what the first releases had SQLite compute
/// (<c>length(CAST(x AS TEXT)) || ':' || CAST(x AS TEXT) || ';'</c>), so every digest written before verifies.
/// Version 2 adds two trailing columns, <c>project</c> and <c>api_key_id</c>, written only when either holds a value and
/// then after the marker <c>+;</c> (which no column's form starts with, so back-to-back records still split unambiguously):
/// a record without both is written exactly as in version 1, so every earlier digest still verifies.
/// </summary>
public static class AuditCanonicalForm
{
    public const int Version = 2;

    /// <summary>The columns every record's form has; those after them (<see cref="Columns"/> beyond this) are written only
    /// when at least one of them is not null.</summary>
    public const int CoreColumns = 23;

    /// <summary>The columns of the form, in order, and whether each holds an integer (else text).</summary>
    public static readonly IReadOnlyList<(string Name, bool Integer)> Columns =
    [
        ("seq", true), ("tenant_id", false), ("event_id", false), ("occurred_at", true), ("received_at", true),
        ("period_start", false), ("provider", false), ("model", false), ("meter", false), ("quantity", false),
        ("input_tokens", true), ("output_tokens", true), ("cached_input_tokens", true), ("feature", false),
        ("job_id", false), ("user_id", false), ("status", false), ("internal", true), ("billable", true),
        ("price_id", true), ("rule_id", true), ("cost_usd", false), ("micro_credits", true),
        ("project", false), ("api_key_id", false),
    ];

    /// <summary>The Unicode characters of valid UTF-8: every byte that does not continue a character starts one.</summary>
    public static int CharacterCount(ReadOnlySpan<byte> utf8)
    {
        var continuation = 0;
        foreach (var b in utf8)
            if ((b & 0xC0) == 0x80) continuation++;
        return utf8.Length - continuation;
    }

    /// <summary>Builds one record's form into a reused buffer: no string per record.</summary>
    public sealed class Builder
    {
        private byte[] _buffer = new byte[2048];
        private int _length;

        public ReadOnlySpan<byte> Written => _buffer.AsSpan(0, _length);

        public void Clear() => _length = 0;

        public void Null() => Append("-;"u8);

        /// <summary>The marker before the trailing columns of version 2.</summary>
        public void Trailing() => Append("+;"u8);

        public void Integer(long value)
        {
            Span<byte> digits = stackalloc byte[20];
            Utf8Formatter.TryFormat(value, digits, out var n);
            Length(n);
            Append(digits[..n]);
            Append(";"u8);
        }

        public void Text(ReadOnlySpan<byte> utf8)
        {
            Length(CharacterCount(utf8));
            Append(utf8);
            Append(";"u8);
        }

        public void Text(string? value)
        {
            if (value is null)
            {
                Null();
                return;
            }
            Text(System.Text.Encoding.UTF8.GetBytes(value));
        }

        private void Length(int characters)
        {
            Span<byte> digits = stackalloc byte[11];
            Utf8Formatter.TryFormat(characters, digits, out var n);
            Append(digits[..n]);
            Append(":"u8);
        }

        private void Append(ReadOnlySpan<byte> bytes)
        {
            if (_length + bytes.Length > _buffer.Length) Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _length + bytes.Length));
            bytes.CopyTo(_buffer.AsSpan(_length));
            _length += bytes.Length;
        }
    }
}
