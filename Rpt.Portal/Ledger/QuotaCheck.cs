using Rpt.Portal.Data;
using Rpt.Portal.Plans;
using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;
using Rpt.Portal.Ledger;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Ledger;

public sealed record QuotaDecision(
    bool Allowed,
    bool FailOpen,
    string Reason,
    decimal EstimatedCredits,
    long? Remaining,
    long OverageCredits,
    string? Plan,
    long Reserved = 0,
    decimal? HoldRemaining = null,
    Api.BudgetRefusalDto? Budget = null);

/// <summary>
/// Answers "may this job start?" from the real-time balance. A hard-capped plan denies an estimate
/// above what remains; an overage plan allows and says how much would be overage; an unlimited plan
/// allows. If the ledger does not answer in time the check allows and says it failed open: metering
/// goes on regardless, so nothing is lost.
/// </summary>
public sealed class QuotaCheck
{
    private readonly Func<string, IBatchedRead?, CancellationToken, Task<Balance?>> _readBalance;
    private readonly TimeSpan _timeout;

    public QuotaCheck(GetBalance balances, IOptions<PlansOptions> options)
        : this((tenant, also, ct) => balances.ExecuteAsync(tenant, null, also, ct), options.Value.QuotaCheckTimeout) { }

    internal QuotaCheck(Func<string, IBatchedRead?, CancellationToken, Task<Balance?>> readBalance, TimeSpan timeout)
    {
        _readBalance = readBalance;
        _timeout = timeout;
    }

    /// <param name="holdRemainingMicro">What is left of the job's own hold (<c>reservation_id</c>): it is the job's to use, on top of what is available.</param>
    /// <param name="also">Statements read with the balance, in its snapshot and round trip (the request's hard budgets); read only when the ledger answers in time.</param>
    public async Task<QuotaDecision> ExecuteAsync(string tenantId, decimal estimatedCredits, CancellationToken cancellationToken = default, long? holdRemainingMicro = null,
        IBatchedRead? also = null)
    {
        if (estimatedCredits < 0) throw new ArgumentOutOfRangeException(nameof(estimatedCredits), "The estimate must not be negative.");
        Balance? balance;
        try
        {
            balance = await _readBalance(tenantId, also, cancellationToken).WaitAsync(_timeout, cancellationToken);
        }
        catch (TimeoutException)
        {
            return new(true, true, $"The ledger did not answer within {_timeout.TotalMilliseconds:0} ms; the job is allowed and its usage will still be metered.",
                estimatedCredits, null, 0, null);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return new(true, true, "The ledger could not answer; the job is allowed and its usage will still be metered.",
                estimatedCredits, null, 0, null);
        }
        if (balance is null) throw new KeyNotFoundException($"unknown tenant '{tenantId}'");

        if (balance.Unlimited)
            return new(true, false, "Unlimited plan.", estimatedCredits, null, 0, balance.PlanCode);

        // Holds keep credits for running jobs: a new job may use what is available; a job with a hold also what is left of it
        // (which the holds' sum already counts, so it is added back once).
        decimal? hold = holdRemainingMicro is { } h ? h / (decimal)Credit.MicroPerCredit : null;
        var usable = balance.Available!.Value + (hold ?? 0m);
        var remaining = balance.Remaining!.Value;
        var overage = (long)Math.Ceiling(Math.Max(0m, estimatedCredits - Math.Max(0m, usable)));
        var held = hold is null ? "" : $" (with {hold} credits left of its hold)";
        if (overage == 0)
            return new(true, false, balance.Reserved == 0 && hold is null ? "Within the remaining credits." : $"Within the credits available{held}.",
                estimatedCredits, remaining, 0, balance.PlanCode, balance.Reserved, hold);
        return balance.Overage == OveragePolicy.Overage
            ? new(true, false, $"Allowed with {overage} credits of overage on the {balance.PlanCode} plan.", estimatedCredits, remaining, overage, balance.PlanCode, balance.Reserved, hold)
            : new(false, false, $"The estimate of {estimatedCredits} credits exceeds the {Math.Max(0m, usable)} credits available{held} on the {balance.PlanCode} plan, which does not allow overage"
                + (balance.Reserved > 0 ? $" ({balance.Reserved} of its {remaining} remaining credits are held for running jobs)." : "."),
                estimatedCredits, remaining, overage, balance.PlanCode, balance.Reserved, hold);
    }
}
