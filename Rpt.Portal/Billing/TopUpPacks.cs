namespace Rpt.Portal.Billing;

/// <summary>A pack of credits an owner buys once (docs/RULES.md, "Top-up packs").</summary>
public sealed record TopUpPack(string Code, string Name, long Credits, decimal PriceUsd, int ValidMonths);

public static class TopUpPacks
{
    public static readonly IReadOnlyList<TopUpPack> All =
    [
        new("topup_5k", "5,000 credits", 5_000, 60m, 12),
        new("topup_25k", "25,000 credits", 25_000, 275m, 12),
        new("topup_100k", "100,000 credits", 100_000, 1_000m, 12),
    ];

    public static TopUpPack? Find(string? code) => All.FirstOrDefault(p => p.Code == code);
}
