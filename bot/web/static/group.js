// 群详情 charts: the report JSON the server rendered into the page, drawn with ECharts.
(function () {
  const d = JSON.parse(document.getElementById("report").textContent);
  const font = { fontFamily: '"Noto Sans CJK SC","PingFang SC","Microsoft YaHei",sans-serif' };
  const charts = [];
  function draw(id, option) {
    const chart = echarts.init(document.getElementById(id), null, { renderer: "canvas" });
    chart.setOption(Object.assign({ textStyle: font, tooltip: { trigger: "axis" }, grid: { left: 48, right: 16, top: 36, bottom: 32 } }, option));
    charts.push(chart);
  }
  const days = { type: "category", data: d.days };
  draw("c-growth", {
    legend: { data: ["成员", "入群", "退群"] }, xAxis: days,
    yAxis: [{ type: "value", name: "人" }, { type: "value", name: "进出" }],
    series: [
      { name: "成员", type: "line", data: d.members, smooth: true },
      { name: "入群", type: "bar", yAxisIndex: 1, data: d.joins, stack: "flow" },
      { name: "退群", type: "bar", yAxisIndex: 1, data: d.leaves, stack: "flow" },
    ],
  });
  draw("c-dau", {
    legend: { data: ["日活跃", "消息数"] }, xAxis: days,
    yAxis: [{ type: "value", name: "人" }, { type: "value", name: "条" }],
    series: [
      { name: "日活跃", type: "line", data: d.dau, smooth: true },
      { name: "消息数", type: "bar", yAxisIndex: 1, data: d.messages },
    ],
  });
  draw("c-heat", {
    tooltip: { position: "top", formatter: (p) => `${d.weekdays[p.value[1]]} ${p.value[0]}:00 — ${p.value[2]} 条` },
    xAxis: { type: "category", data: [...Array(24).keys()].map((h) => h + "时"), splitArea: { show: true } },
    yAxis: { type: "category", data: d.weekdays, splitArea: { show: true } },
    visualMap: { min: 0, max: Math.max(1, d.heat_max), calculable: true, orient: "horizontal", left: "center", bottom: 0, show: false },
    series: [{ name: "消息", type: "heatmap", data: d.heatmap }],
  });
  draw("c-checkin", {
    xAxis: days, yAxis: { type: "value", name: "%", max: 100 },
    series: [{ name: "签到率", type: "line", data: d.checkin, connectNulls: false, areaStyle: {} }],
  });
  const cohorts = d.cohorts.map((c) => c.key.slice(5) + "（" + c.size + "人）");
  draw("c-cohort", {
    legend: { data: d.retention_days.map((n) => n + "日后活跃") }, xAxis: { type: "category", data: cohorts },
    yAxis: { type: "value", name: "%", max: 100 },
    series: d.retention_days.map((n) => ({
      name: n + "日后活跃", type: "bar",
      data: d.cohorts.map((c) => (c.active[n] == null ? null : Math.round(c.active[n] * 1000) / 10)),
    })),
  });
  window.addEventListener("resize", () => charts.forEach((c) => c.resize()));
  document.body.dataset.chartsReady = "1";
})();
