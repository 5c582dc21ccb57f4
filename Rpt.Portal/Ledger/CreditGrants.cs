using System.Globalization;
using System.Data.Common;
using Rpt.Portal.Data;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Ledger;

public enum CreditGrantStatus { Active, Depleted, Expired, Voided }

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
    bool ExpiryWritten,
    long VoidedMicro = 0,
    long? VoidSeq = null,
    string? VoidReason = null)
{
    /// <summary>Voided by an operator (a <c>void</c> entry closed it), whatever its expiry says.</summary>
    public bool Voided => VoidSeq is not null;

    public CreditGrantStatus StatusAt(DateTimeOffset now) =>
        Voided ? CreditGrantStatus.Voided
        : ExpiryWritten || ExpiresAt <= now ? CreditGrantStatus.Expired : RemainingMicro == 0 ? CreditGrantStatus.Depleted : CreditGrantStatus.Active;
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
/// it held; a void entry does the same at the instant an operator wrote it. Consumption entries are summed per period between two grant or expiry entries (a handful of
/// indexed range sums), so the derivation costs the number of grants, not the number of flushes.
/// Within one such run, older periods draw first. A grant counts in its whole period, so consumption of
/// that period which no grant covered when it was flushed (overage so far) is drawn from it first.
/// </summary>
public sealed class CreditGrants(PortalDatabase database)
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

    public GrantLedger Derive(string tenantId)
    {
        using var connection = database.Open();
        using var tx = database.BeginRead(connection);
        return ToLedger(Advance(connection, tx, tenantId));
    }

    /// <summary>The draw-down derived again from the first entry, ignoring what was kept: for the deep verifier, which
    /// must not trust a state derived before a row was altered.</summary>
    public GrantLedger Rederive(string tenantId)
    {
        Forget(tenantId);
        return Derive(tenantId);
    }

    /// <summary>
    /// The draw-down up to the tenant's head. Entries never change, so the state at a sequence number is final:
    /// it is kept (per tenant, in memory, rebuilt from the ledger after a restart) and only the entries after it
    /// are read, so a tenant with years of flushes costs what its new entries cost.
    /// </summary>
    private State Advance(DbConnection connection, DbTransaction tx, string tenantId)
    {
        long head;
        using (var cmd = connection.CreateCommand())
        {
            cmd.Transaction = tx;
            cmd.CommandText = "SELECT COALESCE(MAX(seq), 0) FROM ledger_entries WHERE tenant_id = @t";
            cmd.With("t", tenantId);
            head = (long)cmd.ExecuteScalar()!;
        }
        if (_states.TryGetValue(tenantId, out var known) && known.ThroughSeq == head) return known;
        var state = known is not null && known.ThroughSeq < head ? known.Clone() : new State();
        var anchor = Anchor(connection, tx, tenantId);
        var boundaries = new List<(string Kind, CreditGrantRow Row)>();
        using (var cmd = connection.CreateCommand())
        {
            cmd.Transaction = tx;
            cmd.CommandText = """
                SELECT seq, kind, source, amount_micro_credits, period_start, created_at, expires_at, grant_seq, idempotency_key, description
                FROM ledger_entries WHERE tenant_id = @t AND kind IN ('allocation', 'expiry', 'void') AND seq > @after AND seq <= @head ORDER BY seq
                """;
            cmd.With("t", tenantId);
            cmd.With("after", state.ThroughSeq);
            cmd.With("head", head);
            using var r = cmd.ExecuteReader();
            while (r.Read())
            {
                var row = new CreditGrantRow(r.GetInt64(0), EnumText.Parse<EntrySource>(r.GetString(2)), r.GetInt64(3),
                    r.GetDate(4),
                    DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(5)), r.IsDBNull(6) ? null : DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(6)),
                    r.IsDBNull(7) ? null : r.GetInt64(7), r.GetString(8), r.IsDBNull(9) ? null : r.GetString(9));
                boundaries.Add((r.GetString(1), row));
            }
        }

        var previous = state.ThroughSeq;
        foreach (var (kind, row) in boundaries.Append(("allocation", null!)))
        {
            var upTo = row?.Seq ?? head + 1;
            foreach (var (period, amount) in ConsumptionBetween(connection, tx, tenantId, previous, upTo))
                Draw(state, anchor, period, amount);
            previous = upTo;
            if (row is null) break;
            if (kind == "allocation")
            {
                // An entry from before grants expired (null) lapses with its period, as the rule then said.
                var expires = row.ExpiresAt ?? BillingPeriod.Containing(anchor, row.PeriodStart).EndInstant;
                var grant = state.Grants[row.Seq] = new Running(row, expires) { Remaining = row.Amount };
                // A grant counts in its whole period (allocated = … + what was granted during the period), so it first
                // covers what the period consumed before it came and no grant covered.
                foreach (var (period, uncovered) in state.Uncovered.Where(u => u.Key >= row.PeriodStart).ToList())
                {
                    if (grant.Remaining == 0) break;
                    if (expires <= BillingPeriod.Containing(anchor, period).StartInstant) continue;
                    var take = Math.Min(uncovered, grant.Remaining);
                    grant.Remaining -= take;
                    grant.DrawnByPeriod[period] = grant.DrawnByPeriod.GetValueOrDefault(period) + take;
                    if (uncovered == take) state.Uncovered.Remove(period);
                    else state.Uncovered[period] = uncovered - take;
                }
            }
            else if (row.GrantSeq is { } g && state.Grants.TryGetValue(g, out var lapsed))
            {
                if (lapsed.Closed)
                    state.Discrepancies.Add($"{kind} entry #{row.Seq} closes grant #{g}, which an earlier entry already closed");
                else if (lapsed.Remaining != row.Amount)
                    state.Discrepancies.Add($"{kind} entry #{row.Seq} says grant #{g} held {row.Amount} µcr; the draw-down says {lapsed.Remaining} µcr");
                if (kind == "void")
                {
                    lapsed.Voided = row.Amount;
                    lapsed.VoidSeq = row.Seq;
                    lapsed.VoidPeriod = row.PeriodStart;
                    lapsed.VoidReason = row.Description;
                }
                else
                {
                    lapsed.Expired = row.Amount;
                }
                lapsed.Remaining = 0;
                lapsed.Closed = true;
            }
            else
            {
                state.Discrepancies.Add($"{kind} entry #{row.Seq} names no grant of this ledger");
            }
        }
        state.ThroughSeq = head;
        _states[tenantId] = state;
        return state;
    }

    private static GrantLedger ToLedger(State state) => new(
        state.Grants.Values.Select(s => new CreditGrant(s.Row.Seq, s.Row.Source, s.Row.Key, s.Row.Description, s.Row.PeriodStart,
            s.Row.CreatedAt, s.ExpiresAt >= Never ? null : s.ExpiresAt, s.Row.Amount, s.Remaining, s.Expired, s.Closed && s.VoidSeq is null,
            s.Voided, s.VoidSeq, s.VoidReason)).ToList(),
        new SortedDictionary<DateOnly, long>(state.Uncovered), state.Discrepancies.ToList());

    /// <summary>
    /// Whether a grant of an earlier period (<c>@p</c>, the period's first day) may still hold credits at the period's start
    /// (<c>@start</c>, ms): one row or none. The balance sends it in its batch; <see cref="CarriedInto"/> runs it alone.
    /// </summary>
    internal const string CarryProbeSql =
        "SELECT 1 FROM ledger_entries WHERE tenant_id = @t AND kind = 'allocation' AND period_start < @p AND expires_at > @start LIMIT 1";

    /// <summary>
    /// What grants of earlier periods still held at the start of <paramref name="period"/>: granted less what consumption
    /// of earlier periods drew. No draw-down is read when no such grant can exist (most tenants, most periods).
    /// </summary>
    internal long CarriedInto(DbConnection connection, DbTransaction tx, string tenantId, BillingPeriod period)
    {
        using (var cmd = connection.CreateCommand())
        {
            cmd.Transaction = tx;
            cmd.CommandText = CarryProbeSql;
            cmd.With("t", tenantId);
            cmd.With("p", period.Start);
            cmd.With("start", period.StartInstant.ToUnixTimeMilliseconds());
            if (cmd.ExecuteScalar() is null) return 0;
        }
        return ReplayCarriedInto(connection, tx, tenantId, period);
    }

    /// <summary>The same, once <see cref="CarryProbeSql"/> has found that such a grant may exist: the grants are replayed.</summary>
    internal long ReplayCarriedInto(DbConnection connection, DbTransaction tx, string tenantId, BillingPeriod period)
    {
        var state = Advance(connection, tx, tenantId);
        return state.Grants.Values
            .Where(g => g.Row.PeriodStart < period.Start && g.ExpiresAt > period.StartInstant)
            .Sum(g => g.Row.Amount - g.DrawnByPeriod.Where(d => d.Key < period.Start).Sum(d => d.Value)
                      - (g.VoidPeriod < period.Start ? g.Voided : 0));
    }

    private static void Draw(State state, DateOnly anchor, DateOnly period, long amount)
    {
        var start = BillingPeriod.Containing(anchor, period).StartInstant;
        foreach (var g in state.Grants.Values
                     .Where(g => !g.Closed && g.Remaining > 0 && g.Row.PeriodStart <= period && g.ExpiresAt > start)
                     .OrderBy(g => g.ExpiresAt).ThenBy(g => Rank(g.Row.Source)).ThenBy(g => g.Row.Seq))
        {
            if (amount == 0) return;
            var take = Math.Min(amount, g.Remaining);
            g.Remaining -= take;
            g.DrawnByPeriod[period] = g.DrawnByPeriod.GetValueOrDefault(period) + take;
            amount -= take;
        }
        if (amount > 0) state.Uncovered[period] = checked(state.Uncovered.GetValueOrDefault(period) + amount);
    }

    private static IEnumerable<(DateOnly Period, long Amount)> ConsumptionBetween(DbConnection connection, DbTransaction tx, string tenantId,
        long afterSeq, long beforeSeq)
    {
        using var cmd = connection.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = """
            SELECT period_start, SUM(amount_micro_credits) FROM ledger_entries
            WHERE tenant_id = @t AND kind = 'consumption' AND seq > @a AND seq < @b
            GROUP BY period_start ORDER BY period_start
            """;
        cmd.With("t", tenantId);
        cmd.With("a", afterSeq);
        cmd.With("b", beforeSeq);
        using var r = cmd.ExecuteReader();
        var runs = new List<(DateOnly, long)>();
        while (r.Read())
        {
            runs.Add((r.GetDate(0), r.GetInt64(1)));
        }
        return runs;
    }

    private static DateOnly Anchor(DbConnection connection, DbTransaction tx, string tenantId)
    {
        using var cmd = connection.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = "SELECT subscription_start FROM tenants WHERE id = @t";
        cmd.With("t", tenantId);
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
        public long Voided { get; set; }
        public long? VoidSeq { get; set; }
        /// <summary>The period of the void entry: the grant carries nothing into the periods after it.</summary>
        public DateOnly? VoidPeriod { get; set; }
        public string? VoidReason { get; set; }
        public bool Closed { get; set; }
        public Dictionary<DateOnly, long> DrawnByPeriod { get; private init; } = [];

        public Running Clone() => new(Row, ExpiresAt)
        {
            Remaining = Remaining, Expired = Expired, Voided = Voided, VoidSeq = VoidSeq, VoidPeriod = VoidPeriod, VoidReason = VoidReason, Closed = Closed, DrawnByPeriod = new(DrawnByPeriod),
        };
    }

    /// <summary>The draw-down after the entries up to <see cref="ThroughSeq"/>.</summary>
    private sealed class State
    {
        public long ThroughSeq { get; set; }
        public Dictionary<long, Running> Grants { get; private init; } = [];
        public SortedDictionary<DateOnly, long> Uncovered { get; private init; } = [];
        public List<string> Discrepancies { get; private init; } = [];

        public State Clone() => new()
        {
            ThroughSeq = ThroughSeq,
            Grants = Grants.ToDictionary(g => g.Key, g => g.Value.Clone()),
            Uncovered = new(Uncovered),
            Discrepancies = [.. Discrepancies],
        };
    }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, State> _states = new(StringComparer.Ordinal);

    /// <summary>Every grant of a tenant as of now, for the Credits page and <c>GET /v1/credits/grants</c>.</summary>
    public GrantLedger Current(string tenantId) => Derive(tenantId);

    /// <summary>Forgets what was derived (a test that rewrites a ledger behind the portal's back; an operator's restore).</summary>
    public void Forget(string tenantId) => _states.TryRemove(tenantId, out _);
}
