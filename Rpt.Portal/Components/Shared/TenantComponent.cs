using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Authorization;
using Rpt.Portal.Tenants;

namespace Rpt.Portal.Components.Shared;

/// <summary>
/// A component that shows one tenant's data and refreshes itself when that tenant's balance moves:
/// at once on a change in this process, and at least every few seconds for changes made by another
/// process (the operator command line) on the same database.
/// </summary>
public abstract class TenantComponent : ComponentBase, IDisposable
{
    public static readonly TimeSpan RefreshEvery = TimeSpan.FromSeconds(4);

    /// <summary>Under heavy ingestion changes arrive per commit; a page reloads at most this often for them.</summary>
    public static readonly TimeSpan MinimumGap = TimeSpan.FromSeconds(1);

    [CascadingParameter] private Task<AuthenticationState>? AuthenticationState { get; set; }
    [Inject] private TenantChanges Changes { get; set; } = default!;
    [Inject] protected TimeProvider Time { get; set; } = default!;
    [Inject] private NavigationManager Navigation { get; set; } = default!;

    private IDisposable? _subscription;
    private ITimer? _timer;
    private int _refreshing;
    private long _lastRefresh;

    protected string? TenantId { get; private set; }
    protected System.Security.Claims.ClaimsPrincipal User { get; private set; } = new();

    /// <summary>The portal's home page: an operator who opens it goes to the console (parts of the layout are tenant components too, and stay quiet).</summary>
    protected virtual bool SendsOperatorsToConsole => false;

    /// <summary>Whether this component follows live changes (lists that page through history do not).</summary>
    protected virtual bool Live => true;

    protected override async Task OnInitializedAsync()
    {
        if (AuthenticationState is not null)
        {
            User = (await AuthenticationState).User;
            TenantId = User.TenantId();
        }
        if (TenantId is null)
        {
            // An operator belongs to no tenant: the portal's home has nothing to show them; their home is the console.
            if (SendsOperatorsToConsole && User.IsInRole(PortalRoles.Operator)) Navigation.NavigateTo("operations/tenants", replace: true);
            return;
        }
        await LoadAsync();
        if (!Live) return;
        _subscription = Changes.Subscribe(TenantId, OnChangeAsync);
        _timer = Time.CreateTimer(_ => _ = RefreshAsync(), null, RefreshEvery, RefreshEvery);
    }

    /// <summary>Reads the data to show; called once, then on every change.</summary>
    protected abstract Task LoadAsync();

    // The periodic refresh also carries any change skipped here, so nothing is missed for longer than RefreshEvery.
    private Task OnChangeAsync(TenantChange change) =>
        Time.GetTimestamp() - Interlocked.Read(ref _lastRefresh) < MinimumGap.TotalSeconds * Time.TimestampFrequency
            ? Task.CompletedTask
            : RefreshAsync();

    private async Task RefreshAsync()
    {
        if (Interlocked.Exchange(ref _refreshing, 1) == 1) return;
        Interlocked.Exchange(ref _lastRefresh, Time.GetTimestamp());
        try
        {
            await InvokeAsync(async () =>
            {
                await LoadAsync();
                StateHasChanged();
            });
        }
        catch (ObjectDisposedException) { }
        finally
        {
            Interlocked.Exchange(ref _refreshing, 0);
        }
    }

    public virtual void Dispose()
    {
        _subscription?.Dispose();
        _timer?.Dispose();
        GC.SuppressFinalize(this);
    }
}
