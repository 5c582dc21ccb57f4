using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Data;

namespace Rpt.Portal.Api;

/// <summary>Writes the last use of API keys, off the request path.</summary>
public sealed class ApiKeyUsageRecorder(ApiKeyService keys, IDbContextFactory<ApplicationDbContext> dbFactory, ILogger<ApiKeyUsageRecorder> logger)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await foreach (var (keyId, at) in keys.Uses.ReadAllAsync(stoppingToken))
            {
                try
                {
                    await using var db = await dbFactory.CreateDbContextAsync(stoppingToken);
                    await db.ApiKeys.Where(k => k.Id == keyId).ExecuteUpdateAsync(s => s.SetProperty(k => k.LastUsedAt, at), stoppingToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    logger.LogWarning(ex, "Recording the last use of API key {KeyId} failed", keyId);
                }
            }
        }
        catch (OperationCanceledException) { }
    }
}
