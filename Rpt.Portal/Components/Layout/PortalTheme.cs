using MudBlazor;

namespace Rpt.Portal.Components.Layout;

/// <summary>Light and dark palettes whose text pairs meet WCAG AA contrast (checked by the browser tests with axe-core).</summary>
public static class PortalTheme
{
    public static readonly MudTheme Theme = new()
    {
        PaletteLight = new PaletteLight
        {
            Primary = "#1f5fbf",
            Secondary = "#5b3cc4",
            Info = "#0b5cad",
            AppbarBackground = "#163a73",
            Success = "#1b7f3b",
            Warning = "#8a4b00",
            Error = "#b3261e",
        },
        PaletteDark = new PaletteDark
        {
            Primary = "#8fb4ff",
            PrimaryContrastText = "#0b1a33",
            Secondary = "#c1a8ff",
            SecondaryContrastText = "#1b1033",
            Info = "#8cc8ff",
            InfoContrastText = "#0b1a33",
            AppbarBackground = "#10213f",
            Success = "#6fd08c",
            SuccessContrastText = "#0b2613",
            Warning = "#ffb454",
            WarningContrastText = "#2b1700",
            Error = "#ff8a80",
            ErrorContrastText = "#2b0a07",
            TextSecondary = "rgba(255,255,255,0.82)",
            ActionDefault = "rgba(255,255,255,0.82)",
        },
    };
}
