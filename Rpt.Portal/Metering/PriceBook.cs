using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Data;

namespace Rpt.Portal.Metering;

/// <summary>An immutable snapshot of every price version and conversion rule, for rating without I/O.</summary>
public sealed class PriceBook
{
    private readonly Dictionary<(string Provider, string Name, bool Meter), Price[]> _versions;
    private readonly Dictionary<(string Name, bool Meter), string[]> _providersByName;
    private readonly ConversionRule[] _rules;

    public PriceBook(IEnumerable<Price> prices, IEnumerable<ConversionRule> rules)
    {
        var all = prices.ToList();
        _versions = all
            .GroupBy(p => (p.Provider.ToLowerInvariant(), p.Name.ToLowerInvariant(), p.IsMeter))
            .ToDictionary(g => g.Key, g => g.OrderBy(p => p.EffectiveFrom).ToArray());
        _providersByName = all
            .GroupBy(p => (p.Name.ToLowerInvariant(), p.IsMeter))
            .ToDictionary(g => g.Key, g => g.Select(p => p.Provider).Distinct(StringComparer.OrdinalIgnoreCase).ToArray());
        _rules = rules.OrderBy(r => r.EffectiveFrom).ToArray();
        if (_rules.Length == 0) throw new InvalidOperationException("The price book has no conversion rule.");
        MaxPriceId = all.Count == 0 ? 0 : all.Max(p => p.Id);
        NamesInOrder = all.GroupBy(p => p.Name, StringComparer.OrdinalIgnoreCase)
            .OrderBy(g => g.Min(p => p.Id)).ThenBy(g => g.Key, StringComparer.Ordinal)
            .Select((g, i) => (g.Key, i)).ToDictionary(x => x.Key, x => x.i, StringComparer.OrdinalIgnoreCase);
        MaxRuleId = _rules.Max(r => r.Id);
    }

    public long MaxPriceId { get; }

    /// <summary>Every model and meter name, numbered in the order the price book first listed it (new names come last).</summary>
    public IReadOnlyDictionary<string, int> NamesInOrder { get; }
    public long MaxRuleId { get; }

    /// <summary>The price of a model or meter in effect at <paramref name="at"/>, or the reason there is none.</summary>
    public (Price? Price, string? Error) Find(string? provider, string name, bool meter, DateTimeOffset at)
    {
        var what = meter ? "meter" : "model";
        if (string.IsNullOrEmpty(provider))
        {
            if (!_providersByName.TryGetValue((name.ToLowerInvariant(), meter), out var providers))
                return (null, $"unknown {what} '{name}'");
            if (providers.Length > 1)
                return (null, $"{what} '{name}' is offered by several providers ({string.Join(", ", providers)}); name the provider");
            provider = providers[0];
        }
        if (!_versions.TryGetValue((provider.ToLowerInvariant(), name.ToLowerInvariant(), meter), out var versions))
            return (null, _providersByName.ContainsKey((name.ToLowerInvariant(), meter))
                ? $"unknown {what} '{name}' for provider '{provider}'"
                : $"unknown {what} '{name}'");
        var price = Latest(versions, at);
        return price is null
            ? (null, $"no price for {what} '{name}' at {at:O}; its first price is effective from {versions[0].EffectiveFrom:O}")
            : (price, null);
    }

    public ConversionRule RuleAt(DateTimeOffset at)
    {
        ConversionRule rule = _rules[0];
        foreach (var r in _rules)
        {
            if (r.EffectiveFrom > at) break;
            rule = r;
        }
        return rule;
    }

    public ConversionRule? RuleById(long id) => Array.Find(_rules, r => r.Id == id);

    public Price? PriceById(long id) => _versions.Values.SelectMany(v => v).FirstOrDefault(p => p.Id == id);

    /// <summary>The price in effect at <paramref name="at"/> for every model and meter that has one.</summary>
    public IReadOnlyList<Price> InEffectAt(DateTimeOffset at) =>
        _versions.Values.Select(v => Latest(v, at)).OfType<Price>()
            .OrderBy(p => p.Provider).ThenBy(p => p.IsMeter).ThenBy(p => p.Name).ToList();

    private static Price? Latest(Price[] versions, DateTimeOffset at)
    {
        Price? found = null;
        foreach (var p in versions)
        {
            if (p.EffectiveFrom > at) break;
            found = p;
        }
        return found;
    }
}

/// <summary>Holds the current <see cref="PriceBook"/> and reloads it when prices or rules are added.</summary>
public sealed class PriceBookProvider(IDbContextFactory<ApplicationDbContext> dbFactory)
{
    private volatile PriceBook? _current;

    public PriceBook Current => _current ?? Reload();

    public PriceBook Reload()
    {
        using var db = dbFactory.CreateDbContext();
        var book = new PriceBook(db.Prices.AsNoTracking().ToList(), db.ConversionRules.AsNoTracking().ToList());
        _current = book;
        return book;
    }

    /// <summary>Picks up prices added by another process (the operator command line) cheaply.</summary>
    public void RefreshIfChanged()
    {
        using var db = dbFactory.CreateDbContext();
        var maxPrice = db.Prices.Max(p => (long?)p.Id) ?? 0;
        var maxRule = db.ConversionRules.Max(r => (long?)r.Id) ?? 0;
        var book = _current;
        if (book is null || book.MaxPriceId != maxPrice || book.MaxRuleId != maxRule) Reload();
    }
}
