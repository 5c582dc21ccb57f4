using System.Data.Common;
using Rpt.Portal.Data;
using Rpt.Portal.Metering;
using Rpt.Portal.Plans;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Ledger;

/// <summary>A tenant's position in the current billing period.</summary>
public sealed record Balance(
    string TenantId,
    string PlanCode,
    OveragePolicy Overage,
    BillingPeriod Period,
    long AllocatedMicroCredits,
    long ConsumedMicroCredits,
    long FlushedMicroCredits,
    long InternalMicroCredits,
    long TotalTokens,
    IReadOnlyDictionary<string, long> TokensByModel,
    IReadOnlyDictionary<string, decimal> UnitsByMeter)
{
    public bool Unlimited => Overage == OveragePolicy.Unlimited;
    public long? Allocated => Unlimited ? null : Credit.FloorCredits(AllocatedMicroCredits);
    public long Consumed => Credit.FloorCredits(ConsumedMicroCredits);

    /// <summary>Negative only on a plan that allows overage; zero once a blocked plan is used up.</summary>
    public long? Remaining => Unlimited ? null
        : Overage == OveragePolicy.Overage ? Allocated - Consumed
        : Math.Max(0, Allocated!.Value - Consumed);

    /// <summary>Credits consumed beyond the allocation (billed at the plan's overage price where it has one).</summary>
    public long OverageCredits => Unlimited ? 0 : Math.Max(0, Consumed - Allocated!.Value);

    /// <summary>The plan's price of one credit past the allocation; null where the plan has none.</summary>
    public decimal? OverageUsdPerCredit { get; init; }

    /// <summary>What the overage so far costs, to the cent; null on a plan without an overage price.</summary>
    public decimal? OverageUsd => Overage == OveragePolicy.Overage && OverageUsdPerCredit is { } rate
        ? decimal.Round(OverageCredits * rate, 2, MidpointRounding.AwayFromZero) : null;

    /// <summary>What the tenant's active holds still hold (docs/RULES.md, "Reservations").</summary>
    public long ReservedMicroCredits { get; init; }

    /// <summary>Held credits, rounded up: a hold of 0.4 credits still holds one.</summary>
    public long Reserved => -Credit.FloorCredits(-ReservedMicroCredits);

    /// <summary>What a new job may use: remaining less what holds keep for running jobs (never below zero where the plan stops).</summary>
    public long? Available => Unlimited ? null
        : Overage == OveragePolicy.Overage ? Remaining - Reserved
        : Math.Max(0, Remaining!.Value - Reserved);

    /// <summary>Consumed but not yet written to the ledger by the flusher.</summary>
    public long UnflushedMicroCredits => ConsumedMicroCredits - FlushedMicroCredits;

    /// <summary>Exact (unrounded), so that a threshold is passed only when it really is; round for display.</summary>
    public decimal PercentConsumed => Unlimited || AllocatedMicroCredits <= 0 ? 0m
        : ConsumedMicroCredits * 100m / AllocatedMicroCredits;
}

/// <summary>
/// Reads a balance: the allocations of the period, and consumption as the flushed ledger plus the
/// unflushed remainder (the running totals that ingestion keeps in the same transaction as the events,
/// so every acknowledged event counts), less what active holds keep. Every figure is read by one batch of
/// indexed statements, one round trip to a database server: it stays fast at any event count, and on a busy
/// server the quota check does not wait for its turn once per figure.
/// </summary>
public sealed class GetBalance(PortalDatabase database, TenantDirectory tenants, CreditGrants grants, TimeProvider time)
{
    public Balance? Execute(string tenantId, DateTimeOffset? at = null) => Execute(tenantId, at, null);

    /// <summary>
    /// The balance, read in one snapshot and, on PostgreSQL, one round trip. <paramref name="also"/>: statements of another
    /// feature read in the same command (the quota check's budgets), whose results it reads itself.
    /// </summary>
    public Balance? Execute(string tenantId, DateTimeOffset? at, IBatchedRead? also)
    {
        if (!TryPeriod(tenantId, at, out var period, out var now)) return null;
        using var connection = database.Open();
        Parts? parts;
        using (var read = database.ReadOneSnapshot(connection, Sql(also))) parts = Run(read.Command, tenantId, period, now, also);
        return FromSnapshot(parts, connection, tenantId, period, at);
    }

    /// <summary>
    /// The same, for a caller that may stop waiting (the quota check): on PostgreSQL the round trip is awaited, so a read that
    /// waits for the server holds no thread; SQLite reads in process, on a pool thread, which the caller can leave behind.
    /// </summary>
    public async Task<Balance?> ExecuteAsync(string tenantId, DateTimeOffset? at, IBatchedRead? also, CancellationToken cancellationToken)
    {
        if (database.Engine != StorageEngine.Postgres) return await Task.Run(() => Execute(tenantId, at, also), cancellationToken);
        if (!TryPeriod(tenantId, at, out var period, out var now)) return null;
        await using var connection = await database.OpenAsync(cancellationToken);
        Parts? parts;
        using (var read = database.ReadOneSnapshot(connection, Sql(also)))
        {
            BindAll(read.Command, tenantId, period, now, also, null);
            await using var r = await read.Command.ExecuteReaderAsync(cancellationToken);
            // The figures arrive in the same answer; they are read as they come.
            parts = ReadAll(r, also);
        }
        return FromSnapshot(parts, connection, tenantId, period, at);
    }

    /// <summary>The balance from one snapshot's figures; where a grant of an earlier period may still hold credits (rare), read
    /// again, with its replay, in one transaction.</summary>
    private Balance? FromSnapshot(Parts? parts, DbConnection connection, string tenantId, BillingPeriod period, DateTimeOffset? at)
    {
        if (parts is null) return null;
        if (!parts.Carried) return parts.Balance(tenantId, period, 0);
        using var tx = database.BeginRead(connection);
        return Read(connection, tx, tenantId, at);
    }

    /// <summary>
    /// The statements of one balance, in the order they answer: the tenant and its plan; the period's ledger sums by kind;
    /// whether a grant of an earlier period may still hold credits; the period's running totals; what active holds keep
    /// (each hold less what its job drew since, one sum however many jobs run). Named parameters only, SQL both engines run.
    /// </summary>
    private static readonly string Batch = $$"""
        SELECT t.plan_code, p.overage_policy, p.overage_usd_per_credit FROM tenants t JOIN plans p ON p.code = t.plan_code WHERE t.id = @t;
        SELECT kind, micro_credits FROM ledger_period_sums WHERE tenant_id = @t AND period_start = @p;
        {{CreditGrants.CarryProbeSql}};
        SELECT category, name, is_meter, input_tokens + output_tokens + cached_input_tokens, quantity_micro, micro_credits
          FROM usage_totals WHERE tenant_id = @t AND period_start = @p;
        """ + Reservations.OutstandingSql;

    /// <summary>The same, inside a transaction the caller holds (a statement reads its balance and its entries in one snapshot),
    /// with <paramref name="also"/> read in the same command.</summary>
    internal Balance? Read(DbConnection connection, DbTransaction tx, string tenantId, DateTimeOffset? at, IBatchedRead? also = null)
    {
        // The period follows from the tenant's billing anchor, which is fixed when the tenant is created (and cached by the
        // directory), so the statements that depend on it go in the same batch as the tenant's row.
        if (!TryPeriod(tenantId, at, out var period, out var now)) return null;
        Parts? parts;
        using (var cmd = connection.Command(Sql(also), tx)) parts = Run(cmd, tenantId, period, now, also);
        return Finish(parts, connection, tx, tenantId, period);
    }

    /// <summary>
    /// The same, with <paramref name="first"/>'s statements before the balance's and <paramref name="also"/>'s after them, awaited:
    /// a hold's lock goes first (the balance's statements then read what was committed before the lock was granted), and a
    /// hold that waits for it waits without a thread. Null when the tenant does not exist; <paramref name="first"/> is then not run.
    /// </summary>
    internal async Task<Balance?> ReadAsync(DbConnection connection, DbTransaction tx, string tenantId, DateTimeOffset? at, IBatchedRead first, IBatchedRead? also,
        CancellationToken cancellationToken)
    {
        if (!TryPeriod(tenantId, at, out var period, out var now)) return null;
        Parts? parts;
        await using (var cmd = connection.Command(first.Sql + Sql(also), tx))
        {
            BindAll(cmd, tenantId, period, now, also, first);
            // The first statement's answer is what waits (for the lock); the rest is read as it comes.
            await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
            first.Read(r);
            r.NextResult();
            parts = ReadAll(r, also);
        }
        return Finish(parts, connection, tx, tenantId, period);
    }

    private bool TryPeriod(string tenantId, DateTimeOffset? at, out BillingPeriod period, out DateTimeOffset now)
    {
        now = time.GetUtcNow();
        period = default;
        if (!tenants.TryGetAnchor(tenantId, out var anchor)) return false;
        period = BillingPeriod.Containing(anchor, at ?? now);
        return true;
    }

    /// <summary>The balance from the batch's figures. What top-ups and adjustments of earlier periods still hold counts in this
    /// period's allocation (docs/RULES.md, "Credit grants"); only when one may still hold credits are the grants replayed.</summary>
    private Balance? Finish(Parts? parts, DbConnection connection, DbTransaction tx, string tenantId, BillingPeriod period) =>
        parts?.Balance(tenantId, period, parts.Carried ? grants.ReplayCarriedInto(connection, tx, tenantId, period) : 0);

    private static string Sql(IBatchedRead? also) => also is null ? Batch : Batch + also.Sql;

    /// <summary>Binds and runs the batch (and <paramref name="also"/>'s statements after it); the batch's figures, null for no tenant.</summary>
    private static Parts? Run(DbCommand cmd, string tenantId, BillingPeriod period, DateTimeOffset now, IBatchedRead? also)
    {
        BindAll(cmd, tenantId, period, now, also, null);
        using var r = cmd.ExecuteReader();
        return ReadAll(r, also);
    }

    private static void BindAll(DbCommand cmd, string tenantId, BillingPeriod period, DateTimeOffset now, IBatchedRead? also, IBatchedRead? first)
    {
        Bind(cmd, tenantId, period, now);
        first?.Bind(cmd);
        also?.Bind(cmd);
    }

    /// <summary>The batch's figures and then <paramref name="also"/>'s results; the reader is at the batch's first result.</summary>
    private static Parts? ReadAll(DbDataReader r, IBatchedRead? also)
    {
        var parts = ReadParts(r);
        if (parts is not null && also is not null)
        {
            r.NextResult();
            also.Read(r);
        }
        return parts;
    }

    private static void Bind(DbCommand cmd, string tenantId, BillingPeriod period, DateTimeOffset now) => cmd
        .With("t", tenantId)
        .With("p", period.Start)
        .With("start", period.StartInstant.ToUnixTimeMilliseconds())
        .With("now", now.ToUnixTimeMilliseconds());

    /// <summary>The batch's figures as read; null when the tenant does not exist.</summary>
    private sealed record Parts(string PlanCode, OveragePolicy Overage, decimal? OverageRate, long Allocated, long Flushed, long Consumed,
        long InternalMicro, long Tokens, SortedDictionary<string, long> ByModel, SortedDictionary<string, decimal> ByMeter, long Reserved, bool Carried)
    {
        public Balance Balance(string tenantId, BillingPeriod period, long carriedIn) =>
            new(tenantId, PlanCode, Overage, period, checked(Allocated + carriedIn), Consumed, Flushed, InternalMicro, Tokens, ByModel, ByMeter)
            {
                OverageUsdPerCredit = OverageRate,
                ReservedMicroCredits = Reserved,
            };
    }

    /// <summary>Reads the batch's five results; the reader is left at the last of them.</summary>
    private static Parts? ReadParts(DbDataReader r)
    {
        long allocated = 0, flushed = 0, consumed = 0, internalMicro = 0, tokens = 0;
        var byModel = new SortedDictionary<string, long>(StringComparer.Ordinal);
        var byMeter = new SortedDictionary<string, decimal>(StringComparer.Ordinal);
        if (!r.Read()) return null;
        var planCode = r.GetString(0);
        var overage = Enum.Parse<OveragePolicy>(r.GetString(1));
        decimal? overageRate = r.IsDBNull(2) ? null : r.GetDecimal(2);

        r.NextResult();
        while (r.Read())
        {
            // A void takes back what its grant still held: the period's allocation is what was granted less what was voided.
            if (r.GetString(0) == "allocation") allocated = checked(allocated + r.GetInt64(1));
            else if (r.GetString(0) == "void") allocated = checked(allocated - r.GetInt64(1));
            else if (r.GetString(0) == "consumption") flushed = r.GetInt64(1);
        }

        r.NextResult();
        var carried = r.Read();

        r.NextResult();
        while (r.Read())
        {
            var (category, name, isMeter, micro) = (r.GetString(0), r.GetString(1), r.GetBoolean(2), r.GetInt64(5));
            if (category == UsageCategory.Internal) internalMicro += micro;
            if (category != UsageCategory.Billable) continue;
            consumed += micro;
            if (isMeter)
            {
                byMeter[name] = byMeter.GetValueOrDefault(name) + r.GetInt64(4) / 1_000_000m;
            }
            else
            {
                tokens += r.GetInt64(3);
                byModel[name] = byModel.GetValueOrDefault(name) + r.GetInt64(3);
            }
        }

        r.NextResult();
        r.Read();
        var reserved = r.GetInt64(0);
        return new Parts(planCode, overage, overageRate, allocated, flushed, consumed, internalMicro, tokens, byModel, byMeter, reserved, carried);
    }
}
