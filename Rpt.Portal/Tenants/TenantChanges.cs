using System.Collections.Concurrent;

namespace Rpt.Portal.Tenants;

/// <summary>What moved in a tenant's account.</summary>
public enum TenantChange
{
    /// <summary>Usage events were committed (Metering).</summary>
    UsageCommitted,
    /// <summary>Usage was written to the ledger as consumption (Ledger).</summary>
    UsageFlushed,
    /// <summary>Credits were granted (Ledger).</summary>
    GrantChanged,
    /// <summary>The tenant moved to another plan, or a change was scheduled (Plans).</summary>
    PlanChanged,
    /// <summary>Subscription or payment state moved: a payment failed or was made (Billing).</summary>
    BillingChanged,
    /// <summary>An alert fired (Alerts).</summary>
    AlertFired,
}

/// <summary>
/// The one notifier of the house: features publish what moved in a tenant's account, and whoever
/// listens (open portal pages, later alerts) subscribes here, so no feature subscribes to another
/// feature's internals. Callbacks run on a pool thread, never on the publisher's (the ingestion writer
/// or a flush must not wait for a page); components marshal with InvokeAsync.
/// </summary>
public sealed class TenantChanges(ILogger<TenantChanges> logger)
{
    private readonly ConcurrentDictionary<Guid, (string TenantId, Func<TenantChange, Task> Callback)> _subscribers = new();
    private readonly ConcurrentDictionary<Guid, Func<TenantChange, IReadOnlyCollection<string>, Task>> _everyTenant = new();

    /// <summary>Listens to the changes of one tenant.</summary>
    public IDisposable Subscribe(string tenantId, Func<TenantChange, Task> callback)
    {
        var id = Guid.NewGuid();
        _subscribers[id] = (tenantId, callback);
        return new Subscription(() => _subscribers.TryRemove(id, out _));
    }

    /// <summary>Listens to the changes of every tenant, with the tenants each change concerns.</summary>
    public IDisposable SubscribeAll(Func<TenantChange, IReadOnlyCollection<string>, Task> callback)
    {
        var id = Guid.NewGuid();
        _everyTenant[id] = callback;
        return new Subscription(() => _everyTenant.TryRemove(id, out _));
    }

    public void Publish(TenantChange change, string tenantId) => Publish(change, [tenantId]);

    public void Publish(TenantChange change, IReadOnlyCollection<string> tenantIds)
    {
        if (tenantIds.Count == 0 || _subscribers.IsEmpty && _everyTenant.IsEmpty) return;
        ThreadPool.QueueUserWorkItem(_ =>
        {
            foreach (var callback in _everyTenant.Values) _ = Run(() => callback(change, tenantIds), change, null);
            foreach (var (tenant, callback) in _subscribers.Values)
            {
                if (tenantIds.Contains(tenant)) _ = Run(() => callback(change), change, tenant);
            }
        });
    }

    private async Task Run(Func<Task> callback, TenantChange change, string? tenant)
    {
        try
        {
            await callback();
        }
        catch (Exception ex)
        {
            logger.LogWarning(ex, "A listener to {Change} of {Tenant} failed", change, tenant ?? "every tenant");
        }
    }

    private sealed class Subscription(Action dispose) : IDisposable
    {
        public void Dispose() => dispose();
    }
}
