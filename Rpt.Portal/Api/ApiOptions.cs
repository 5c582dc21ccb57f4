using System.ComponentModel.DataAnnotations;

namespace Rpt.Portal.Api;

/// <summary>Rpt:Api.</summary>
public sealed class ApiOptions
{
    /// <summary>Sustained requests per second per API key.</summary>
    [Range(1, 1_000_000, ErrorMessage = "Rpt:Api:RequestsPerSecond must be between 1 and 1000000.")]
    public int RequestsPerSecond { get; set; } = 1_000;

    /// <summary>Requests a key may send at once above the sustained rate.</summary>
    [Range(1, 1_000_000, ErrorMessage = "Rpt:Api:Burst must be between 1 and 1000000.")]
    public int Burst { get; set; } = 2_000;
}
