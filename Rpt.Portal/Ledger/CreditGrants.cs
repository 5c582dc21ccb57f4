using System.Globalization;
using Microsoft.Data.Sqlite;
using Rpt.Portal.Data;

namespace Rpt.Portal.Ledger;

public enum CreditGrantStatus { Active, Depleted, Expired }

/// <summary>One grant as the draw-down leaves it: what it was, what it still holds, what lapsed.</summary>
public sealed record CreditGrant(
    long Seq,
    EntrySource Source,
    string IdempotencyKey,
    string? Description,
    DateOnly PeriodStart,
    DateTimeOffset EffectiveAt,
    DateTimeOffset? ExpiresAt,
    long GrantedMicro,
    long RemainingMicro,
    long ExpiredMicro,
    bool ExpiryWritten)
{
    public CreditGrantStatus StatusAt(DateTimeOffset now) =>
        ExpiryWritten || ExpiresAt <= now ? CreditGrantStatus.Expired : RemainingMicro == 0 ? CreditGrantStatus.Depleted : CreditGrantStatus.Active;
}

/// <summary>The grants of a tenant after the draw-down, and what consumption no grant covered (overage), per period.</summary>
public sealed record GrantLedger(IReadOnlyList<CreditGrant> Grants, IReadOnlyDictionary<DateOnly, long> UncoveredMicroByPeriod,
    IReadOnlyList<string> Discrepancies)
{
    /// <summary>Grants in the order consumption uses them (the published draw-down order).</summary>
    public IEnumerable<CreditGrant> InDrawDownOrder => Grants.OrderBy(g => g.ExpiresAt ?? DateTimeOffset.MaxValue)
        .ThenBy(g => CreditGrants.Rank(g.Source)).ThenBy(g => g.Seq);
}

/// <summary>
/// Derives every grant's state from the ledger, never from mutable state. Consumption draws down the grants
/// active in its billing period in the published order: soonest <c>expires_at</c> first; on a tie plan
/// allocations, then top-ups, then adjustments; then the oldest. An expiry entry closes its grant with what
/// it held. Consumption entries are summed per period between two grant or expiry entries (a handful of
/// indexed range sums), so the derivation costs the number of grants, not the number of flushes.
/// Within one such run, older periods draw first.
/// </summary>
public sealed class CreditGrants(SqliteDatabase database, TimeProvider time)
{
    /// <summary>An expiry that never comes (adjustments granted without one); stored so that null keeps meaning "an entry from before grants expired".</summary>
    public static readonly DateTimeOffset Never = new(9999, 12, 31, 0, 0, 0, TimeSpan.Zero);

    public static int Rank(EntrySource source) => source switch
    {
        EntrySource.Signup or EntrySource.Renewal or EntrySource.PlanChange => 0,
        EntrySource.TopUp => 1,
        _ => 2,
    };

    public static bool IsPlanSource(EntrySource source) => Rank(source) == 0;

    /// <summary>
    /// When a new grant expires. Plan allocations at the end of their period; top-ups 12 months after they are
    /// granted, adjustments never, unless the operator says otherwise. Expiries fall on period boundaries: an
    /// expiry inside a period is moved to that period's end (never earlier than promised), so that a period's
    /// consumption meets one set of grants.
    /// </summary>
    public static DateTimeOffset ExpiryOf(DateOnly anchor, EntrySource source, BillingPeriod period, DateTimeOffset now, DateTimeOffset? requested)
    {
        if (IsPlanSource(source)) return period.EndInstant;
        var wanted = requested ?? (source == EntrySource.TopUp ? now.AddMonths(12) : Never);
        if (wanted >= Never) return Never;
        var end = BillingPeriod.Containing(anchor, wanted.AddTicks(-1)).EndInstant;
        return end < period.EndInstant ? period.EndInstant : end;
    }

    public GrantLedger Derive(string tenantId, DateOnly? beforePeriod = null)
    {
        using var connection = database.Open();
        using var tx = connection.BeginTransaction(deferred: true);
        return Derive(connection, tx, tenantId, beforePeriod);
    }

    /// <param name="beforePeriod">Only grants and consumption of earlier periods: the state at that period's start.</param>
    internal GrantLedger Derive(SqliteConnection connection, SqliteTransaction tx, string tenantId, DateOnly? beforePeriod = null)
    {
        var anchor = Anchor(connection, tx, tenantId);
        var boundaries = new List<(long Seq, bool Expiry, CreditGrantRow Row)>();
        using (var cmd = connection.CreateCommand())
        {
            cmd.Transaction = tx;
            cmd.CommandText = """
                SELECT seq, kind, source, amount_micro_credits, period_start, created_at, expires_at, grant_seq, idempotency_key, description
                FROM ledger_entries WHERE tenant_id = $t AND kind IN ('allocation', 'expiry') ORDER BY seq
                """;
            cmd.Parameters.AddWithValue("$t", tenantId);
            using var r = cmd.ExecuteReader();
            while (r.Read())
            {
                var periodStart = DateOnly.ParseExact(r.GetString(4), "yyyy-MM-dd", CultureInfo.InvariantCulture);
                if (beforePeriod is { } b && periodStart >= b) continue;
                var row = new CreditGrantRow(r.GetInt64(0), EnumText.Parse<EntrySource>(r.GetString(2)), r.GetInt64(3), periodStart,
                    DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(5)), r.IsDBNull(6) ? null : DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(6)),
                    r.IsDBNull(7) ? null : r.GetInt64(7), r.GetString(8), r.IsDBNull(9) ? null : r.GetString(9));
                boundaries.Add((row.Seq, r.GetString(1) == "expiry", row));
            }
        }

        var grants = new Dictionary<long, Running>();
        var uncovered = new SortedDictionary<DateOnly, long>();
        var discrepancies = new List<string>();
        long previous = 0;
        foreach (var (seq, expiry, row) in boundaries.Append((long.MaxValue, false, null!)))
        {
            foreach (var (period, amount) in ConsumptionBetween(connection, tx, tenantId, previous, seq, beforePeriod))
                Draw(grants, anchor, period, amount, uncovered);
            previous = seq;
            if (row is null) break;
            if (!expiry)
            {
                // An entry from before grants expired (null) lapses with its period, as the rule then said.
                var expires = row.ExpiresAt ?? BillingPeriod.Containing(anchor, row.PeriodStart).EndInstant;
                grants[row.Seq] = new Running(row, expires) { Remaining = row.Amount };
            }
            else if (row.GrantSeq is { } g && grants.TryGetValue(g, out var lapsed))
            {
                if (lapsed.Remaining != row.Amount)
                    discrepancies.Add($"expiry entry #{row.Seq} says grant #{g} held {row.Amount} µcr; the draw-down says {lapsed.Remaining} µcr");
                lapsed.Expired = row.Amount;
                lapsed.Remaining = 0;
                lapsed.Closed = true;
            }
            else
            {
                discrepancies.Add($"expiry entry #{row.Seq} names no grant of this ledger");
            }
        }

        var list = grants.Values.Select(s => new CreditGrant(s.Row.Seq, s.Row.Source, s.Row.Key, s.Row.Description, s.Row.PeriodStart,
            s.Row.CreatedAt, s.ExpiresAt >= Never ? null : s.ExpiresAt, s.Row.Amount, s.Remaining, s.Expired, s.Closed)).ToList();
        return new GrantLedger(list, uncovered, discrepancies);
    }

    /// <summary>What the grants of earlier periods still hold at the start of <paramref name="period"/> (0 without a query of consumption when none can).</summary>
    internal long CarriedInto(SqliteConnection connection, SqliteTransaction tx, string tenantId, BillingPeriod period)
    {
        using (var cmd = connection.CreateCommand())
        {
            cmd.Transaction = tx;
            cmd.CommandText = """
                SELECT 1 FROM ledger_entries
                WHERE tenant_id = $t AND kind = 'allocation' AND period_start < $p AND expires_at > $start LIMIT 1
                """;
            cmd.Parameters.AddWithValue("$t", tenantId);
            cmd.Parameters.AddWithValue("$p", period.Start.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
            cmd.Parameters.AddWithValue("$start", period.StartInstant.ToUnixTimeMilliseconds());
            if (cmd.ExecuteScalar() is null) return 0;
        }
        return Derive(connection, tx, tenantId, period.Start).Grants
            .Where(g => !g.ExpiryWritten && (g.ExpiresAt ?? Never) > period.StartInstant).Sum(g => g.RemainingMicro);
    }

    private static void Draw(Dictionary<long, Running> grants, DateOnly anchor, DateOnly period, long amount, SortedDictionary<DateOnly, long> uncovered)
    {
        var start = BillingPeriod.Containing(anchor, period).StartInstant;
        foreach (var g in grants.Values
                     .Where(g => !g.Closed && g.Remaining > 0 && g.Row.PeriodStart <= period && g.ExpiresAt > start)
                     .OrderBy(g => g.ExpiresAt).ThenBy(g => Rank(g.Row.Source)).ThenBy(g => g.Row.Seq))
        {
            if (amount == 0) return;
            var take = Math.Min(amount, g.Remaining);
            g.Remaining -= take;
            amount -= take;
        }
        if (amount > 0) uncovered[period] = checked(uncovered.GetValueOrDefault(period) + amount);
    }

    private static IEnumerable<(DateOnly Period, long Amount)> ConsumptionBetween(SqliteConnection connection, SqliteTransaction tx, string tenantId,
        long afterSeq, long beforeSeq, DateOnly? beforePeriod)
    {
        using var cmd = connection.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = """
            SELECT period_start, SUM(amount_micro_credits) FROM ledger_entries
            WHERE tenant_id = $t AND kind = 'consumption' AND seq > $a AND seq < $b
            GROUP BY period_start ORDER BY period_start
            """;
        cmd.Parameters.AddWithValue("$t", tenantId);
        cmd.Parameters.AddWithValue("$a", afterSeq);
        cmd.Parameters.AddWithValue("$b", beforeSeq);
        using var r = cmd.ExecuteReader();
        var runs = new List<(DateOnly, long)>();
        while (r.Read())
        {
            var period = DateOnly.ParseExact(r.GetString(0), "yyyy-MM-dd", CultureInfo.InvariantCulture);
            if (beforePeriod is { } b && period >= b) continue;
            runs.Add((period, r.GetInt64(1)));
        }
        return runs;
    }

    private static DateOnly Anchor(SqliteConnection connection, SqliteTransaction tx, string tenantId)
    {
        using var cmd = connection.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = "SELECT subscription_start FROM tenants WHERE id = $t";
        cmd.Parameters.AddWithValue("$t", tenantId);
        return cmd.ExecuteScalar() is long ms
            ? DateOnly.FromDateTime(DateTimeOffset.FromUnixTimeMilliseconds(ms).UtcDateTime)
            : throw new KeyNotFoundException($"unknown tenant '{tenantId}'");
    }

    private sealed record CreditGrantRow(long Seq, EntrySource Source, long Amount, DateOnly PeriodStart, DateTimeOffset CreatedAt,
        DateTimeOffset? ExpiresAt, long? GrantSeq, string Key, string? Description);

    private sealed class Running(CreditGrantRow row, DateTimeOffset expiresAt)
    {
        public CreditGrantRow Row { get; } = row;
        public DateTimeOffset ExpiresAt { get; } = expiresAt;
        public long Remaining { get; set; }
        public long Expired { get; set; }
        public bool Closed { get; set; }
    }

    /// <summary>Every grant of a tenant as of now, for the Credits page and <c>GET /v1/credits/grants</c>.</summary>
    public GrantLedger Current(string tenantId) => Derive(tenantId);

    public DateTimeOffset Now => time.GetUtcNow();
}
