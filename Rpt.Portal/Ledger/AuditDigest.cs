using System.Security.Cryptography;
using System.Text;

namespace Rpt.Portal.Ledger;

/// <summary>
/// SHA-256 over the canonical forms of audit records in seq order (<see cref="Metering.AuditCanonicalForm"/>):
/// the digest a consumption entry carries, recomputed by the deep verifier.
/// </summary>
public sealed class AuditDigest : IDisposable
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private byte[] _buffer = new byte[1024];

    public void Add(string canonical)
    {
        var max = Encoding.UTF8.GetMaxByteCount(canonical.Length);
        if (_buffer.Length < max) _buffer = new byte[Math.Max(max, _buffer.Length * 2)];
        var n = Encoding.UTF8.GetBytes(canonical, _buffer);
        _hash.AppendData(_buffer, 0, n);
    }

    /// <summary>The same as <see cref="Add(string)"/> for the string whose UTF-8 these bytes are.</summary>
    public void Add(ReadOnlySpan<byte> canonicalUtf8) => _hash.AppendData(canonicalUtf8);

    public string HexAndReset() => Convert.ToHexStringLower(_hash.GetHashAndReset());

    public void Dispose() => _hash.Dispose();
}
