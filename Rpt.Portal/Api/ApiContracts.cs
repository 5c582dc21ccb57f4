using Rpt.Portal.Data;
using Rpt.Portal.Ledger;
using Rpt.Portal.Metering;
using Rpt.Portal.Plans;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Api;

// The public JSON shapes (snake_case on the wire). Fields may be added; none is ever renamed.

public sealed record BalanceResponse(
    string Plan,
    BillingPeriodDto BillingPeriod,
    CreditsDto Credits,
    TokensDto Tokens,
    OverageDto Overage,
    UsageApartDto Internal,
    IReadOnlyDictionary<string, decimal> UnitsByMeter,
    LedgerStateDto Ledger)
{
    public static BalanceResponse Of(Balance b) => new(
        b.PlanCode,
        new BillingPeriodDto(b.Period.Start, b.Period.End),
        new CreditsDto(b.Allocated, b.Consumed, b.Remaining, b.Unlimited, b.OverageCredits, b.OverageUsd, b.Reserved, b.Available),
        new TokensDto(b.TotalTokens, b.TokensByModel),
        new OverageDto(EnumText.ToText(b.Overage), b.OverageCredits),
        new UsageApartDto(b.InternalMicroCredits),
        b.UnitsByMeter,
        new LedgerStateDto(b.FlushedMicroCredits, b.UnflushedMicroCredits));
}

public sealed record BillingPeriodDto(DateOnly Start, DateOnly End);
/// <param name="Overage">Credits consumed past every grant this period (max(0, consumed − allocated)).</param>
/// <param name="OverageUsd">What that overage costs at the plan's rate; null on a plan without one.</param>
/// <param name="Reserved">What active holds (reservations) still keep for running jobs, rounded up.</param>
/// <param name="Available">remaining − reserved: what a new job may use (never below 0 on a plan that stops at its allocation); null when unlimited.</param>
public sealed record CreditsDto(long? Allocated, long Consumed, long? Remaining, bool Unlimited, long Overage, decimal? OverageUsd, long Reserved, long? Available);

/// <summary>A hold on credits for a job (<c>POST /v1/credits/reservations</c>).</summary>
/// <param name="Id">The client's id: a retry with the same id answers the same hold.</param>
/// <param name="ExpiresInSeconds">10 to 86,400; 3,600 when omitted. A hold lasts 24 h at most in all.</param>
/// <param name="Project">The job's project, for its budgets (a key bound to a project gives its own).</param>
/// <param name="UserId">The end user the job is for, for their budgets.</param>
public sealed record ReservationRequest(string? Id, long? Credits, string? JobId = null, int? ExpiresInSeconds = null, string? Project = null, string? UserId = null);

/// <summary>Extends a hold (a heartbeat for a streaming job).</summary>
public sealed record ReservationExtendRequest(int? ExpiresInSeconds);

/// <param name="Status">held, released or expired.</param>
/// <param name="Used">What the job has drawn of the hold (its rated credits since the hold was placed), in credits.</param>
/// <param name="Remaining">What the hold still keeps for the job (0 once released or expired).</param>
/// <param name="IntoOverage">The hold did not fit in what was available on an overage plan: it runs into overage.</param>
public sealed record ReservationResponse(string Id, string Status, decimal Credits, decimal Used, decimal Remaining, string? JobId,
    DateTimeOffset CreatedAt, DateTimeOffset ExpiresAt, DateTimeOffset? ReleasedAt, bool IntoOverage)
{
    public static ReservationResponse Of(ReservationView v) => new(v.Id, v.Status, Credit.ToCredits(v.HeldMicroCredits), Credit.ToCredits(v.DrawnMicroCredits),
        Credit.ToCredits(v.RemainingMicroCredits), v.JobId, v.CreatedAt, v.ExpiresAt, v.ReleasedAt, v.IntoOverage);
}

/// <summary>One credit grant (docs/RULES.md, "Credit grants"); amounts in whole credits, floored.</summary>
/// <param name="Voided">What an operator voided of the grant (a <c>void</c> ledger entry, whose reason is <c>VoidReason</c>).</param>
public sealed record GrantDto(long Id, string Source, long Granted, long Remaining, long Expired, DateTimeOffset EffectiveAt,
    DateTimeOffset? ExpiresAt, string Status, int DrawDownOrder, string? Description, long Voided, string? VoidReason)
{
    public static IReadOnlyList<GrantDto> Of(GrantLedger ledger, DateTimeOffset now)
    {
        var order = ledger.InDrawDownOrder.Where(g => g.StatusAt(now) == CreditGrantStatus.Active)
            .Select((g, i) => (g.Seq, i + 1)).ToDictionary(x => x.Seq, x => x.Item2);
        return ledger.Grants.OrderByDescending(g => g.Seq).Select(g => new GrantDto(g.Seq, EnumText.ToText(g.Source),
            Credit.FloorCredits(g.GrantedMicro), Credit.FloorCredits(g.RemainingMicro), Credit.FloorCredits(g.ExpiredMicro),
            g.EffectiveAt, g.ExpiresAt, EnumText.ToText(g.StatusAt(now)), order.GetValueOrDefault(g.Seq), g.Description,
            Credit.FloorCredits(g.VoidedMicro), g.VoidReason)).ToList();
    }
}

public sealed record GrantsResponse(string DrawDownOrder, IReadOnlyList<GrantDto> Items);
public sealed record TokensDto(long Total, IReadOnlyDictionary<string, long> ByModel);
public sealed record OverageDto(string Policy, long Credits);
/// <summary>Internal (development, test, demo) usage: rated, never billed.</summary>
public sealed record UsageApartDto(long MicroCredits);
/// <summary>How much of the consumption is already in ledger entries and how much awaits the next flush.</summary>
public sealed record LedgerStateDto(long FlushedMicroCredits, long UnflushedMicroCredits);

/// <summary>A page of a list. <c>total</c> is null where counting would cost more than the page (a list of
/// millions): follow <c>next_cursor</c> while <c>has_more</c>.</summary>
public sealed record PagedResponse<T>(IReadOnlyList<T> Items, int Page, int PageSize, long? Total, bool HasMore, string? NextCursor)
{
    public static PagedResponse<T> Of(Paged<T> p) => new(p.Items, p.Page, p.PageSize, p.Total, p.HasMore, p.NextCursor);
}

public sealed record AllocationsResponse(string Period, long TotalCredits, IReadOnlyList<AllocationRecord> Items);

public sealed record ConversionResponse(decimal UsdPerCredit, decimal Overhead, string Formula, string Rounding, DateTimeOffset At,
    IReadOnlyList<ConversionPrice> Prices);

public sealed record ConversionPrice(string Provider, string? Model, string? Meter, decimal? InputPerMtok, decimal? OutputPerMtok,
    decimal? CachedInputPerMtok, decimal? UnitPrice, string Currency, DateTimeOffset EffectiveFrom)
{
    public static ConversionPrice Of(Price p) => new(p.Provider, p.Model, p.Meter, p.InputPerMtok, p.OutputPerMtok,
        p.CachedInputPerMtok, p.UnitPrice, p.Currency, p.EffectiveFrom);
}

public sealed record PlanResponse(string Code, string Name, decimal? PriceUsdPerMonth, long? CreditsPerMonth, bool Unlimited,
    string OveragePolicy, decimal? OverageUsdPerCredit, bool SelfServe, IReadOnlyList<EntitlementDto> Entitlements)
{
    public static PlanResponse Of(Plan p) => new(p.Code, p.Name, p.MonthlyPriceUsd, p.MonthlyCredits, p.Unlimited,
        EnumText.ToText(p.Overage), p.OverageUsdPerCredit, p.SelfServe,
        p.Entitlements.Select(e => new EntitlementDto(e.Key, EnumText.ToText(e.Kind), e.Value)).ToList());
}

public sealed record EntitlementDto(string Key, string Kind, string Value);

/// <summary>Either an estimate in credits, or a model and token counts to rate with the published rule.</summary>
/// <summary>Either <see cref="EstimatedCredits"/>, or a model with token counts to rate; every field may be left out.</summary>
/// <param name="ReservationId">A hold of the job: the check answers whether the job may go on, counting what is left of its hold.</param>
/// <param name="Project">The job's project, for its budgets (a key bound to a project gives its own).</param>
/// <param name="UserId">The end user the job is for, for their budgets (and a budget for each end user).</param>
public sealed record QuotaCheckRequest(decimal? EstimatedCredits = null, string? Provider = null, string? Model = null, long? InputTokens = null,
    long? OutputTokens = null, long? CachedInputTokens = null, string? ReservationId = null, string? Project = null, string? UserId = null);

/// <summary>The hard budget that refused a quota check or a hold.</summary>
/// <param name="Subject">The key's id, the project or the end user's id whose use reached it.</param>
public sealed record BudgetRefusalDto(Guid Id, string Scope, string Subject, string Window, DateOnly WindowStart, decimal Credits, decimal Used, decimal Remaining)
{
    public static BudgetRefusalDto Of(Budgets.BudgetRefusal r) => new(r.BudgetId, r.Scope, r.Subject, r.Window, r.WindowStart,
        Credit.ToCredits(r.BudgetMicroCredits), Credit.ToCredits(r.UsedMicroCredits), Credit.ToCredits(r.RemainingMicroCredits));
}

public sealed record VerifyResponse(string TenantId, bool Intact, long Entries, string HeadHash, bool Deep, IReadOnlyList<string> Problems);

/// <summary>The dashboard's series: billed credits per UTC day of the current period, by model or feature.</summary>
public sealed record DailyCreditsResponse(BillingPeriodDto BillingPeriod, string GroupBy, long ConsumedMicroCredits, DateTimeOffset ReadAt,
    IReadOnlyList<DailyCredits> Days);
