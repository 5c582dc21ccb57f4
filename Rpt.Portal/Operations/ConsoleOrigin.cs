using System.Security.Claims;
using Microsoft.AspNetCore.Components.Server.Circuits;

namespace Rpt.Portal.Operations;

/// <summary>
/// Where a console session comes from, for its audit records: the browser's address as the server saw it when the
/// session's connection opened (after the forwarded-headers rules, behind a proxy). Pages cannot read the request
/// later, so a circuit handler keeps it for the session.
/// </summary>
public sealed class ConsoleOrigin
{
    public string Address { get; internal set; } = "unknown";

    /// <summary>The operator and <c>browser@ADDRESS</c>.</summary>
    public AuditActor Actor(ClaimsPrincipal user) => new(user.Identity?.Name ?? "unknown", $"browser@{Address}");
}

internal sealed class ConsoleOriginCircuitHandler(ConsoleOrigin origin, IHttpContextAccessor http) : CircuitHandler
{
    public override Task OnConnectionUpAsync(Circuit circuit, CancellationToken cancellationToken)
    {
        if (http.HttpContext?.Connection.RemoteIpAddress is { } address)
            origin.Address = (address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address).ToString();
        return Task.CompletedTask;
    }
}
