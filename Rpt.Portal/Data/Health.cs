using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Rpt.Portal.Data;

/// <summary>
/// <c>/healthz</c>: the process lives (nothing else is asked). <c>/readyz</c>: the database answers, every migration is
/// applied, and this instance can write (not a standby, not a read-only file), what a load balancer needs before it
/// sends traffic here. Both are unauthenticated, outside the API's rate limits and its OpenAPI document, and cheap: the
/// readiness is read at most once a second, whatever the number of probes.
/// </summary>
public sealed class DatabaseReadiness(PortalDatabase database, IDbContextFactory<ApplicationDbContext> dbFactory, TimeProvider time) : IHealthCheck
{
    private static readonly TimeSpan Fresh = TimeSpan.FromSeconds(1);
    private readonly SemaphoreSlim _gate = new(1, 1);
    private (DateTimeOffset At, HealthCheckResult Result)? _last;
    private bool _migrated;

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (_last is { } cached && time.GetUtcNow() - cached.At < Fresh) return cached.Result;
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (_last is { } again && time.GetUtcNow() - again.At < Fresh) return again.Result;
            var result = await ReadAsync(cancellationToken);
            _last = (time.GetUtcNow(), result);
            return result;
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<HealthCheckResult> ReadAsync(CancellationToken cancellationToken)
    {
        try
        {
            using (var connection = database.Open())
            {
                if (database.CannotWrite(connection) is { } reason) return HealthCheckResult.Unhealthy(reason);
            }
            if (!_migrated)
            {
                await using var db = await dbFactory.CreateDbContextAsync(cancellationToken);
                var pending = (await db.Database.GetPendingMigrationsAsync(cancellationToken)).ToList();
                if (pending.Count > 0) return HealthCheckResult.Unhealthy($"{pending.Count} migration(s) not applied: {string.Join(", ", pending)}");
                _migrated = true; // a migration once applied stays so
            }
            return HealthCheckResult.Healthy($"{database.Engine} answers and can be written");
        }
        catch (Exception ex) when (ex is System.Data.Common.DbException or InvalidOperationException or TimeoutException or IOException)
        {
            return HealthCheckResult.Unhealthy($"the database does not answer: {ex.GetBaseException().Message}");
        }
    }
}

public static class HealthExtensions
{
    public const string ReadyTag = "ready";

    /// <summary>The response header naming the instance that answered, when Rpt:InstanceName is set.</summary>
    public const string InstanceHeader = "X-Rpt-Instance";

    public static IHostApplicationBuilder AddPortalHealth(this IHostApplicationBuilder builder)
    {
        var name = builder.Configuration["Rpt:InstanceName"];
        if (name is not null && !System.Text.RegularExpressions.Regex.IsMatch(name, "^[A-Za-z0-9._-]{1,64}$"))
            throw new StorageSettingException($"Rpt:InstanceName must be 1 to 64 letters, digits, '.', '_' or '-' (got {name.Length} characters).");
        builder.Services.AddSingleton<DatabaseReadiness>();
        builder.Services.AddHealthChecks().AddCheck<DatabaseReadiness>("database", tags: [ReadyTag]);
        return builder;
    }

    /// <summary>
    /// /healthz and /readyz for a load balancer; and, with Rpt:InstanceName set (each instance its own, e.g. portal-a),
    /// every answer names its instance in X-Rpt-Instance, so an operator behind a load balancer sees who answered.
    /// </summary>
    public static WebApplication MapPortalHealth(this WebApplication app)
    {
        if (app.Configuration["Rpt:InstanceName"] is { } name)
            app.Use((http, next) =>
            {
                http.Response.Headers[InstanceHeader] = name;
                return next(http);
            });
        app.MapHealthChecks("/healthz", new() { Predicate = _ => false }).ExcludeFromDescription();
        app.MapHealthChecks("/readyz", new()
        {
            Predicate = c => c.Tags.Contains(ReadyTag),
            ResponseWriter = async (http, report) =>
            {
                http.Response.ContentType = "text/plain; charset=utf-8";
                var entry = report.Entries.Values.FirstOrDefault();
                await http.Response.WriteAsync($"{report.Status}: {entry.Description}");
            },
        }).ExcludeFromDescription();
        return app;
    }
}
