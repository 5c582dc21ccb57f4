using System.Globalization;
using Microsoft.AspNetCore.Components;
using Microsoft.EntityFrameworkCore;
using Rpt.Portal.Components.Shared;
using Rpt.Portal.Data;
using Rpt.Portal.Ledger;
using Rpt.Portal.Metering;
using Rpt.Portal.Plans;

namespace Rpt.Portal.Ledger.Pages;

public partial class Dashboard
{
    protected override bool SendsOperatorsToConsole => true;

    [Inject] private DashboardSnapshots Snapshots { get; set; } = default!;
    [Inject] private PriceBookProvider Prices { get; set; } = default!;
    [Inject] private SeriesColours Colours { get; set; } = default!;
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
        // The page renders whenever an await yields (on PostgreSQL every read does): _balance, which the markup tests
        // first, is set last, once every field it reads beside it is ready.
        var snapshot = await Snapshots.GetAsync(TenantId!);
        if (snapshot is null)
        {
            (_snapshot, _balance) = (null, null);
            return;
        }
        // The gauge is coloured at the tenant's own percent alerts.
        _thresholds = (await Alerts.RulesAsync(TenantId!))
            .Where(r => r.Enabled && r.Kind == Rpt.Portal.Alerts.AlertKind.PercentConsumed)
            .Select(r => (int)Math.Round(r.Threshold)).Distinct().Order().ToList();
        var now = Time.GetUtcNow();
        ExpiringSoon = Grants.Current(TenantId!).Grants
            .Where(g => g.StatusAt(now) == CreditGrantStatus.Active && g.ExpiresAt is { } x && x - now <= ExpiryNotice)
            .GroupBy(g => g.ExpiresAt!.Value)
            .OrderBy(g => g.Key)
            .Select(g => $"{Show.Credits(Credit.FloorCredits(g.Sum(x => x.RemainingMicro)))} credits expire on {g.Key.UtcDateTime.ToString("d MMM", CultureInfo.InvariantCulture)} unless used before.")
            .ToList();
        _plan = snapshot.Plan;
        _planName = _plan?.Name ?? snapshot.Balance.PlanCode;
        _rule = Prices.Current.RuleAt(Time.GetUtcNow());
        _snapshot = snapshot;
        _balance = snapshot.Balance;
        SelectGrouping();
    }

    private Task ReloadChartAsync()
    {
        SelectGrouping();
        return Task.CompletedTask;
    }

    private int DaysLeft => _balance!.Period.DaysLeft(Time.GetUtcNow());

    private string GroupName => _by == TokenGrouping.Model ? "model" : "feature";

    /// <summary>The period's billed tokens and credits per model or feature, as the toggle says, largest first.</summary>
    private IReadOnlyList<(string Key, long Tokens, long Micro)> Groups { get; set; } = [];

    private long GroupsMicro { get; set; }

    /// <summary>The daily rows of the toggle's grouping, and their sums per key (computed once, read by the chart and the table).</summary>
    private void SelectGrouping()
    {
        _daily = _by == TokenGrouping.Model ? _snapshot!.ByModel : _snapshot!.ByFeature;
        Groups = _daily
            .GroupBy(d => d.Key)
            .Select(g => (g.Key, g.Sum(x => x.Tokens), g.Sum(x => x.MicroCredits)))
            .OrderByDescending(g => g.Item3).ThenBy(g => g.Key, StringComparer.Ordinal)
            .ToList();
        GroupsMicro = Groups.Sum(g => g.Micro);
    }

    private string ForecastText
    {
        get
        {
            var b = _balance!;
            var f = Forecast.Of(b, Time.GetUtcNow());
            if (f.CreditsPerDay == 0) return "No credits used yet this period.";
            var rate = $"At the current rate of {Show.Credits((long)Math.Round(f.CreditsPerDay, MidpointRounding.AwayFromZero))} credits a day";
            if (b.Unlimited) return $"{rate}, this period will use about {Show.Credits(f.ProjectedConsumed)} credits.";
            if (BalanceText.UsedUp(b))
            {
                var past = Math.Max(0, f.ProjectedConsumed - b.Allocated!.Value);
                return b.Overage == OveragePolicy.Overage && past > 0
                    ? $"{rate}, the period will end about {Show.Credits(past)} credits past the allocation."
                    : $"The allocation is used up, {DaysLeft} day{(DaysLeft == 1 ? "" : "s")} before the period renews.";
            }
            if (f.RunOutAt is { } at && f.RunsOutBeforePeriodEnd)
                return $"{rate}, the allocation runs out on {at.UtcDateTime.ToString("d MMM", CultureInfo.InvariantCulture)}, {(b.Period.EndInstant - at).TotalDays:0} days before the period ends.";
            return $"{rate}, this period will use about {Show.Credits(f.ProjectedConsumed)} of {Show.Credits(b.Allocated!.Value)} credits.";
        }
    }

    private string RunOutPolicy => _plan?.Overage switch
    {
        OveragePolicy.Unlimited => "never: this plan is unlimited.",
        OveragePolicy.Overage => $"usage continues, and credits beyond the allocation are billed as overage at {Show.Price(_plan.OverageUsdPerCredit)} per credit.",
        _ => "usage is still recorded, but quota checks deny new jobs until the next period or a top-up.",
    };

    /// <summary>
    /// The elapsed days of the period as stacked bars (a model or feature keeps its colour, SeriesColours), and
    /// the days still to come as a dashed line at the current daily rate, up to the period's last day.
    /// </summary>
    private object DailyOptions
    {
        get
        {
            var b = _balance!;
            var now = Time.GetUtcNow();
            var today = DateOnly.FromDateTime(now.UtcDateTime);
            var days = Enumerable.Range(0, b.Period.Days).Select(d => b.Period.Start.AddDays(d)).ToList();
            var keys = Groups.Select(g => g.Key).ToList();
            var lookup = _daily.ToDictionary(d => (d.Day, d.Key), d => d.MicroCredits);
            // The rate the forecast sentence gives, so that the line and the words agree.
            var perDay = Math.Round(Forecast.Of(b, now).CreditsPerDay, 2);
            var series = keys.Select(k => (object)new
            {
                name = k,
                type = "bar",
                data = days.Select(d => d <= today ? (decimal?)Math.Round(Credit.ToCredits(lookup.GetValueOrDefault((d, k))), 2) : null).ToArray(),
            }).ToList();
            var forecastDays = days.Count(d => d > today);
            if (forecastDays > 0 && perDay > 0)
                series.Add(new { name = "Forecast (a day)", type = "line", data = days.Select(d => d > today ? (decimal?)perDay : null).ToArray() });
            var colours = keys.Select(Colours.For).Append("#8a8f98").ToArray();
            return new
            {
                chart = new { type = "bar", height = 300, stacked = true, toolbar = new { show = false }, animations = new { enabled = false } },
                series,
                xaxis = new { categories = days.Select(d => d.ToString("d MMM", CultureInfo.InvariantCulture)).ToArray(), tickAmount = 10, labels = new { rotate = -45, hideOverlappingLabels = true } },
                yaxis = new { title = new { text = "credits" }, decimalsInFloat = 0, min = 0 },
                colors = colours,
                stroke = new { width = keys.Select(_ => 0).Append(3).ToArray(), dashArray = keys.Select(_ => 0).Append(6).ToArray() },
                markers = new { size = 0 },
                dataLabels = new { enabled = false },
                legend = new { position = "bottom" },
                tooltip = new { shared = true, intersect = false },
                rptUnit = "credits",
            };
        }
    }
}
