/* Draws the staff dashboards' charts with Chart.js from the JSON each panel embeds (json_script).
   Values arrive as decimal strings already rounded by the server; they are only drawn here. */
(function () {
  "use strict";
  if (typeof Chart === "undefined") { return; }

  var COLORS = {
    navy: "#243b53", blue: "#2680c2", sky: "#9fd3f5", teal: "#27ab83", green: "#57ae5b",
    purple: "#9446ed", orange: "#f0b429", red: "#e12d39", grey: "#bcccdc"
  };
  function color(name, alpha) {
    var hex = COLORS[name] || name || COLORS.blue;
    if (alpha === undefined) { return hex; }
    var n = parseInt(hex.slice(1), 16);
    return "rgba(" + (n >> 16) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + alpha + ")";
  }
  function num(v) { return v === null || v === undefined ? null : Number(v); }

  Chart.defaults.font.family = "system-ui, -apple-system, 'Segoe UI', sans-serif";
  Chart.defaults.color = "#486581";
  Chart.defaults.plugins.legend.labels.usePointStyle = true;
  Chart.defaults.plugins.legend.labels.boxWidth = 8;
  Chart.defaults.maintainAspectRatio = false;

  function formatter(spec, kind, compact) {
    var locale = spec.locale || "en-US";
    if (kind === "percent") {
      var pct = new Intl.NumberFormat(locale, { style: "percent", maximumFractionDigits: compact ? 0 : 1 });
      return function (v) { return v === null ? "—" : pct.format(v); };
    }
    if (kind === "count") {
      var cnt = new Intl.NumberFormat(locale, { maximumFractionDigits: 0 });
      return function (v) { return v === null ? "—" : cnt.format(v); };
    }
    var money = new Intl.NumberFormat(locale, compact
      ? { style: "currency", currency: spec.currency, notation: "compact", maximumFractionDigits: 1 }
      : { style: "currency", currency: spec.currency });
    return function (v) { return v === null ? "—" : money.format(v); };
  }

  function axis(spec, kind, extra) {
    var fmt = formatter(spec, kind, true);
    return Object.assign({
      grid: { color: "#eef2f6" }, border: { display: false },
      ticks: { callback: function (v) { return fmt(v); }, maxTicksLimit: 6 }
    }, extra || {});
  }

  function tooltip(spec, kinds) {
    return {
      callbacks: {
        label: function (ctx) {
          var kind = kinds[ctx.datasetIndex] || spec.format;
          var value = ctx.raw;
          if (Array.isArray(value)) { value = value[1] - value[0]; }
          if (value && typeof value === "object" && "y" in value) { value = value.y; }
          return " " + (ctx.dataset.label || ctx.label) + ": " + formatter(spec, kind, false)(value);
        }
      }
    };
  }

  function dataset(s, i) {
    var line = s.type === "line" || (!s.type && this.defaultType === "line");
    var d = {
      label: s.label, data: s.values.map(num), type: s.type || this.defaultType,
      borderColor: color(s.color), backgroundColor: line ? color(s.color, s.fill ? 0.12 : 1) : color(s.color, s.axis === "y2" ? 0.45 : 0.85),
      borderWidth: line ? 2.5 : 0, borderRadius: line ? 0 : 4, fill: !!s.fill, tension: 0.3, cubicInterpolationMode: "monotone",
      pointRadius: line ? 3 : 0, pointHoverRadius: 5, pointBackgroundColor: "#fff",
      yAxisID: s.axis || "y", order: line ? 0 : 1, spanGaps: true
    };
    if (s.dash) { d.borderDash = [6, 4]; }
    if (s.points_only) { d.showLine = false; d.pointRadius = 7; d.pointStyle = "line"; d.borderWidth = 3; d.pointBorderColor = color(s.color); }
    return d;
  }

  var builders = {
    trend: function (spec) {
      var kinds = spec.series.map(function (s) { return s.format || spec.format; });
      var scales = { x: { grid: { display: false } }, y: axis(spec, spec.format, { beginAtZero: spec.format !== "percent" }) };
      if (spec.series.some(function (s) { return s.axis === "y2"; })) {
        scales.y2 = axis(spec, "count", { position: "right", grid: { display: false }, beginAtZero: true });
      }
      return {
        type: "line",
        data: { labels: spec.labels, datasets: spec.series.map(dataset, { defaultType: "line" }) },
        options: { interaction: { mode: "index", intersect: false }, scales: scales, plugins: { tooltip: tooltip(spec, kinds) } }
      };
    },
    stacked: function (spec) {
      return {
        type: "bar",
        data: { labels: spec.labels, datasets: spec.series.map(dataset, { defaultType: "bar" }) },
        options: {
          interaction: { mode: "index", intersect: false },
          scales: { x: { stacked: true, grid: { display: false } }, y: axis(spec, "money", { stacked: true }) },
          plugins: { tooltip: tooltip(spec, []) }
        }
      };
    },
    grouped: function (spec) {
      return {
        type: "bar",
        data: { labels: spec.labels, datasets: spec.series.map(dataset, { defaultType: "bar" }) },
        options: {
          interaction: { mode: "index", intersect: false },
          scales: { x: { grid: { display: false } }, y: axis(spec, "money", { beginAtZero: true }) },
          plugins: { tooltip: tooltip(spec, []) }
        }
      };
    },
    hbar: function (spec) {
      var s = spec.series[0];
      var above = s.highlight_above ? Number(s.highlight_above) : null;
      var values = s.values.map(num);
      return {
        type: "bar",
        data: {
          labels: spec.labels,
          datasets: [{
            label: s.label, data: values, borderRadius: 4, maxBarThickness: 28,
            backgroundColor: values.map(function (v) { return above !== null && v > above ? color("orange") : color(s.color, 0.85); })
          }]
        },
        options: {
          indexAxis: "y",
          scales: { x: axis(spec, spec.format, { beginAtZero: true }), y: { grid: { display: false } } },
          plugins: { legend: { display: false }, tooltip: tooltip(spec, []) }
        }
      };
    },
    doughnut: function (spec) {
      var s = spec.series[0];
      return {
        type: "doughnut",
        data: { labels: spec.labels, datasets: [{ label: s.label, data: s.values.map(num), borderWidth: 2, borderColor: "#fff",
          backgroundColor: (s.colors || []).map(function (c) { return color(c); }) }] },
        options: {
          cutout: "62%",
          plugins: {
            legend: { position: "right" },
            tooltip: { callbacks: { label: function (ctx) {
              var total = ctx.dataset.data.reduce(function (a, b) { return a + (b || 0); }, 0);
              var share = total ? " (" + formatter(spec, "percent", false)(ctx.raw / total) + ")" : "";
              return " " + ctx.label + ": " + formatter(spec, spec.format, false)(ctx.raw) + share;
            } } }
          }
        }
      };
    },
    lorenz: function (spec) {
      var points = spec.points.map(function (p) { return { x: Number(p[0]), y: Number(p[1]) }; });
      return {
        type: "line",
        data: { datasets: [
          { label: spec.labels[0], data: points, borderColor: color("blue"), backgroundColor: color("blue", 0.12),
            fill: "+1", borderWidth: 2.5, pointRadius: points.length > 30 ? 0 : 3, tension: 0 },
          { label: spec.labels[1], data: [{ x: 0, y: 0 }, { x: 1, y: 1 }], borderColor: color("grey"),
            borderDash: [6, 4], borderWidth: 1.5, pointRadius: 0, fill: false }
        ] },
        options: {
          scales: {
            x: axis(spec, "percent", { type: "linear", min: 0, max: 1 }),
            y: axis(spec, "percent", { min: 0, max: 1 })
          },
          plugins: { tooltip: tooltip(spec, ["percent", "percent"]) }
        }
      };
    },
    fan: function (spec) {
      var s = spec.series; // P90, P10, P50, committed
      return {
        type: "line",
        data: { labels: spec.labels, datasets: [
          { label: s[0].label, data: s[0].values.map(num), borderColor: color("sky"), backgroundColor: color("blue", 0.16),
            fill: "+1", borderWidth: 1, pointRadius: 0, cubicInterpolationMode: "monotone" },
          { label: s[1].label, data: s[1].values.map(num), borderColor: color("sky"), borderWidth: 1, pointRadius: 0,
            fill: false, cubicInterpolationMode: "monotone" },
          { label: s[2].label, data: s[2].values.map(num), borderColor: color("blue"), borderWidth: 3, pointRadius: 3,
            pointBackgroundColor: "#fff", fill: false, cubicInterpolationMode: "monotone" },
          { label: s[3].label, data: s[3].values.map(num), borderColor: color("navy"), borderDash: [6, 4], borderWidth: 2,
            pointRadius: 0, fill: false, cubicInterpolationMode: "monotone" }
        ] },
        options: {
          interaction: { mode: "index", intersect: false },
          scales: { x: { grid: { display: false } }, y: axis(spec, "money", { beginAtZero: true }) },
          plugins: { tooltip: tooltip(spec, []) }
        }
      };
    },
    waterfall: function (spec, monthIndex) {
      var month = spec.months[monthIndex === undefined ? spec.months.length - 1 : monthIndex];
      var v = month.values.map(num);
      // Steps: start, new, reactivation, expansion, contraction, churn, end: floating bars between running totals.
      var running = v[0], bars = [[0, v[0]]], colors = [color("navy")];
      var stepColors = ["teal", "purple", "green", "orange", "red"];
      for (var i = 1; i <= 5; i++) {
        var delta = i <= 3 ? v[i] : -v[i];
        bars.push([running, running + delta]);
        running += delta;
        colors.push(color(stepColors[i - 1]));
      }
      bars.push([0, v[6]]);
      colors.push(color("blue"));
      // Movements are small beside MRR: start the axis just below the lowest running total so they show.
      var ends = bars.slice(1, 6).reduce(function (all, b) { return all.concat(b); }, [v[0], v[6]]);
      var low = Math.min.apply(null, ends), high = Math.max.apply(null, ends);
      var floor = Math.max(0, low - Math.max((high - low) * 1.5, high * 0.02));
      var fmt = formatter(spec, "money", false);
      return {
        type: "bar",
        data: { labels: spec.steps, datasets: [{ label: month.label, data: bars, backgroundColor: colors, borderRadius: 4,
          borderSkipped: false }] },
        options: {
          scales: { x: { grid: { display: false }, ticks: { autoSkip: false, maxRotation: 40 } },
            y: axis(spec, "money", { min: floor, grace: "5%" }) },
          plugins: {
            legend: { display: false },
            tooltip: { callbacks: { label: function (ctx) {
              var index = ctx.dataIndex, raw = v[index];
              var sign = index >= 4 && index <= 5 ? "−" : index >= 1 && index <= 3 ? "+" : "";
              return " " + sign + fmt(raw);
            } } }
          }
        }
      };
    }
  };

  function draw(canvas) {
    var source = document.getElementById(canvas.dataset.chart);
    if (!source) { return; }
    var spec = JSON.parse(source.textContent);
    var build = builders[spec.kind];
    if (!build) { return; }
    var chart = new Chart(canvas, build(spec));
    if (spec.kind === "waterfall") {
      var picker = document.querySelector('[data-waterfall-month="' + canvas.dataset.chart + '"]');
      if (picker) {
        picker.addEventListener("change", function () {
          var config = build(spec, Number(picker.value));
          chart.data = config.data;
          chart.options.plugins.tooltip = config.options.plugins.tooltip;
          chart.options.scales.y.min = config.options.scales.y.min;
          chart.update();
        });
      }
    }
  }

  document.querySelectorAll("canvas[data-chart]").forEach(draw);
})();
