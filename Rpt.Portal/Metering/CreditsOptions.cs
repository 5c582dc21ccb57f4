using System.ComponentModel.DataAnnotations;

namespace Rpt.Portal.Metering;

/// <summary>The published conversion rule (Rpt:Credits).</summary>
public sealed class CreditsOptions
{
    [Range(typeof(decimal), "0.000001", "1000000", ErrorMessage = "Rpt:Credits:UsdPerCredit must be between 0.000001 and 1000000.")]
    public decimal UsdPerCredit { get; set; } = 0.01m;

    [Range(typeof(decimal), "0", "10", ErrorMessage = "Rpt:Credits:Overhead must be between 0 and 10 (0.20 is 20 %).")]
    public decimal Overhead { get; set; } = 0.20m;
}
