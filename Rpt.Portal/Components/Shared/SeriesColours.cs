using System.Text;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Components.Shared;

/// <summary>
/// The colour of a model (or a feature) in every chart and legend: taken from its name, never from its rank,
/// so it stays the same on every page, after every refresh, whatever other series appear beside it.
/// Models and meters of the price book get colours of their own in the order the price book first listed
/// them (a new model takes the next free colour and moves nobody); other names (features, which clients
/// choose) get one from a hash of the name.
/// </summary>
public sealed class SeriesColours(PriceBookProvider prices)
{
    /// <summary>
    /// Twelve colours that stay apart for people with every common colour-vision deficiency (at least 15 CIELAB ΔE
    /// between any two, under simulated protanopia, deuteranopia and tritanopia as well as normal vision; tested),
    /// and that read on the light and the dark surface (at least 2:1 against both). The first six are a
    /// colour-blind-safe set in wide use; the rest were chosen to be farthest from those. A thirteenth series repeats the first.
    /// </summary>
    public static readonly IReadOnlyList<string> Palette =
    [
        "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00",
        "#8c1ff9", "#e00647", "#7e63e9", "#d7b075", "#b2347f", "#839bfc",
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
