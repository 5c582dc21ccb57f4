using System.Collections.Concurrent;
using System.Globalization;
using Microsoft.Extensions.Options;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Metering;

/// <summary>
/// Validates one usage event as a platform sent it and rates it at the price and conversion rule in
/// effect when it occurred. Every problem is answered for that event alone, naming the field or limit.
/// </summary>
public sealed class RateUsage(TenantDirectory tenants, IOptions<MeteringOptions> options, IIngestGate gate)
{
    public const int MaxIdLength = 128;
    public const int MaxTextLength = 128;

    private static readonly ConcurrentDictionary<DateOnly, string> DayText = new();
    private static readonly System.Buffers.SearchValues<char> NulOrSurrogate =
        System.Buffers.SearchValues.Create("\0" + new string(Enumerable.Range(0xD800, 0x800).Select(c => (char)c).ToArray()));
    private readonly MeteringOptions _options = options.Value;

    /// <param name="keyTenant">The tenant of a tenant key; null for a platform key, which must name the tenant per event.</param>
    /// <returns>Null and the rated row, or the reason the event is rejected.</returns>
    /// <param name="key">The API key that sent the event: its id is recorded, and a key bound to a project stamps it.</param>
    internal string? TryRate(UsageEventInput? e, string? keyTenant, DateTimeOffset now, PriceBook book, out RatedUsage row, IngestKey? key = null)
    {
        row = default;
        if (e is null) return "the event is null";
        if (string.IsNullOrEmpty(e.Id)) return "id is required";
        if (e.Id.Length > MaxIdLength) return $"id is {e.Id.Length} characters long; at most {MaxIdLength} are allowed";

        string tenantId;
        if (keyTenant is null)
        {
            if (string.IsNullOrEmpty(e.TenantId)) return "tenant_id is required with a platform key";
            if (e.TenantId.Length > MaxTextLength) return $"tenant_id is {e.TenantId.Length} characters long; at most {MaxTextLength} are allowed";
            tenantId = e.TenantId;
        }
        else
        {
            if (!string.IsNullOrEmpty(e.TenantId) && e.TenantId != keyTenant)
                return $"tenant_id '{Clip(e.TenantId)}' does not match the tenant of the API key";
            tenantId = keyTenant;
        }
        if (!tenants.TryGetAnchor(tenantId, out var anchor)) return $"unknown tenant '{Clip(tenantId)}'";
        if (gate.Refusal(tenantId) is { } closed) return $"tenant '{Clip(tenantId)}': {closed}";

        if (e.OccurredAt is not { } occurredAt) return "occurred_at is required";
        if (occurredAt > now + _options.MaxFutureSkew)
            return $"occurred_at {occurredAt:O} is in the future (now is {now:O})";

        var failed = false;
        if (e.Status is not null)
        {
            if (e.Status == UsageStatusText.Failed) failed = true;
            else if (e.Status != UsageStatusText.Succeeded) return $"status '{Clip(e.Status)}' is not one of: succeeded, failed";
        }

        var lengthError = TooLong(e.Provider, "provider") ?? TooLong(e.Feature, "feature") ?? TooLong(e.JobId, "job_id")
            ?? TooLong(e.UserId, "user_id") ?? TooLong(e.Model, "model") ?? TooLong(e.Meter, "meter") ?? TooLong(e.Project, "project");
        if (lengthError is not null) return lengthError;
        if (e.Project is { Length: 0 }) return "project is empty; leave it out for usage outside any project";
        var project = e.Project;
        if (key?.Project is { } bound)
        {
            if (project is not null && project != bound)
                return $"project '{Clip(project)}' does not match the project '{bound}' the API key is bound to";
            project = bound;
        }
        var textError = NotText(e.Id, "id") ?? NotText(tenantId, "tenant_id") ?? NotText(e.Provider, "provider") ?? NotText(e.Feature, "feature")
            ?? NotText(e.JobId, "job_id") ?? NotText(e.UserId, "user_id") ?? NotText(e.Model, "model") ?? NotText(e.Meter, "meter")
            ?? NotText(project, "project");
        if (textError is not null) return textError;

        var input = e.InputTokens ?? 0;
        var output = e.OutputTokens ?? 0;
        var cached = e.CachedInputTokens ?? 0;
        var tokenError = TokenError(input, "input_tokens") ?? TokenError(output, "output_tokens") ?? TokenError(cached, "cached_input_tokens");
        if (tokenError is not null) return tokenError;

        var isMeter = !string.IsNullOrEmpty(e.Meter);
        if (isMeter == !string.IsNullOrEmpty(e.Model))
            return isMeter ? "model and meter cannot both be set" : "either model or meter is required";
        decimal? quantity = null;
        if (isMeter)
        {
            if (e.Quantity is not { } q) return $"quantity is required for meter '{e.Meter}'";
            if (q <= 0 || q > UsageLimits.MaxQuantity)
                return $"quantity {q.ToString(CultureInfo.InvariantCulture)} must be greater than 0 and at most the per-event limit of {UsageLimits.MaxQuantity.ToString("N0", CultureInfo.InvariantCulture)}";
            if (decimal.Round(q, 6) != q) return $"quantity {q.ToString(CultureInfo.InvariantCulture)} has more than 6 decimal places";
            if (input != 0 || output != 0 || cached != 0) return $"tokens cannot be reported for meter '{e.Meter}'";
            quantity = q;
        }
        else if (e.Quantity is not null)
        {
            return "quantity is only for non-token meters; report tokens for a model";
        }

        var (price, priceError) = book.Find(e.Provider, isMeter ? e.Meter! : e.Model!, isMeter, occurredAt);
        if (price is null) return priceError;
        var rule = book.RuleAt(occurredAt);

        var cost = 0m;
        var micro = 0L;
        if (!failed && !Rating.TryRate(price, input, output, cached, quantity, rule, out cost, out micro, out var rateError)) return rateError;
        var period = BillingPeriod.Containing(anchor, occurredAt);

        row = new RatedUsage
        {
            TenantId = tenantId,
            EventId = e.Id,
            OccurredAtMs = occurredAt.ToUnixTimeMilliseconds(),
            PeriodStart = DayText.GetOrAdd(period.Start, d => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)),
            Day = DayText.GetOrAdd(DateOnly.FromDateTime(occurredAt.UtcDateTime), d => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)),
            Provider = price.Provider,
            Model = price.Model,
            Meter = price.Meter,
            Quantity = quantity?.ToString(CultureInfo.InvariantCulture),
            QuantityMicro = quantity is { } qm ? decimal.ToInt64(qm * 1_000_000m) : 0,
            InputTokens = input,
            OutputTokens = output,
            CachedInputTokens = cached,
            Feature = e.Feature,
            JobId = e.JobId,
            UserId = e.UserId,
            Project = project,
            ApiKeyId = key?.IdText,
            Failed = failed,
            Internal = e.Internal ?? false,
            PriceId = price.Id,
            RuleId = rule.Id,
            CostUsd = cost.ToString(CultureInfo.InvariantCulture),
            MicroCredits = micro,
        };
        return null;
    }

    private static string? TooLong(string? value, string field) =>
        value is { Length: > MaxTextLength } ? $"{field} is {value.Length} characters long; at most {MaxTextLength} are allowed" : null;

    /// <summary>
    /// Text every storage engine keeps as it was sent: no NUL character (PostgreSQL refuses it, SQLite cuts strings at it)
    /// and no half of a surrogate pair (not Unicode, so not UTF-8). The canonical form of the audit record depends on it.
    /// </summary>
    internal static string? NotText(string? value, string field)
    {
        // The usual text has neither; the vectorised search keeps the check off the ingestion profile.
        if (value is null || value.AsSpan().IndexOfAny(NulOrSurrogate) < 0) return null;
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (c == '\0') return $"{field} contains a NUL character (U+0000), which is not allowed in text";
            if (char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1])) i++;
            else if (char.IsSurrogate(c)) return $"{field} contains an unpaired surrogate (U+{(int)c:X4} alone), which is not Unicode text";
        }
        return null;
    }

    private static string Clip(string value) => value.Length <= 32 ? value : value[..32] + "…";

    internal static string? TokenError(long value, string field) =>
        value < 0 ? $"{field} must not be negative (got {value})"
        : value > UsageLimits.MaxTokensPerField
            ? $"{field} {UsageLimits.Number(value)} exceeds the per-call limit of {UsageLimits.Number(UsageLimits.MaxTokensPerField)} tokens"
        : null;
}

/// <summary>The API key behind an ingestion request: recorded with each event, and a key bound to a project stamps it.</summary>
public sealed record IngestKey(Guid Id, string? Project)
{
    /// <summary>The id as stored in <c>usage_events.api_key_id</c> (made once per request, not per event).</summary>
    public string IdText { get; } = Id.ToString("D");
}
