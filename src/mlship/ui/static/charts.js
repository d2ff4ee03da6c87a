// Draws the charts of a page: their ECharts options are in the JSON block #charts, built by the
// server; each goes into the element with the same index in data-chart.
(function () {
  "use strict";
  var block = document.getElementById("charts");
  if (!block || typeof echarts === "undefined") { return; }
  var options = JSON.parse(block.textContent);
  var dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  document.querySelectorAll("[data-chart]").forEach(function (box) {
    var chart = echarts.init(box, dark ? "dark" : null, { renderer: "svg" });
    chart.setOption(options[Number(box.getAttribute("data-chart"))]);
    window.addEventListener("resize", function () { chart.resize(); });
  });
})();
