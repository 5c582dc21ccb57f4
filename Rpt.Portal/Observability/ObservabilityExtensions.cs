using System.Net;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Rpt.Portal.Observability;

/// <summary>Where /metrics may be read from.</summary>
public sealed class MetricsOptions
{
    /// <summary>
    /// Address ranges (CIDR) allowed to read /metrics; anyone else gets the portal's 404. Loopback only by default: the
    /// endpoint is not public until an operator names the scraper's network (e.g. <c>10.0.0.0/8</c>). Empty here, not the
    /// loopback ranges: the configuration binder adds configured items to an array's defaults instead of replacing them.
    /// </summary>
    public string[] AllowedNetworks { get; set; } = [];

    public static readonly string[] Loopback = ["127.0.0.0/8", "::1/128"];

    public IEnumerable<string> Effective => AllowedNetworks.Length == 0 ? Loopback : AllowedNetworks;
}

/// <summary>
/// Metrics and traces through OpenTelemetry: the portal's instruments (<see cref="PortalMetrics"/>), ASP.NET Core's,
/// HttpClient's, the runtime's and Npgsql's, scraped as Prometheus text at /metrics; request traces exported over OTLP
/// when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> names a collector.
/// </summary>
public static class ObservabilityExtensions
{
    public static IHostApplicationBuilder AddPortalObservability(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<PortalMetrics>();
        builder.Services.AddOptions<MetricsOptions>().BindConfiguration("Rpt:Metrics")
            .Validate(o => o.AllowedNetworks.All(n => IPNetwork.TryParse(n, out _)),
                "Rpt:Metrics:AllowedNetworks must list address ranges in CIDR form, e.g. 10.0.0.0/8 or ::1/128.")
            .ValidateOnStart();
        var instance = builder.Configuration["Rpt:InstanceName"] ?? Environment.MachineName;
        var otel = builder.Services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService("rpt-portal", serviceInstanceId: instance))
            .WithMetrics(m => m
                .AddMeter(PortalMetrics.MeterName)
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddRuntimeInstrumentation()
                .AddMeter("Npgsql") // the PostgreSQL client's own meter: connections, commands, their durations
                .AddPrometheusExporter())
            .WithTracing(t => t
                .AddAspNetCoreInstrumentation(o => o.Filter = http => !http.Request.Path.StartsWithSegments("/metrics"))
                .AddHttpClientInstrumentation()
                .AddSource("Npgsql"));
        if (!string.IsNullOrEmpty(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"])) otel.UseOtlpExporter();
        return builder;
    }

    /// <summary>/metrics, for the allowed networks only; everyone else falls through to the portal's 404.</summary>
    public static WebApplication MapPortalMetrics(this WebApplication app)
    {
        var allowed = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<MetricsOptions>>().Value.Effective
            .Select(n => IPNetwork.Parse(n)).ToArray();
        app.UseOpenTelemetryPrometheusScrapingEndpoint(http =>
            http.Request.Path == "/metrics" && http.Connection.RemoteIpAddress is { } address
            && allowed.Any(n => n.Contains(address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address)));
        return app;
    }
}
