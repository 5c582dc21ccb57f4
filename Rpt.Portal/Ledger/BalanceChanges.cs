using System.Collections.Concurrent;
using Rpt.Portal.Metering;

namespace Rpt.Portal.Ledger;

/// <summary>
/// Tells open portal pages that a tenant's balance moved (usage committed, allocation granted, usage
/// flushed). Subscriptions are disposable; callbacks run on the notifying thread, so components
/// marshal with InvokeAsync.
/// </summary>
public sealed class BalanceChanges
{
    private readonly ConcurrentDictionary<Guid, (string TenantId, Func<Task> Callback)> _subscribers = new();

    public BalanceChanges(UsageIngestor ingestor, LedgerEvents ledger)
    {
        ingestor.Committed += tenants => Notify(tenants);
        ledger.AllocationChanged += tenant => Notify([tenant]);
        ledger.UsageFlushed += tenants => Notify(tenants);
    }

    public IDisposable Subscribe(string tenantId, Func<Task> callback)
    {
        var id = Guid.NewGuid();
        _subscribers[id] = (tenantId, callback);
        return new Subscription(() => _subscribers.TryRemove(id, out _));
    }

    private void Notify(IReadOnlyCollection<string> tenants)
    {
        foreach (var (tenant, callback) in _subscribers.Values)
        {
            if (tenants.Contains(tenant)) _ = callback();
        }
    }

    private sealed class Subscription(Action dispose) : IDisposable
    {
        public void Dispose() => dispose();
    }
}
