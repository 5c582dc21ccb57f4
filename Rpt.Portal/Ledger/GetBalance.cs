using System.Data.Common;
using System.Globalization;
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
/// so every acknowledged event counts). A handful of indexed reads: it stays fast at any event count.
/// </summary>
public sealed class GetBalance(PortalDatabase database, IUsageStore usage, CreditGrants grants, TimeProvider time)
{
    public Balance? Execute(string tenantId, DateTimeOffset? at = null)
    {
        using var connection = database.Open();
        using var tx = database.BeginRead(connection);
        return Read(connection, tx, tenantId, at);
    }

    /// <summary>The same, inside a read transaction the caller holds (a statement reads its balance and its entries in one snapshot).</summary>
    internal Balance? Read(DbConnection connection, DbTransaction tx, string tenantId, DateTimeOffset? at)
    {
        using var cmd = connection.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = "SELECT t.plan_code, t.subscription_start, p.overage_policy, p.overage_usd_per_credit FROM tenants t JOIN plans p ON p.code = t.plan_code WHERE t.id = @t";
        cmd.With("t", tenantId);
        string planCode;
        DateOnly anchor;
        OveragePolicy overage;
        decimal? overageRate;
        using (var r = cmd.ExecuteReader())
        {
            if (!r.Read()) return null;
            planCode = r.GetString(0);
            anchor = DateOnly.FromDateTime(DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(1)).UtcDateTime);
            overage = Enum.Parse<OveragePolicy>(r.GetString(2));
            overageRate = r.IsDBNull(3) ? null : r.GetDecimal(3);
        }
        var period = BillingPeriod.Containing(anchor, at ?? time.GetUtcNow());
        var day = period.Start.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

        cmd.With("p", period.Start);
        cmd.CommandText = "SELECT kind, COALESCE(SUM(amount_micro_credits), 0) FROM ledger_entries WHERE tenant_id = @t AND period_start = @p GROUP BY kind";
        long allocated = 0, flushed = 0;
        using (var r = cmd.ExecuteReader())
        {
            while (r.Read())
            {
                if (r.GetString(0) == "allocation") allocated = checked(allocated + r.GetInt64(1));
                else if (r.GetString(0) == "void") allocated = checked(allocated - r.GetInt64(1));
                else if (r.GetString(0) == "consumption") flushed = r.GetInt64(1);
            }
        }
        // A void takes back what its grant still held: the period's allocation is what was granted less what was voided.
        // What top-ups and adjustments of earlier periods still hold counts in this period's allocation (docs/RULES.md, "Credit grants").
        allocated = checked(allocated + grants.CarriedInto(connection, tx, tenantId, period));

        long consumed = 0, internalMicro = 0, tokens = 0;
        var byModel = new SortedDictionary<string, long>(StringComparer.Ordinal);
        var byMeter = new SortedDictionary<string, decimal>(StringComparer.Ordinal);
        foreach (var row in usage.Totals(connection, tx, tenantId, day))
        {
            if (row.Category == UsageCategory.Internal) internalMicro += row.MicroCredits;
            if (row.Category != UsageCategory.Billable) continue;
            consumed += row.MicroCredits;
            if (row.IsMeter)
            {
                byMeter[row.Name] = byMeter.GetValueOrDefault(row.Name) + row.QuantityMicro / 1_000_000m;
            }
            else
            {
                tokens += row.Tokens;
                byModel[row.Name] = byModel.GetValueOrDefault(row.Name) + row.Tokens;
            }
        }
        return new Balance(tenantId, planCode, overage, period, allocated, consumed, flushed, internalMicro, tokens, byModel, byMeter)
        {
            OverageUsdPerCredit = overageRate,
            ReservedMicroCredits = Reservations.Outstanding(connection, tx, tenantId, time.GetUtcNow()),
        };
    }
}
