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
    /// <summary>An API key was revoked (Api); the tenant is "" for a platform key. Every instance forgets what it cached.</summary>
    ApiKeyRevoked,
    /// <summary>A hold was placed or released (Ledger): what is available moved, not the balance. Open pages refresh; alerts
    /// and auto top-up, which follow the balance, are not evaluated (a job placing and releasing holds would otherwise make
    /// every hold read every budget of its tenant).</summary>
    HoldChanged,
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

    /// <summary>
    /// Listens to the changes of every tenant made on any instance, this one's and, through the relay, the others'
    /// (what each instance must do for itself, such as forgetting a revoked key it cached).
    /// </summary>
    public IDisposable SubscribeOnEveryInstance(Func<TenantChange, IReadOnlyCollection<string>, Task> callback)
    {
        var id = Guid.NewGuid();
        _everyInstance[id] = callback;
        return new Subscription(() => _everyInstance.TryRemove(id, out _));
    }

    private readonly ConcurrentDictionary<Guid, Func<TenantChange, IReadOnlyCollection<string>, Task>> _everyInstance = new();

    public void Publish(TenantChange change, string tenantId) => Publish(change, [tenantId]);

    /// <summary>Tells this instance's listeners, and (through the relay, when several instances share the database) every other instance's pages.</summary>
    public void Publish(TenantChange change, IReadOnlyCollection<string> tenantIds)
    {
        if (tenantIds.Count == 0) return;
        _relay?.Send(change, tenantIds);
        Dispatch(change, tenantIds, everyTenant: true);
    }

    /// <summary>
    /// A change another instance made, as its relay received it: the open pages of these tenants here follow it. The
    /// listeners to every tenant (alert evaluation, auto top-up) are not called: the instance that made the change
    /// called its own, and work done for a change happens once.
    /// </summary>
    public void PublishFromAnotherInstance(TenantChange change, IReadOnlyCollection<string> tenantIds)
    {
        if (tenantIds.Count == 0) return;
        Dispatch(change, tenantIds, everyTenant: false);
    }

    /// <summary>Carries what is published here to the other instances (set once, by the engine that can).</summary>
    public void RelayThrough(ITenantChangeRelay relay) => _relay = relay;

    private ITenantChangeRelay? _relay;

    private void Dispatch(TenantChange change, IReadOnlyCollection<string> tenantIds, bool everyTenant)
    {
        if (_subscribers.IsEmpty && _everyInstance.IsEmpty && (!everyTenant || _everyTenant.IsEmpty)) return;
        ThreadPool.QueueUserWorkItem(_ =>
        {
            foreach (var callback in _everyInstance.Values) _ = Run(() => callback(change, tenantIds), change, null);
            if (everyTenant)
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

/// <summary>Carries the changes published on one instance to the others that share its database.</summary>
public interface ITenantChangeRelay
{
    /// <summary>Queues the change for the other instances; never waits for the database.</summary>
    void Send(TenantChange change, IReadOnlyCollection<string> tenantIds);
}
