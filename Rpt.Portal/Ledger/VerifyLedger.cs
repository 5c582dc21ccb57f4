using System.Data.Common;
using System.Globalization;
using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Data;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Ledger;

public sealed record LedgerVerification(
    string TenantId,
    bool Intact,
    long Entries,
    string HeadHash,
    bool Deep,
    IReadOnlyList<string> Problems);

/// <summary>
/// Proves a tenant's ledger was not rewritten: the chain links (every seq once, in order, each hash
/// over its predecessor), and, in a deep check, every consumption entry against the audit records it
/// covers (count, amount, digest) and the running totals against the audit records.
/// A removed last entry leaves a valid but shorter chain; pass the head hash recorded earlier
/// (<paramref name="expectedHead"/>) or run the deep check, which finds flushed events no entry covers.
/// </summary>
public sealed class VerifyLedger(IDbContextFactory<ApplicationDbContext> dbFactory, PortalDatabase database, IUsageStore usage, CreditGrants grants)
{
    public async Task<LedgerVerification> ExecuteAsync(string tenantId, bool deep = false, string? expectedHead = null,
        CancellationToken cancellationToken = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        List<LedgerEntry> entries;
        try
        {
            entries = await db.LedgerEntries.AsNoTracking().Where(e => e.TenantId == tenantId)
                .OrderBy(e => e.Seq).ThenBy(e => e.Id).ToListAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException or InvalidCastException or InvalidOperationException)
        {
            // A value no writer of ours produces (an unknown kind, a malformed date) was written by someone else.
            return new LedgerVerification(tenantId, false, 0, LedgerHash.Genesis, deep, [$"a ledger row cannot be read, so it was not written by Rpt Portal: {ex.Message}"]);
        }
        var problems = new List<string>();
        var prev = LedgerHash.Genesis;
        for (var i = 0; i < entries.Count; i++)
        {
            var e = entries[i];
            if (e.Seq != i + 1) problems.Add($"entry {e.Id}: seq {e.Seq} where {i + 1} was expected (an entry is missing, repeated or moved)");
            if (e.PrevHash != prev) problems.Add($"seq {e.Seq}: previous hash {Short(e.PrevHash)} does not match the hash {Short(prev)} of the entry before it");
            var recomputed = LedgerHash.Compute(e);
            if (recomputed != e.Hash) problems.Add($"seq {e.Seq}: stored hash {Short(e.Hash)} does not match its content (recomputed {Short(recomputed)}): the entry was altered");
            prev = e.Hash;
        }
        var head = entries.Count == 0 ? LedgerHash.Genesis : entries[^1].Hash;
        if (expectedHead is not null && expectedHead != LedgerHash.Genesis && entries.All(e => e.Hash != expectedHead))
            problems.Add($"the recorded head {Short(expectedHead)} is no longer in the chain: entries were removed or rewritten");

        // The sums balances read (ledger_period_sums) hold what the entries add up to, period by period and kind by kind.
        List<LedgerPeriodSum> sums;
        try
        {
            sums = await db.LedgerPeriodSums.AsNoTracking().Where(s => s.TenantId == tenantId).ToListAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException or InvalidCastException or InvalidOperationException)
        {
            problems.Add($"a row of the sums balances read cannot be read, so it was not written by Rpt Portal: {ex.Message}");
            sums = [];
        }
        var added = entries.GroupBy(e => (e.PeriodStart, e.Kind))
            .ToDictionary(g => g.Key, g => (Micro: g.Aggregate(Int128.Zero, (sum, e) => sum + e.AmountMicroCredits), Count: (long)g.Count()));
        foreach (var key in added.Keys.Union(sums.Select(s => (s.PeriodStart, s.Kind))).Order())
        {
            var kept = sums.FirstOrDefault(s => s.PeriodStart == key.PeriodStart && s.Kind == key.Kind);
            var (micro, count) = added.GetValueOrDefault(key);
            if ((Int128)(kept?.MicroCredits ?? 0) != micro || (kept?.Entries ?? 0) != count)
                problems.Add($"period {key.PeriodStart:yyyy-MM-dd}, {EnumText.ToText(key.Kind)}: the sum balances read holds "
                    + (kept is null ? "no row" : $"{Format(kept.MicroCredits)} credits over {kept.Entries} entries")
                    + $", but the entries add up to {Format(micro)} credits over {count}");
        }

        if (deep)
        {
            VerifyAuditRecords(tenantId, entries, problems);
            // Every expiry and void entry holds exactly what the draw-down, derived again from the ledger, left in its grant.
            if (problems.Count == 0 && entries.Any(e => e.Kind is EntryKind.Expiry or EntryKind.Void))
                problems.AddRange(grants.Rederive(tenantId).Discrepancies);
        }
        return new LedgerVerification(tenantId, problems.Count == 0, entries.Count, head, deep, problems);
    }

    public async Task<IReadOnlyList<LedgerVerification>> ExecuteAllAsync(bool deep, CancellationToken cancellationToken = default)
    {
        var chains = await ChainsAsync(cancellationToken);
        var results = new List<LedgerVerification>();
        foreach (var t in chains.All) results.Add(await ExecuteChainAsync(t, chains.Tenants, deep, cancellationToken));
        return results;
    }

    /// <summary>
    /// Every chain in the ledger as well as every tenant, in order: a row moved to another tenant id shows up too.
    /// <see cref="ExecuteChainAsync"/> checks one, so that a caller can show progress over thousands.
    /// </summary>
    public async Task<(IReadOnlyList<string> All, IReadOnlySet<string> Tenants)> ChainsAsync(CancellationToken cancellationToken = default)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var tenants = (await db.Tenants.AsNoTracking().Select(t => t.Id).ToListAsync(cancellationToken)).ToHashSet(StringComparer.Ordinal);
        var chains = await db.LedgerEntries.AsNoTracking().Select(e => e.TenantId).Distinct().ToListAsync(cancellationToken);
        return (tenants.Union(chains).Order(StringComparer.Ordinal).ToList(), tenants);
    }

    /// <summary>One chain of <see cref="ChainsAsync"/>; a chain whose tenant id is not a tenant is broken.</summary>
    public async Task<LedgerVerification> ExecuteChainAsync(string tenantId, IReadOnlySet<string> tenants, bool deep, CancellationToken cancellationToken = default)
    {
        var result = await ExecuteAsync(tenantId, deep, null, cancellationToken);
        return tenants.Contains(tenantId) ? result
            : result with { Intact = false, Problems = [.. result.Problems, $"the ledger holds entries for '{tenantId}', which is not a tenant"] };
    }

    private void VerifyAuditRecords(string tenantId, List<LedgerEntry> entries, List<string> problems)
    {
        using var connection = database.Open();
        using var tx = database.BeginRead(connection);
        using var digest = new AuditDigest();
        foreach (var e in entries.Where(e => e.Kind == EntryKind.Consumption))
        {
            long count = 0;
            Int128 micro = 0;
            usage.VisitRange(connection, tx, e.CoversFromSeq ?? 0, e.CoversToSeq ?? 0, tenantId, Day(e.PeriodStart), (in AuditRecordView r) =>
            {
                count++;
                if (r.Billable) micro += r.MicroCredits;
                digest.Add(r.Canonical);
            });
            var hex = digest.HexAndReset();
            if (count != e.EventCount) problems.Add($"seq {e.Seq}: covers {e.EventCount} audit records but {count} are there");
            if (micro != e.AmountMicroCredits) problems.Add($"seq {e.Seq}: charged {Credit.Format(e.AmountMicroCredits)} credits but its audit records rate to {Format(micro)}");
            if (hex != e.EventsDigest) problems.Add($"seq {e.Seq}: the audit records it covers were altered (digest {Short(hex)}, recorded {Short(e.EventsDigest)})");
        }

        // A lagging tenant's ledger holds its usage up to where its flush stopped (FlushLag), every other tenant's up to the last flush run.
        var watermark = connection.ScalarLong(tx, "SELECT COALESCE(MAX(through_seq), 0) FROM flush_runs");
        using (var cmd = connection.CreateCommand())
        {
            cmd.Transaction = tx;
            cmd.CommandText = "SELECT from_seq FROM flush_lags WHERE tenant_id = @t";
            cmd.With("t", tenantId);
            if (cmd.ExecuteScalar() is long lagFrom) watermark = Math.Min(watermark, lagFrom);
        }
        var flushed = usage.BillablePerPeriod(connection, tx, tenantId, watermark);
        var ledger = entries.Where(e => e.Kind == EntryKind.Consumption).GroupBy(e => Day(e.PeriodStart))
            .ToDictionary(g => g.Key, g => g.Aggregate((Int128)0, (sum, x) => sum + x.AmountMicroCredits));
        foreach (var period in flushed.Keys.Union(ledger.Keys).Order(StringComparer.Ordinal))
        {
            var a = flushed.GetValueOrDefault(period);
            var b = ledger.GetValueOrDefault(period);
            if (a != b) problems.Add($"period {period}: flushed audit records rate to {Format(a)} credits but the ledger consumed {Format(b)}");
        }

        var all = usage.BillablePerPeriod(connection, tx, tenantId);
        var totals = usage.BillableTotalsPerPeriod(connection, tx, tenantId);
        foreach (var period in all.Keys.Union(totals.Keys).Order(StringComparer.Ordinal))
        {
            var a = all.GetValueOrDefault(period);
            var b = totals.GetValueOrDefault(period);
            if (a != b) problems.Add($"period {period}: audit records rate to {Format(a)} credits but the running total says {Format(b)}");
            if (a > UsageLimits.MaxMicroCreditsPerTenantPeriod)
                problems.Add($"period {period}: audit records rate to {Format(a)} credits, past the per-period limit of {UsageLimits.Number(UsageLimits.MaxMicroCreditsPerTenantPeriod)} µcr");
        }

        // Exactly-once: no event id of the tenant is stored twice (the writer's index keeps it so; this checks the records themselves).
        foreach (var (eventId, times) in usage.RepeatedEventIds(connection, tx, tenantId, 5))
            problems.Add($"event id '{eventId}' is stored {times} times: it was counted more than once");

        // Each call points at its own job's row (job_ref is derived; the job's calls are listed through it).
        foreach (var seq in usage.MisreferencedJobs(connection, tx, tenantId, 5))
            problems.Add($"audit record seq {seq} points at another job's row (job_ref): its job would list the wrong calls");

        // The rollups every report reads are derived data: each must equal its recomputation from the audit records.
        try
        {
            Reconcile("daily usage", usage.DailyReconciliation(connection, tx, tenantId), problems);
            Reconcile("job", usage.JobReconciliation(connection, tx, tenantId), problems);
            Reconcile("usage by key, project and end user", usage.ScopeReconciliation(connection, tx, tenantId), problems);
        }
        catch (OverflowException ex)
        {
            problems.Add($"the rollups cannot be recomputed: the audit records sum past 64 bits, beyond every limit ({ex.Message})");
        }
    }

    private static void Reconcile(string what, (Dictionary<string, string> Stored, Dictionary<string, string> Recomputed) rows, List<string> problems)
    {
        var differ = rows.Stored.Keys.Union(rows.Recomputed.Keys)
            .Where(k => rows.Stored.GetValueOrDefault(k) != rows.Recomputed.GetValueOrDefault(k)).Order(StringComparer.Ordinal).ToList();
        foreach (var key in differ.Take(10))
            problems.Add($"{what} rollup {key}: holds [{rows.Stored.GetValueOrDefault(key) ?? "no row"}] but the audit records say [{rows.Recomputed.GetValueOrDefault(key) ?? "no row"}]");
        if (differ.Count > 10) problems.Add($"{what} rollups: {differ.Count - 10} more rows differ from the audit records");
    }

    private static string Format(Int128 micro) =>
        (micro / Credit.MicroPerCredit).ToString(CultureInfo.InvariantCulture)
        + (micro % Credit.MicroPerCredit == 0 ? "" : "." + ((long)(Int128.Abs(micro) % Credit.MicroPerCredit)).ToString("D6", CultureInfo.InvariantCulture).TrimEnd('0'));

    private static string Day(DateOnly d) => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
    private static string Short(string? hash) => hash is null ? "(none)" : hash.Length > 12 ? hash[..12] + "…" : hash;
}
