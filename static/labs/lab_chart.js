/* Lab trend charts: reads the json_script data (#lab-trend-data in template#lab-trend-source) and draws one Plotly chart per
 * analyte. Loaded with the page's CSP nonce; no inline script. Redraws after an htmx swap of the
 * workspace (a recorded result brings new chart data). The table under each chart holds the same
 * values for screen readers and for browsers without JavaScript. */
(function () {
  "use strict";

  var BAND = "rgba(30, 122, 70, 0.12)";
  var CRIT = "#b3261e";
  var LINE = "#1f5f8b";

  function fmt(v, decimals) {
    return v === null || v === undefined ? "" : Number(v).toFixed(decimals);
  }

  // Plotly reads a date string's wall-clock part and drops any UTC offset; the axis range is
  // computed the same way, so that it lines up with the points whatever the offset.
  function wallMs(s) {
    var m = /^(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:\.(\d+))?)?)?/.exec(s);
    if (!m) { return new Date(s).getTime(); }
    return Date.UTC(+m[1], +m[2] - 1, +m[3], +(m[4] || 0), +(m[5] || 0), +(m[6] || 0),
      m[7] ? Math.round(Number("0." + m[7]) * 1000) : 0);
  }

  function wallString(ms) {
    return new Date(ms).toISOString().slice(0, 23).replace("T", " ");
  }

  // A limit series as a step line across the whole visible x range: the first stored value
  // from the left edge, the last one to the right edge. With a single result a one-point
  // line would draw nothing at all.
  function acrossRange(x, y, range) {
    if (!range) { return { x: x, y: y }; }
    return { x: [range[0]].concat(x, [range[1]]), y: [y[0]].concat(y, [y[y.length - 1]]) };
  }

  function traces(a, range) {
    var out = [];
    var hasBand = a.ref_low.some(function (v) { return v !== null; }) ||
      a.ref_high.some(function (v) { return v !== null; });
    if (hasBand && a.x.length) {
      // The band between the stored low and high limits (an open side stays at the axis edge).
      var low = a.ref_low.map(function (v) { return v === null ? 0 : v; });
      var yMax = Math.max.apply(null, a.y.concat(a.ref_high.filter(function (v) { return v !== null; })));
      var high = a.ref_high.map(function (v) { return v === null ? yMax * 1.1 : v; });
      var lowLine = acrossRange(a.x, low, range), highLine = acrossRange(a.x, high, range);
      out.push({ x: lowLine.x, y: lowLine.y, mode: "lines", line: { width: 0, shape: "hv" }, hoverinfo: "skip", showlegend: false });
      out.push({ x: highLine.x, y: highLine.y, mode: "lines", line: { width: 0, shape: "hv" }, fill: "tonexty",
        fillcolor: BAND, name: "Reference range", hoverinfo: "skip" });
    }
    ["critical_low", "critical_high"].forEach(function (key) {
      if (a[key].some(function (v) { return v !== null; })) {
        var line = acrossRange(a.x, a[key], range);
        out.push({ x: line.x, y: line.y, mode: "lines", name: key === "critical_low" ? "Critical low" : "Critical high",
          line: { color: CRIT, dash: "dash", width: 1.5, shape: "hv" }, hoverinfo: "skip" });
      }
    });
    var text = a.y.map(function (v, i) {
      var label = fmt(v, a.decimals) + " " + a.unit + (a.flag[i] !== "N" ? " (" + a.flag[i] + ")" : "");
      if (a.tumour_marker && a.pct_from_baseline[i] !== null) {
        label += "<br>" + (a.pct_from_baseline[i] > 0 ? "+" : "") + a.pct_from_baseline[i] + " % from baseline";
      }
      return label;
    });
    out.push({ x: a.x, y: a.y, mode: "lines+markers", name: a.short_name, text: text,
      hovertemplate: "%{x|%d %b %Y %H:%M}<br>%{text}<extra></extra>",
      line: { color: LINE, width: 2 },
      marker: { size: 7, color: a.flag.map(function (f) { return f === "LL" || f === "HH" ? CRIT : LINE; }) } });
    var nx = [], ny = [];
    a.nadir.forEach(function (isNadir, i) { if (isNadir) { nx.push(a.x[i]); ny.push(a.y[i]); } });
    if (nx.length) {
      out.push({ x: nx, y: ny, mode: "markers+text", name: "Nadir", text: nx.map(function () { return "nadir"; }),
        textposition: "bottom center", textfont: { size: 10, color: "#5b6776" }, hoverinfo: "skip",
        marker: { size: 14, color: "rgba(0,0,0,0)", line: { color: "#9a6200", width: 2 } } });
    }
    return out;
  }

  var DAY = 86400000;
  var MIN_SPAN = 6 * DAY;  // a single result, or a few close together: about 3 days either side

  // The x range: the results' span padded by 4 % (at least a day) on each side, and never
  // narrower than MIN_SPAN, centred on the results. Cycle markers outside it would stretch
  // the axis: keep to the data.
  function xRange(a) {
    if (!a.x.length) { return undefined; }
    var first = wallMs(a.x[0]), last = wallMs(a.x[a.x.length - 1]);
    var pad = Math.max((last - first) * 0.04, DAY);
    pad = Math.max(pad, (MIN_SPAN - (last - first)) / 2);
    return [wallString(first - pad), wallString(last + pad)];
  }

  function layout(a, cycles, range, width) {
    var shapes = [], annotations = [];
    cycles.forEach(function (c) {
      shapes.push({ type: "line", xref: "x", yref: "paper", x0: c.date, x1: c.date, y0: 0, y1: 1,
        line: { color: c.actual ? "#5b6776" : "#b8c2cc", width: 1, dash: "dot" } });
      annotations.push({ x: c.date, y: 1, xref: "x", yref: "paper", yanchor: "bottom", showarrow: false,
        text: "C" + c.number, font: { size: 10, color: "#5b6776" } });
    });
    var xaxis = { type: "date", range: range, fixedrange: true, tickformat: "%d %b" };
    if (range) {
      // On a short range Plotly's own ticks fall every 12 or 6 hours, each labelled with the
      // same day: tick whole days instead (every day, or every 2nd or 3rd on a narrow chart).
      var days = (wallMs(range[1]) - wallMs(range[0])) / DAY;
      if (days <= 10) {
        var step = Math.max(1, Math.ceil(days * 56 / Math.max(width || 0, 200)));
        xaxis.tick0 = "2000-01-01";
        xaxis.dtick = step * DAY;
      }
    }
    return {
      margin: { l: 48, r: 12, t: 22, b: 36 }, height: 280, autosize: true,
      showlegend: false, hovermode: "closest", dragmode: false,
      xaxis: xaxis,
      yaxis: { title: { text: a.unit, font: { size: 11 } }, fixedrange: true, rangemode: "tozero" },
      shapes: shapes, annotations: annotations,
      paper_bgcolor: "#fff", plot_bgcolor: "#fff", font: { family: "system-ui, sans-serif", size: 12 }
    };
  }

  function draw() {
    // The json_script sits in a <template> so that htmx swaps keep it (see lab_trends.html).
    var holder = document.getElementById("lab-trend-source");
    var source = holder && holder.content.querySelector("#lab-trend-data");
    if (!source || typeof Plotly === "undefined") { return; }
    var data = JSON.parse(source.textContent);
    data.analytes.forEach(function (a) {
      var el = document.getElementById(a.id);
      if (!el) { return; }
      if (!a.x.length) { el.classList.add("empty"); el.hidden = true; return; }
      var range = xRange(a);
      Plotly.react(el, traces(a, range), layout(a, data.cycles, range, el.clientWidth - 60),
        { responsive: true, displaylogo: false, displayModeBar: false, staticPlot: false });
    });
  }

  document.addEventListener("DOMContentLoaded", draw);
  // After htmx swaps the workspace in (a result recorded), draw the new data.
  document.addEventListener("htmx:afterSettle", draw);
  // htmx copies the old element's attributes onto its replacement while settling; Plotly's
  // inline style on a chart would then be set as a style attribute, which the CSP refuses.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail && event.detail.target;
    if (!target || !target.querySelectorAll) { return; }
    target.querySelectorAll(".lab-chart").forEach(function (el) {
      if (typeof Plotly !== "undefined") { Plotly.purge(el); }
      el.removeAttribute("style");
    });
  });
})();
