/* Dovetail charts: every <div class="chart" data-kind="bar|line" data-chart="{json}"> becomes an
   ECharts chart (vendor/echarts) with axes, value labels and tooltips. The JSON holds
   {labels: [...], series: [{name, values: ["12.34", ...]}]}; no inline script is needed (CSP). */
(function () {
  "use strict";
  function draw(el) {
    var data;
    try { data = JSON.parse(el.getAttribute("data-chart") || "{}"); } catch (e) { return; }
    if (!window.echarts || !data.series || !data.series.length) { return; }
    var kind = el.getAttribute("data-kind") === "line" ? "line" : "bar";
    var chart = window.echarts.init(el, null, { renderer: "svg" });
    chart.setOption({
      tooltip: { trigger: "axis" },
      legend: { show: data.series.length > 1, top: 0 },
      grid: { left: 8, right: 16, bottom: 8, top: data.series.length > 1 ? 32 : 16, containLabel: true },
      xAxis: { type: "category", data: data.labels, axisLabel: { hideOverlap: true } },
      yAxis: { type: "value" },
      series: data.series.map(function (s) {
        return {
          name: s.name, type: kind, smooth: kind === "line",
          data: s.values.map(Number),
          label: { show: data.labels.length <= 12, position: "top" }
        };
      })
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }
  function init() {
    var els = document.querySelectorAll("div.chart[data-chart]");
    for (var i = 0; i < els.length; i++) { draw(els[i]); }
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
