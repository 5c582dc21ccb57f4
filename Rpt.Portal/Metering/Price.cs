using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;

namespace Rpt.Portal.Metering;

/// <summary>
/// One version of the price of a model (USD per 1,000,000 tokens) or of a non-token meter (USD per unit).
/// Prices are never edited: a change is a new row with a later <see cref="EffectiveFrom"/>.
/// </summary>
public sealed class Price
{
    private Price() { }

    private Price(string provider, string? model, string? meter, decimal? inputPerMtok, decimal? outputPerMtok,
        decimal? cachedInputPerMtok, decimal? unitPrice, DateTimeOffset effectiveFrom)
    {
        Provider = provider;
        Model = model;
        Meter = meter;
        InputPerMtok = inputPerMtok;
        OutputPerMtok = outputPerMtok;
        CachedInputPerMtok = cachedInputPerMtok;
        UnitPrice = unitPrice;
        EffectiveFrom = effectiveFrom;
    }

    public static Price ForModel(string provider, string model, decimal inputPerMtok, decimal outputPerMtok,
        decimal? cachedInputPerMtok, DateTimeOffset effectiveFrom)
    {
        RequireName(provider, nameof(provider));
        RequireName(model, nameof(model));
        RequireNonNegative(inputPerMtok, "input_per_mtok");
        RequireNonNegative(outputPerMtok, "output_per_mtok");
        if (cachedInputPerMtok is { } c) RequireNonNegative(c, "cached_input_per_mtok");
        return new(provider, model, null, inputPerMtok, outputPerMtok, cachedInputPerMtok, null, effectiveFrom);
    }

    public static Price ForMeter(string provider, string meter, decimal unitPrice, DateTimeOffset effectiveFrom)
    {
        RequireName(provider, nameof(provider));
        RequireName(meter, nameof(meter));
        RequireNonNegative(unitPrice, "unit_price");
        return new(provider, null, meter, null, null, null, unitPrice, effectiveFrom);
    }

    public long Id { get; private set; }
    public string Provider { get; private set; } = "";
    public string? Model { get; private set; }
    public string? Meter { get; private set; }
    public decimal? InputPerMtok { get; private set; }
    public decimal? OutputPerMtok { get; private set; }
    public decimal? CachedInputPerMtok { get; private set; }
    public decimal? UnitPrice { get; private set; }
    public string Currency { get; private set; } = "USD";
    public DateTimeOffset EffectiveFrom { get; private set; }

    /// <summary>The model or meter name this price is for.</summary>
    public string Name => Model ?? Meter!;
    public bool IsMeter => Meter is not null;

    private static void RequireName(string value, string field)
    {
        if (string.IsNullOrWhiteSpace(value)) throw new ArgumentException($"{field} is required.", field);
    }

    private static void RequireNonNegative(decimal value, string field)
    {
        if (value < 0) throw new ArgumentException($"{field} must not be negative (got {value}).", field);
    }
}

public sealed class PriceConfiguration : IEntityTypeConfiguration<Price>
{
    public void Configure(EntityTypeBuilder<Price> b)
    {
        b.ToTable("prices", t => t.HasCheckConstraint("ck_prices_model_xor_meter", "(model IS NULL) <> (meter IS NULL)"));
        b.HasKey(p => p.Id);
        b.Property(p => p.Provider).HasMaxLength(64);
        b.Property(p => p.Model).HasMaxLength(128);
        b.Property(p => p.Meter).HasMaxLength(128);
        b.Property(p => p.Currency).HasMaxLength(3);
        b.Ignore(p => p.Name);
        b.Ignore(p => p.IsMeter);
        b.HasIndex(p => new { p.Provider, p.Model, p.Meter, p.EffectiveFrom }).IsUnique();
    }
}

/// <summary>
/// One version of the published conversion rule. Each event records the rule it was rated with, so a
/// change of the overhead never rewrites how a past charge is explained.
/// </summary>
public sealed class ConversionRule
{
    private ConversionRule() { }

    public ConversionRule(decimal usdPerCredit, decimal overhead, DateTimeOffset effectiveFrom)
    {
        UsdPerCredit = usdPerCredit;
        Overhead = overhead;
        EffectiveFrom = effectiveFrom;
    }

    public long Id { get; private set; }
    public decimal UsdPerCredit { get; private set; }
    public decimal Overhead { get; private set; }
    public DateTimeOffset EffectiveFrom { get; private set; }
}

public sealed class ConversionRuleConfiguration : IEntityTypeConfiguration<ConversionRule>
{
    public void Configure(EntityTypeBuilder<ConversionRule> b)
    {
        b.ToTable("conversion_rules");
        b.HasKey(r => r.Id);
    }
}
