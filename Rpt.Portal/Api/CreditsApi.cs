using System.Globalization;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Data;
using Rpt.Portal.Ledger;
using Rpt.Portal.Metering;
using Rpt.Portal.Plans;

namespace Rpt.Portal.Api;

/// <summary>The Credits API: what a tenant can read about its credits. It never changes the ledger.</summary>
public static class CreditsApi
{
    public static RouteGroupBuilder MapCreditsApi(this IEndpointRouteBuilder app)
    {
        var tenantRead = app.MapGroup("/v1").WithTags("Credits").RequireApiKey(ApiScopes.Read).RateLimitedPerKey();
        tenantRead.MapGet("/credits/balance", GetBalance).WithName("GetBalance")
            .WithSummary("The balance of the current billing period")
            .WithDescription("Allocated, consumed and remaining whole credits (consumption is floored), tokens by model, and how much is not yet flushed. Real time: every acknowledged event counts.");
        tenantRead.MapGet("/credits/consumption", GetConsumption).WithName("GetConsumption")
            .WithSummary("Immutable consumption records, newest first")
            .WithDescription("Each record is a ledger entry written by the flusher; it names the range of audit records it covers and links to the jobs it charged. Newest first; while has_more, pass next_cursor as cursor for the next page (page works for the first 10,000 records). total is null: the list is not counted.");
        tenantRead.MapGet("/credits/allocations", GetAllocations).WithName("GetAllocations")
            .WithSummary("Every credit grant with its source and amount")
            .WithDescription("period=current (default), previous or all. Sources: signup, renewal, plan_change, top_up, adjustment.");
        tenantRead.MapGet("/credits/grants", GetGrants).WithName("GetGrants")
            .WithSummary("Every credit grant: what it held, what is left, when it expires")
            .WithDescription("id, source, granted, remaining, expired, effective_at, expires_at (null: never), status (active, depleted, expired, voided), draw_down_order (1 = used first; 0 when not active), and voided with void_reason when an operator voided what the grant still held. Consumption uses the soonest expires_at first; on a tie plan allocations, then top-ups, then adjustments; then the oldest grant.");
        tenantRead.MapPost("/quota/check", CheckQuota).WithName("CheckQuota").ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
            .WithSummary("May a job of this estimated cost start?")
            .WithDescription("Answers from the real-time balance. A hard-capped plan denies an estimate above what remains; an overage plan allows and states the overage. If the ledger does not answer in time the check allows with fail_open=true.");
        tenantRead.MapGet("/ledger/verify", Verify).WithName("VerifyLedger").ProducesProblem(StatusCodes.Status400BadRequest)
            .WithSummary("Is the tenant's hash chain intact?")
            .WithDescription("Recomputes SHA-256(previous_hash || entry) along the chain. deep=true also re-reads the audit records each consumption entry covers. Record head_hash and pass it back as expect_head to detect a removed tail.");

        tenantRead.MapGet("/ledger/statement", GetStatement).WithName("GetStatement").ProducesProblem(StatusCodes.Status404NotFound)
            .WithSummary("A billing period's statement, to verify without us")
            .WithDescription("period: a day of the period, yyyy-MM-dd. Every ledger entry from the period's first to its last with each field that enters its hash (docs/LEDGER-FORMAT.md), its prev_hash and hash; the chain point before them (opening) and after them (closing); the chain head; and the period's balance. Streamed in one snapshot. final is true once the period is over and all its usage is in the ledger.");
        tenantRead.MapGet("/ledger/statement/records", GetStatementRecords).WithName("GetStatementRecords")
            .WithSummary("The audit records a consumption entry covers, in canonical form")
            .WithDescription("entry: the seq of a consumption entry. The canonical forms of its records back to back (docs/LEDGER-FORMAT.md): the SHA-256 of the download is the entry's events_digest.")
            .Produces<string>(StatusCodes.Status200OK, "text/plain").ProducesProblem(StatusCodes.Status404NotFound);

        // Holds are placed by what runs the jobs: the ingest scope.
        var holds = app.MapGroup("/v1/credits/reservations").WithTags("Reservations").RequireApiKey(ApiScopes.Ingest).RateLimitedPerKey();
        holds.MapPost("", Reserve).WithName("CreateReservation").Produces<ReservationResponse>(StatusCodes.Status201Created).Produces<ReservationResponse>().ProducesValidationProblem().ProducesProblem(StatusCodes.Status402PaymentRequired).ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
            .WithSummary("Hold credits for a long job")
            .WithDescription("id (yours: a retry with it answers the same hold), credits, job_id (the job whose usage draws the hold down as it is accepted), expires_in_seconds (10 to 86,400; default 3,600). On a plan that stops at its allocation a hold that does not fit in what is available is refused with 402 naming available_credits; on an overage plan it is held and into_overage says it runs into overage. Holds never enter the ledger.");
        holds.MapGet("/{id}", GetReservation).WithName("GetReservation").Produces<ReservationResponse>().ProducesValidationProblem().ProducesProblem(StatusCodes.Status404NotFound)
            .WithSummary("A hold: what it holds, what its job used, what is left");
        holds.MapPost("/{id}/release", Release).WithName("ReleaseReservation").Produces<ReservationResponse>().ProducesValidationProblem().ProducesProblem(StatusCodes.Status404NotFound)
            .WithSummary("Free what is left of a hold at once");
        holds.MapPatch("/{id}", Extend).WithName("ExtendReservation").Produces<ReservationResponse>().ProducesValidationProblem().ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
            .WithSummary("Extend a hold (a heartbeat for a streaming job)")
            .WithDescription("expires_in_seconds from now; a hold lasts at most 24 h after it was placed.");

        var published = app.MapGroup("/v1").WithTags("Published").RateLimitedPerKey();
        published.MapGet("/credits/conversion", GetConversion).WithName("GetConversion")
            .WithSummary("The published conversion rule and the price book")
            .WithDescription("credits = cost_usd × (1 + overhead) / usd_per_credit, rounded half away from zero to micro-credits per call. The prices in effect now, or at ?at=. Public: no key needed.");
        published.MapGet("/plans", GetPlans).WithName("GetPlans")
            .WithSummary("The plan catalog")
            .WithDescription("Allocations, prices, overage policy and entitlements of every plan. Public: no key needed.");
        return tenantRead;
    }

    public static async Task<Results<Ok<BalanceResponse>, NotFound>> GetBalance(HttpContext http, GetBalance balances, CancellationToken cancellationToken)
    {
        var balance = await balances.ExecuteAsync(http.Caller().TenantId!, null, null, cancellationToken);
        return balance is null ? TypedResults.NotFound() : TypedResults.Ok(BalanceResponse.Of(balance));
    }

    public const string DrawDownOrder = "soonest expires_at first; on a tie plan allocation, then top-up, then adjustment; then the oldest grant";

    public static Ok<GrantsResponse> GetGrants(HttpContext http, CreditGrants grants, TimeProvider time) =>
        TypedResults.Ok(new GrantsResponse(DrawDownOrder, GrantDto.Of(grants.Current(http.Caller().TenantId!), time.GetUtcNow())));

    public static async Task<Results<Ok<PagedResponse<ConsumptionRecord>>, ValidationProblem>> GetConsumption(HttpContext http, LedgerHistory history,
        int? days, int? page, int? page_size, string? cursor, CancellationToken cancellationToken)
    {
        var errors = new Dictionary<string, string[]>();
        long? before = null;
        if (cursor is not null)
        {
            if (long.TryParse(cursor, System.Globalization.NumberStyles.None, CultureInfo.InvariantCulture, out var seq)) before = seq;
            else errors["cursor"] = ["is not a cursor this endpoint gave out (next_cursor)."];
        }
        Check(errors, "days", days, 1, 3660);
        Check(errors, "page", page, 1, int.MaxValue);
        Check(errors, "page_size", page_size, 1, 200);
        if (errors.Count > 0) return TypedResults.ValidationProblem(errors);
        var result = await history.ConsumptionAsync(http.Caller().TenantId!, days ?? 30, page ?? 1, page_size ?? 50, before, cancellationToken);
        return TypedResults.Ok(PagedResponse<ConsumptionRecord>.Of(result));
    }

    public static async Task<Results<Ok<AllocationsResponse>, ValidationProblem>> GetAllocations(HttpContext http, LedgerHistory history,
        string? period, CancellationToken cancellationToken)
    {
        PeriodFilter filter;
        switch (period ?? "current")
        {
            case "current": filter = PeriodFilter.Current; break;
            case "previous": filter = PeriodFilter.Previous; break;
            case "all": filter = PeriodFilter.All; break;
            default:
                return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["period"] = [$"'{period}' is not one of: current, previous, all."] });
        }
        var items = await history.AllocationsAsync(http.Caller().TenantId!, filter, cancellationToken);
        return TypedResults.Ok(new AllocationsResponse(period ?? "current", Credit.FloorCredits(items.Sum(i => i.MicroCredits)), items));
    }

    public static async Task<Results<Ok<QuotaDecision>, ValidationProblem>> CheckQuota(HttpContext http, QuotaCheck quota, PriceBookProvider prices,
        TimeProvider time, Observability.PortalMetrics metrics, Reservations reservations, Budgets.BudgetService budgets, QuotaCheckRequest request,
        CancellationToken cancellationToken)
    {
        var (project, projectError) = ProjectOf(http.Caller(), request.Project);
        if (projectError is not null) return Invalid("project", projectError);
        if (UserIdError(request.UserId) is { } userError) return Invalid("user_id", userError);
        decimal estimate;
        if (request.EstimatedCredits is { } credits)
        {
            if (credits < 0) return Invalid("estimated_credits", $"must not be negative (got {credits}).");
            if (credits > MaxEstimateCredits) return Invalid("estimated_credits", $"must be at most {MaxEstimateCredits:N0} credits, a tenant's limit for one period.");
            estimate = credits;
        }
        else if (!string.IsNullOrEmpty(request.Model))
        {
            var tokens = new[] { ("input_tokens", request.InputTokens), ("output_tokens", request.OutputTokens), ("cached_input_tokens", request.CachedInputTokens) };
            if (tokens.FirstOrDefault(t => t.Item2 is < 0) is { Item1: { } negative }) return Invalid(negative, "must not be negative.");
            if (tokens.FirstOrDefault(t => t.Item2 > MaxEstimateTokens) is { Item1: { } huge })
                return Invalid(huge, $"must be at most {MaxEstimateTokens:N0} tokens for one estimate.");
            if (request.Model.Length > RateUsage.MaxTextLength) return Invalid("model", $"must be at most {RateUsage.MaxTextLength} characters.");
            var now = time.GetUtcNow();
            var book = prices.Current;
            var (price, error) = book.Find(request.Provider, request.Model, false, now);
            if (price is null) return Invalid("model", error!);
            try
            {
                var cost = Rating.CostUsd(price, request.InputTokens ?? 0, request.OutputTokens ?? 0, request.CachedInputTokens ?? 0, null);
                estimate = Rating.MicroCredits(cost, book.RuleAt(now)) / (decimal)Credit.MicroPerCredit;
            }
            catch (OverflowException)
            {
                estimate = decimal.MaxValue;
            }
            if (estimate > MaxEstimateCredits)
                return Invalid("model", $"these tokens rate to more than {MaxEstimateCredits:N0} credits, a tenant's limit for one period.");
        }
        else
        {
            return Invalid("estimated_credits", "Send estimated_credits, or a model with token counts to rate.");
        }
        long? holdLeft = null;
        if (request.ReservationId is { } reservationId)
        {
            if (Reservations.CheckId(reservationId, "reservation_id") is { } bad) return Invalid("reservation_id", bad);
            var hold = await reservations.GetAsync(http.Caller().TenantId!, reservationId, cancellationToken);
            if (hold.Hold is null) return Invalid("reservation_id", $"no hold '{reservationId}' of this account.");
            holdLeft = hold.Hold.RemainingMicroCredits;
        }
        // A job with a hold has had its budgets checked when it was held; the rest of its hold is its own. The budgets that
        // name the request are read with the balance, in its snapshot and round trip.
        var lookup = holdLeft is null ? budgets.Lookup(http.Caller().TenantId!, http.Caller().KeyId, project, request.UserId) : null;
        var decision = await quota.ExecuteAsync(http.Caller().TenantId!, estimate, cancellationToken, holdLeft, lookup);
        if (decision.Allowed && !decision.FailOpen && lookup is not null
            && budgets.Check(lookup, MicroOf(estimate)) is { } refusal)
            decision = decision with { Allowed = false, Reason = refusal.Message, Budget = BudgetRefusalDto.Of(refusal) };
        metrics.Outcome(metrics.QuotaChecks, decision.FailOpen ? "fail_open" : decision.Allowed ? "allowed" : "denied");
        return TypedResults.Ok(decision);
    }

    private static IResult Answer(ReservationResult r, int okStatus = StatusCodes.Status200OK) => r.Outcome switch
    {
        ReservationOutcome.Held => TypedResults.Json(ReservationResponse.Of(r.Hold!), statusCode: StatusCodes.Status201Created),
        ReservationOutcome.Repeated or ReservationOutcome.Done => TypedResults.Json(ReservationResponse.Of(r.Hold!), statusCode: okStatus),
        ReservationOutcome.Invalid => Invalid(r.Field!, r.Error!),
        ReservationOutcome.Refused => TypedResults.Problem(statusCode: StatusCodes.Status402PaymentRequired, title: "Not enough credits available",
            detail: r.Error, extensions: new Dictionary<string, object?> { ["available_credits"] = r.AvailableCredits }),
        ReservationOutcome.Conflict => TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Conflict", detail: r.Error),
        _ => TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Not found", detail: r.Error),
    };

    /// <summary>The request's project: the key's when it is bound to one (a different one sent is an error), else the one sent.</summary>
    internal static (string? Project, string? Error) ProjectOf(ApiCaller caller, string? sent)
    {
        if (sent is not null && Budgets.BudgetService.CheckProject(sent, "project") is { } bad) return (null, bad);
        if (caller.Project is { } bound && sent is not null && sent != bound)
            return (null, $"'{sent}' is not the project '{bound}' the API key is bound to.");
        return (caller.Project ?? sent, null);
    }

    internal static string? UserIdError(string? userId) =>
        userId is null ? null
        : userId.Length is 0 or > Budgets.BudgetService.MaxUserIdLength ? $"must be 1 to {Budgets.BudgetService.MaxUserIdLength} characters long."
        : RateUsage.NotText(userId, "user_id") is { } bad ? bad + "." : null;

    private static long MicroOf(decimal credits) => credits >= decimal.MaxValue / Credit.MicroPerCredit ? long.MaxValue / 2
        : (long)Math.Min(long.MaxValue / 2, Math.Ceiling(credits * Credit.MicroPerCredit));

    public static async Task<IResult> Reserve(HttpContext http, Reservations reservations, Budgets.BudgetService budgets, ReservationRequest request,
        CancellationToken cancellationToken)
    {
        if (request.Credits is null) return Invalid("credits", "required: the whole credits to hold.");
        var (project, projectError) = ProjectOf(http.Caller(), request.Project);
        if (projectError is not null) return Invalid("project", projectError);
        if (UserIdError(request.UserId) is { } userError) return Invalid("user_id", userError);
        // A retry of a hold answers the hold; only a new one is measured against the budgets, which are read with the
        // balance under the tenant's lock.
        var lookup = budgets.Lookup(http.Caller().TenantId!, http.Caller().KeyId, project, request.UserId);
        Budgets.BudgetRefusal? refusal = null;
        var result = await reservations.ReserveAsync(http.Caller().TenantId!, request.Id, request.Credits.Value, request.JobId, request.ExpiresInSeconds,
            cancellationToken, lookup, () => (refusal = budgets.Check(lookup, Credit.ToMicro(request.Credits.Value))) is null);
        if (refusal is not null)
            return TypedResults.Problem(statusCode: StatusCodes.Status402PaymentRequired, title: "Budget reached", detail: refusal.Message,
                extensions: new Dictionary<string, object?> { ["budget"] = BudgetRefusalDto.Of(refusal) });
        return Answer(result);
    }

    public static async Task<IResult> GetReservation(HttpContext http, Reservations reservations, string id, CancellationToken cancellationToken) =>
        Reservations.CheckId(id) is { } bad ? Invalid("id", bad) : Answer(await reservations.GetAsync(http.Caller().TenantId!, id, cancellationToken));

    public static async Task<IResult> Release(HttpContext http, Reservations reservations, string id, CancellationToken cancellationToken) =>
        Reservations.CheckId(id) is { } bad ? Invalid("id", bad) : Answer(await reservations.ReleaseAsync(http.Caller().TenantId!, id, cancellationToken));

    public static async Task<IResult> Extend(HttpContext http, Reservations reservations, string id, ReservationExtendRequest request, CancellationToken cancellationToken)
    {
        if (Reservations.CheckId(id) is { } bad) return Invalid("id", bad);
        if (request.ExpiresInSeconds is not { } seconds) return Invalid("expires_in_seconds", "required: how long from now the hold lasts.");
        return Answer(await reservations.ExtendAsync(http.Caller().TenantId!, id, seconds, cancellationToken));
    }

    public static async Task<Ok<VerifyResponse>> Verify(HttpContext http, VerifyLedger verify, bool? deep, string? expect_head, CancellationToken cancellationToken)
    {
        var v = await verify.ExecuteAsync(http.Caller().TenantId!, deep ?? false, expect_head, cancellationToken);
        return TypedResults.Ok(new VerifyResponse(v.TenantId, v.Intact, v.Entries, v.HeadHash, v.Deep, v.Problems));
    }

    public static async Task<Results<Ok<Statement>, ValidationProblem, ProblemHttpResult>> GetStatement(HttpContext http, LedgerStatement statements,
        string? period, CancellationToken cancellationToken)
    {
        var tenantId = http.Caller().TenantId!;
        var (resolved, problem) = statements.ResolvePeriod(tenantId, period);
        if (problem is { NotFound: true }) return NotFound(problem);
        if (problem is not null) return Invalid(problem.Field, problem.Message);
        var open = await statements.OpenAsync(tenantId, resolved!.Value, cancellationToken);
        http.Response.RegisterForDisposeAsync(open);
        return TypedResults.Ok(open.Statement);
    }

    public static async Task<Results<PushStreamHttpResult, ValidationProblem, ProblemHttpResult>> GetStatementRecords(HttpContext http,
        LedgerStatement statements, string? entry, CancellationToken cancellationToken)
    {
        var (found, problem) = await statements.FindConsumptionAsync(http.Caller().TenantId!, entry, cancellationToken);
        if (problem is { NotFound: true }) return NotFound(problem);
        if (problem is not null) return Invalid(problem.Field, problem.Message);
        return TypedResults.Stream(output => statements.WriteRecordsAsync(found!, output, http.RequestAborted), "text/plain; charset=utf-8",
            $"records-{found!.TenantId}-{found.Seq}.txt");
    }

    private static ProblemHttpResult NotFound(StatementProblem problem) =>
        TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Not found", detail: $"{problem.Field}: {problem.Message}");

    public static Results<Ok<ConversionResponse>, ValidationProblem> GetConversion(PriceBookProvider prices, TimeProvider time, string? at)
    {
        var instant = time.GetUtcNow();
        if (at is not null && !DateTimeOffset.TryParse(at, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out instant))
            return Invalid("at", $"'{at}' is not an ISO 8601 instant, e.g. 2026-04-01T00:00:00Z.");
        var book = prices.Current;
        var rule = book.RuleAt(instant);
        return TypedResults.Ok(new ConversionResponse(rule.UsdPerCredit, rule.Overhead,
            "credits = cost_usd * (1 + overhead) / usd_per_credit; cost_usd = (input_tokens * input_per_mtok + output_tokens * output_per_mtok + cached_input_tokens * cached_input_per_mtok) / 1000000, or quantity * unit_price",
            "per call, to micro-credits (1 credit = 1,000,000), half away from zero; reported credits are whole numbers, consumption floored",
            instant, book.InEffectAt(instant).Select(ConversionPrice.Of).ToList()));
    }

    public static async Task<Ok<List<PlanResponse>>> GetPlans(IDbContextFactory<ApplicationDbContext> dbFactory, CancellationToken cancellationToken)
    {
        await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
        var plans = await db.Plans.AsNoTracking().Where(p => p.RetiredAt == null).OrderBy(p => p.SortOrder).ToListAsync(cancellationToken);
        return TypedResults.Ok(plans.Select(PlanResponse.Of).ToList());
    }

    /// <summary>An estimate is at most what a tenant may consume in one period (10^17 µcr).</summary>
    public const long MaxEstimateCredits = UsageLimits.MaxMicroCreditsPerTenantPeriod / Credit.MicroPerCredit;

    /// <summary>Tokens per field of one estimate: a long job, not one call.</summary>
    public const long MaxEstimateTokens = 1_000_000_000_000;

    internal static ValidationProblem Invalid(string field, string problem) =>
        TypedResults.ValidationProblem(new Dictionary<string, string[]> { [field] = [problem] });

    internal static void Check(Dictionary<string, string[]> errors, string field, int? value, int min, int max)
    {
        if (value is { } v && (v < min || v > max))
            errors[field] = [max == int.MaxValue ? $"must be at least {min} (got {v})." : $"must be between {min} and {max} (got {v})."];
    }
}
