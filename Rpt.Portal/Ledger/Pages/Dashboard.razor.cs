using System.Globalization;
using Microsoft.AspNetCore.Components;
using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Data;
using Rpt.Portal.Ledger;
using Rpt.Portal.Metering;
using Rpt.Portal.Plans;

namespace Rpt.Portal.Ledger.Pages;

public partial class Dashboard
{
    [Inject] private DashboardSnapshots Snapshots { get; set; } = default!;
    [Inject] private PriceBookProvider Prices { get; set; } = default!;
    [Inject] private CreditGrants Grants { get; set; } = default!;
    [Inject] private Rpt.Portal.Alerts.EvaluateAlerts Alerts { get; set; } = default!;
    private IReadOnlyList<int> _thresholds = Rpt.Portal.Alerts.AlertDefaults.PercentThresholds;

    /// <summary>Within this many days an expiry is worth a line on the dashboard.</summary>
    private static readonly TimeSpan ExpiryNotice = TimeSpan.FromDays(7);
    private IReadOnlyList<string> ExpiringSoon { get; set; } = [];

    private Balance? _balance;
    private Plan? _plan;
    private string? _planName;
    private ConversionRule? _rule;
    private TokenGrouping _by = TokenGrouping.Model;
    private DashboardSnapshot? _snapshot;
    private IReadOnlyList<DailyCredits> _daily = [];

    /// <summary>Reads the tenant's snapshot, shared with every other open dashboard of the tenant (DashboardSnapshots).</summary>
    protected override async Task LoadAsync()
    {
        _snapshot = await Snapshots.GetAsync(TenantId!);
        _balance = _snapshot?.Balance;
        if (_snapshot is null) return;
        // The gauge is coloured at the tenant's own percent alerts.
        _thresholds = (await Alerts.RulesAsync(TenantId!))
            .Where(r => r.Enabled && r.Kind == Rpt.Portal.Alerts.AlertKind.PercentConsumed)
            .Select(r => (int)Math.Round(r.Threshold)).Distinct().Order().ToList();
        var now = Time.GetUtcNow();
        ExpiringSoon = Grants.Current(TenantId!).Grants
            .Where(g => g.StatusAt(now) == CreditGrantStatus.Active && g.ExpiresAt is { } x && x - now <= ExpiryNotice)
            .GroupBy(g => g.ExpiresAt!.Value)
            .OrderBy(g => g.Key)
            .Select(g => $"{Credit.FloorCredits(g.Sum(x => x.RemainingMicro)):N0} credits expire on {g.Key.UtcDateTime.ToString("d MMM", CultureInfo.InvariantCulture)} unless used before.")
            .ToList();
        _plan = _snapshot.Plan;
        _planName = _plan?.Name ?? _snapshot.Balance.PlanCode;
        _rule = Prices.Current.RuleAt(Time.GetUtcNow());
        _daily = _by == TokenGrouping.Model ? _snapshot.ByModel : _snapshot.ByFeature;
    }

    private Task ReloadChartAsync()
    {
        _daily = _by == TokenGrouping.Model ? _snapshot!.ByModel : _snapshot!.ByFeature;
        return Task.CompletedTask;
    }

    private int DaysLeft => _balance!.Period.DaysLeft(Time.GetUtcNow());

    private string ForecastText
    {
        get
        {
            var f = Forecast.Of(_balance!, Time.GetUtcNow());
            if (f.CreditsPerDay == 0) return "No credits used yet this period.";
            var rate = $"At the current rate of {f.CreditsPerDay.ToString("N0", CultureInfo.InvariantCulture)} credits a day";
            if (_balance!.Unlimited) return $"{rate}, this period will use about {f.ProjectedConsumed:N0} credits.";
            if (f.RunOutAt is { } at && f.RunsOutBeforePeriodEnd)
                return at <= Time.GetUtcNow()
                    ? $"{rate}, the allocation is already used up."
                    : $"{rate}, the allocation runs out on {at.ToString("d MMM", CultureInfo.InvariantCulture)}, {(_balance.Period.EndInstant - at).TotalDays:0} days before the period ends.";
            return $"{rate}, this period will use about {f.ProjectedConsumed:N0} of {_balance.Allocated:N0} credits.";
        }
    }

    private string RunOutPolicy => _plan?.Overage switch
    {
        OveragePolicy.Unlimited => "never: this plan is unlimited.",
        OveragePolicy.Overage => $"usage continues, and credits beyond the allocation are billed as overage at ${_plan.OverageUsdPerCredit?.ToString("0.###", CultureInfo.InvariantCulture)} per credit.",
        _ => "usage is still recorded, but quota checks deny new jobs until the next period or a top-up.",
    };

    /// <summary>Ten distinguishable colours, so that models do not share one (the chart default has five).</summary>
    private static readonly string[] Palette =
        ["#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"];

    private object DailyOptions
    {
        get
        {
            var days = Enumerable.Range(0, _balance!.Period.Days).Select(d => _balance.Period.Start.AddDays(d)).ToList();
            var keys = _daily.GroupBy(d => d.Key).OrderByDescending(g => g.Sum(x => x.MicroCredits)).Select(g => g.Key).ToList();
            var lookup = _daily.ToDictionary(d => (d.Day, d.Key), d => d.MicroCredits);
            return new
            {
                chart = new { type = "bar", height = 300, stacked = true, toolbar = new { show = false }, animations = new { enabled = false } },
                series = keys.Select(k => new
                {
                    name = k,
                    data = days.Select(d => Math.Round(Credit.ToCredits(lookup.GetValueOrDefault((d, k))), 2)).ToArray(),
                }).ToArray(),
                xaxis = new { categories = days.Select(d => d.ToString("d MMM", CultureInfo.InvariantCulture)).ToArray(), tickAmount = 10, labels = new { rotate = -45, hideOverlappingLabels = true } },
                yaxis = new { title = new { text = "credits" }, decimalsInFloat = 0 },
                colors = Palette,
                dataLabels = new { enabled = false },
                legend = new { position = "bottom" },
                tooltip = new { shared = true, intersect = false },
                theme = new { mode = "light" },
            };
        }
    }
}
