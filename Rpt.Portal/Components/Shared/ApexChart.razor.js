// JS isolation module for the ApexChart component. apexcharts.min.js (from the npm package, copied to
// wwwroot/lib at build time) defines window.ApexCharts.
export function create(element, json) {
  const chart = new window.ApexCharts(element, JSON.parse(json));
  chart.render();
  return chart;
}

export function update(chart, json) {
  chart.updateOptions(JSON.parse(json), true, false);
}

export function destroy(chart) {
  chart.destroy();
}
