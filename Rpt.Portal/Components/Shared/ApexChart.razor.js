// JS isolation module for the ApexChart component. apexcharts.min.js (from the npm package, copied to
// wwwroot/lib at build time) defines window.ApexCharts.

const number = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

// The portal's colours for text and grid lines on its light and dark surfaces (PortalTheme).
function themed(options, dark) {
  const fore = dark ? 'rgba(255,255,255,0.87)' : 'rgba(0,0,0,0.80)';
  options.chart = { ...options.chart, background: 'transparent', foreColor: fore };
  options.theme = { ...options.theme, mode: dark ? 'dark' : 'light' };
  options.grid = { borderColor: dark ? 'rgba(255,255,255,0.16)' : 'rgba(0,0,0,0.12)', ...options.grid };
  const tooltip = { ...options.tooltip, theme: dark ? 'dark' : 'light' };
  // Numbers with thousands separators (the server sends plain numbers in the JSON).
  if (options.chart.type !== 'radialBar') {
    const unit = options.rptUnit ? ' ' + options.rptUnit : '';
    const yaxes = Array.isArray(options.yaxis) ? options.yaxis : [options.yaxis ?? {}];
    for (const y of yaxes) y.labels = { ...y.labels, formatter: v => (v == null ? '' : number.format(v)) };
    options.yaxis = Array.isArray(options.yaxis) ? yaxes : yaxes[0];
    tooltip.y = { formatter: v => (v == null ? '—' : number.format(v) + unit) };
    // A stacked chart's tooltip names the day's total next to the day.
    if (options.chart.stacked) {
      tooltip.x = {
        formatter: (value, { dataPointIndex, w }) => {
          if (dataPointIndex == null || dataPointIndex < 0) return value;
          const total = w.globals.series.reduce((sum, s) => sum + (s[dataPointIndex] ?? 0), 0);
          const day = w.globals.categoryLabels?.[dataPointIndex] || w.globals.labels?.[dataPointIndex] || value;
          return `${day} · total ${number.format(total)}${unit}`;
        },
      };
    }
  }
  options.tooltip = tooltip;
  delete options.rptUnit;
  return options;
}

export function create(element, json, dark) {
  const chart = new window.ApexCharts(element, themed(JSON.parse(json), dark));
  chart.render();
  return chart;
}

export function update(chart, json, dark) {
  chart.updateOptions(themed(JSON.parse(json), dark), true, false);
}

export function destroy(chart) {
  chart.destroy();
}
