using Rpt.Portal.Components.Layout;
using Rpt.Portal.Components.Shared;

namespace Rpt.Portal.Tests.Components.Shared;

/// <summary>
/// Twelve models on one chart must be told apart by everyone who reads it: any two colours at least 15 CIELAB ΔE
/// apart for normal vision and under simulated protanopia, deuteranopia and tritanopia (full-severity matrices in
/// linear RGB), and every colour readable against the light and the dark surface.
/// </summary>
[Trait("Kind", "Unit")]
public class SeriesColoursTests
{
    private static readonly Dictionary<string, double[,]?> Visions = new()
    {
        ["normal"] = null,
        ["protanopia"] = new[,] { { 0.152286, 1.052583, -0.204868 }, { 0.114503, 0.786281, 0.099216 }, { -0.003882, -0.048116, 1.051998 } },
        ["deuteranopia"] = new[,] { { 0.367322, 0.860646, -0.227968 }, { 0.280085, 0.672501, 0.047413 }, { -0.011820, 0.042940, 0.968881 } },
        ["tritanopia"] = new[,] { { 1.255528, -0.076749, -0.178779 }, { -0.078411, 0.930809, 0.147602 }, { 0.004733, 0.691367, 0.303900 } },
    };

    [Fact]
    public void Palette_TwelveColours_StayApartForEveryColourVision()
    {
        var palette = SeriesColours.Palette;
        Assert.True(palette.Count >= 12);
        Assert.Equal(palette.Count, palette.Distinct(StringComparer.OrdinalIgnoreCase).Count());
        foreach (var (vision, matrix) in Visions)
            for (var i = 0; i < 12; i++)
                for (var j = i + 1; j < 12; j++)
                {
                    var distance = DeltaE(Lab(Simulate(Linear(palette[i]), matrix)), Lab(Simulate(Linear(palette[j]), matrix)));
                    Assert.True(distance >= 15, $"{palette[i]} and {palette[j]} are only {distance:0.0} ΔE apart for {vision}");
                }
    }

    [Fact]
    public void Palette_EveryColour_ReadsOnTheLightAndTheDarkSurface()
    {
        var light = Luminance(Linear(PortalTheme.Theme.PaletteLight.Surface.ToString(MudBlazor.Utilities.MudColorOutputFormats.Hex)));
        var dark = Luminance(Linear(PortalTheme.Theme.PaletteDark.Surface.ToString(MudBlazor.Utilities.MudColorOutputFormats.Hex)));
        foreach (var colour in SeriesColours.Palette)
        {
            var l = Luminance(Linear(colour));
            Assert.True(Contrast(l, light) >= 2, $"{colour} on the light surface: {Contrast(l, light):0.00}:1");
            Assert.True(Contrast(l, dark) >= 2, $"{colour} on the dark surface: {Contrast(l, dark):0.00}:1");
        }
    }

    private static double[] Linear(string hex)
    {
        hex = hex.TrimStart('#');
        return [.. Enumerable.Range(0, 3).Select(i =>
        {
            var c = Convert.ToInt32(hex.Substring(i * 2, 2), 16) / 255.0;
            return c <= 0.04045 ? c / 12.92 : Math.Pow((c + 0.055) / 1.055, 2.4);
        })];
    }

    private static double[] Simulate(double[] rgb, double[,]? m) => m is null ? rgb
        : [.. Enumerable.Range(0, 3).Select(i => Math.Clamp(m[i, 0] * rgb[0] + m[i, 1] * rgb[1] + m[i, 2] * rgb[2], 0, 1))];

    private static double[] Lab(double[] rgb)
    {
        var (r, g, b) = (rgb[0], rgb[1], rgb[2]);
        var x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047;
        var y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
        var z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883;
        static double F(double t) => t > 0.008856 ? Math.Cbrt(t) : 7.787 * t + 16.0 / 116;
        return [116 * F(y) - 16, 500 * (F(x) - F(y)), 200 * (F(y) - F(z))];
    }

    private static double DeltaE(double[] a, double[] b) =>
        Math.Sqrt(Math.Pow(a[0] - b[0], 2) + Math.Pow(a[1] - b[1], 2) + Math.Pow(a[2] - b[2], 2));

    private static double Luminance(double[] rgb) => 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2];

    private static double Contrast(double a, double b) => (Math.Max(a, b) + 0.05) / (Math.Min(a, b) + 0.05);
}
