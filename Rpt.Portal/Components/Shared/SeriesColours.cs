using System.Text;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Components.Shared;

/// <summary>
/// The colour of a model (or a feature) in every chart and legend: taken from its name, never from its rank,
/// so it stays the same on every page, after every refresh, whatever other series appear beside it.
/// Models and meters of the price book get colours of their own in the order the price book first listed
/// them (a new model takes the next free colour and moves nobody); other names (features, which clients
/// choose) get one from a hash of the name. The colours are mid-tones that read on light and dark alike.
/// </summary>
public sealed class SeriesColours(PriceBookProvider prices)
{
    public static readonly IReadOnlyList<string> Palette =
    [
        "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
        "#9c755f", "#86bcb6", "#d37295", "#8cd17d", "#499894", "#f1ce63", "#a0cbe8", "#ffbe7d",
        "#d4a6c8", "#79706e", "#b6992d", "#e8a09a",
    ];

    public string For(string? name)
    {
        if (name is not null && prices.Current.NamesInOrder.TryGetValue(name, out var order)) return Palette[order % Palette.Count];
        return Palette[(int)(Fnv1a(name ?? "") % (uint)Palette.Count)];
    }

    /// <summary>A stable function of the name alone (string.GetHashCode changes from process to process).</summary>
    private static uint Fnv1a(string name)
    {
        var hash = 2166136261u;
        foreach (var b in Encoding.UTF8.GetBytes(name))
        {
            hash ^= b;
            hash *= 16777619u;
        }
        return hash;
    }
}
