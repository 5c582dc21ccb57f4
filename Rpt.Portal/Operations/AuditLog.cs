using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Rpt.Portal.Data;
using Rpt.Portal.Ledger;

namespace Rpt.Portal.Operations;

/// <summary>
/// One operator action: who, when, from where, what (an action name such as <c>credits.grant</c>, the tenant and the
/// thing it touched) and the values before and after, as JSON. Append-only (triggers on both engines) and hash-chained
/// like the ledger: hash = SHA-256(prev_hash ‖ canonical form), one chain for the whole installation.
/// </summary>
public sealed class OperatorAuditRecord
{
    private OperatorAuditRecord() { }

    internal OperatorAuditRecord(long seq, DateTimeOffset at, string actor, string origin, string action, string? tenantId, string? subject,
        string? oldValue, string? newValue, string prevHash)
    {
        Seq = seq;
        At = DateTimeOffset.FromUnixTimeMilliseconds(at.ToUnixTimeMilliseconds());
        Actor = actor;
        Origin = origin;
        Action = action;
        TenantId = tenantId;
        Subject = subject;
        OldValue = oldValue;
        NewValue = newValue;
        PrevHash = prevHash;
        Hash = ComputeHash();
    }

    public long Id { get; private set; }
    /// <summary>1, 2, 3 … over the installation; a gap or a repeat breaks the chain.</summary>
    public long Seq { get; private set; }
    public DateTimeOffset At { get; private set; }
    /// <summary>The operator: a portal sign-in's email, or the command line's <c>--as</c> (else the OS user).</summary>
    public string Actor { get; private set; } = "";
    /// <summary>Where from: <c>cli@HOST</c>, or the browser's address.</summary>
    public string Origin { get; private set; } = "";
    public string Action { get; private set; } = "";
    public string? TenantId { get; private set; }
    public string? Subject { get; private set; }
    public string? OldValue { get; private set; }
    public string? NewValue { get; private set; }
    public string PrevHash { get; private set; } = "";
    public string Hash { get; private set; } = "";

    internal string ComputeHash()
    {
        var canonical = new CanonicalWriter().Add(Seq).Add(At.ToUnixTimeMilliseconds()).Add(Actor).Add(Origin).Add(Action)
            .Add(TenantId).Add(Subject).Add(OldValue).Add(NewValue).ToString();
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(PrevHash + canonical)));
    }
}

public sealed class OperatorAuditRecordConfiguration : IEntityTypeConfiguration<OperatorAuditRecord>
{
    public void Configure(EntityTypeBuilder<OperatorAuditRecord> b)
    {
        b.ToTable("operator_audit");
        b.HasKey(r => r.Id);
        b.HasIndex(r => r.Seq).IsUnique().HasDatabaseName("ux_operator_audit_seq");
        b.HasIndex(r => new { r.TenantId, r.Seq }).HasDatabaseName("ix_operator_audit_tenant");
        b.Property(r => r.Actor).HasMaxLength(AuditLog.MaxText);
        b.Property(r => r.Origin).HasMaxLength(AuditLog.MaxText);
        b.Property(r => r.Action).HasMaxLength(64);
        b.Property(r => r.TenantId).HasMaxLength(AuditLog.MaxText);
        b.Property(r => r.Subject).HasMaxLength(AuditLog.MaxText);
        b.Property(r => r.PrevHash).HasMaxLength(64);
        b.Property(r => r.Hash).HasMaxLength(64);
    }
}

/// <summary>Who acts, and from where.</summary>
public sealed record AuditActor(string Who, string From)
{
    /// <summary>The command line: <c>--as EMAIL</c>, else the operating system's user; from <c>cli@HOST</c>.</summary>
    public static AuditActor CommandLine(string? asWho) =>
        new(string.IsNullOrWhiteSpace(asWho) ? Environment.UserName : asWho.Trim(), $"cli@{Environment.MachineName}");
}

public sealed record AuditVerification(bool Intact, long Records, string HeadHash, IReadOnlyList<string> Problems);

/// <summary>The operators' audit log: every operator action appends one record; nothing changes or removes one.</summary>
public sealed class AuditLog(IDbContextFactory<ApplicationDbContext> dbFactory, TimeProvider time)
{
    public const int MaxText = 320;

    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>
    /// Appends a record after the chain's head. Two writers at once (two instances, the console and the command line):
    /// the unique seq refuses the second, which reads the new head and appends after it.
    /// </summary>
    public async Task<OperatorAuditRecord> AppendAsync(AuditActor actor, string action, string? tenantId, string? subject, object? before, object? after,
        CancellationToken cancellationToken = default)
    {
        for (var attempt = 0; ; attempt++)
        {
            await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
            var head = await db.OperatorAudit.AsNoTracking().OrderByDescending(r => r.Seq).Select(r => new { r.Seq, r.Hash }).FirstOrDefaultAsync(cancellationToken);
            var record = new OperatorAuditRecord((head?.Seq ?? 0) + 1, time.GetUtcNow(), Clip(actor.Who)!, Clip(actor.From)!, action, Clip(tenantId), Clip(subject),
                Serialize(before), Serialize(after), head?.Hash ?? LedgerHash.Genesis);
            db.OperatorAudit.Add(record);
            try
            {
                await db.SaveChangesAsync(cancellationToken);
                return record;
            }
            catch (DbUpdateException) when (attempt < 20)
            {
                // Another writer took this seq; read the new head and try again.
            }
        }
    }

    public async Task<List<OperatorAuditRecord>> ListAsync(string? tenantId = null, DateTimeOffset? since = null, int limit = 1000,
        CancellationToken cancellationToken = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var query = db.OperatorAudit.AsNoTracking();
        if (tenantId is not null) query = query.Where(r => r.TenantId == tenantId);
        if (since is { } s) query = query.Where(r => r.At >= s);
        return await query.OrderByDescending(r => r.Seq).Take(limit).ToListAsync(cancellationToken);
    }

    /// <summary>Whether an action on a subject of a tenant was recorded (a retried correction records it once).</summary>
    public async Task<bool> RecordedAsync(string action, string? tenantId, string subject, CancellationToken cancellationToken = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        return await db.OperatorAudit.AnyAsync(r => r.Action == action && r.TenantId == tenantId && r.Subject == subject, cancellationToken);
    }

    /// <summary>Recomputes the chain from the first record: every seq once and in order, every hash over its record and the one before.</summary>
    public async Task<AuditVerification> VerifyAsync(CancellationToken cancellationToken = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var problems = new List<string>();
        var prev = LedgerHash.Genesis;
        long expected = 1, count = 0;
        await foreach (var r in db.OperatorAudit.AsNoTracking().OrderBy(r => r.Seq).AsAsyncEnumerable().WithCancellation(cancellationToken))
        {
            count++;
            if (r.Seq != expected) problems.Add($"record {r.Id}: seq {r.Seq} where {expected} was expected (a record is missing, repeated or moved)");
            if (r.PrevHash != prev) problems.Add($"seq {r.Seq}: previous hash {Short(r.PrevHash)} is not the hash {Short(prev)} of the record before it");
            var recomputed = r.ComputeHash();
            if (recomputed != r.Hash) problems.Add($"seq {r.Seq}: stored hash {Short(r.Hash)} does not match its content (recomputed {Short(recomputed)}): the record was altered");
            prev = r.Hash;
            expected = r.Seq + 1;
        }
        return new AuditVerification(problems.Count == 0, count, prev, problems);
    }

    private static string? Serialize(object? value) => value switch
    {
        null => null,
        string s => JsonSerializer.Serialize(s, Json),
        _ => JsonSerializer.Serialize(value, Json),
    };

    private static string? Clip(string? text) => text is null ? null : text.Length > MaxText ? text[..MaxText] : text;

    private static string Short(string? hash) => hash is null ? "(none)" : hash.Length > 12 ? hash[..12] + "…" : hash;
}
