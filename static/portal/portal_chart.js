// Patient portal: one calm trend line per test, with the usual range shaded.
// Data comes from json_script elements; CSP forbids inline scripts.
(function () {
  "use strict";

  function draw(el) {
    var source = document.getElementById(el.getAttribute("data-chart"));
    if (!source || !window.Plotly) { return; }
    var data = JSON.parse(source.textContent);
    var xs = data.points.map(function (p) { return p.x; });
    var ys = data.points.map(function (p) { return p.y; });
    var last = data.points[data.points.length - 1] || {};
    var shapes = [];
    if (last.low !== null || last.high !== null) {
      var lo = last.low !== null ? last.low : Math.min.apply(null, ys.concat([0]));
      var hi = last.high !== null ? last.high : Math.max.apply(null, ys) * 1.1;
      shapes.push({
        type: "rect", xref: "paper", x0: 0, x1: 1, yref: "y", y0: lo, y1: hi,
        fillcolor: "rgba(30,122,70,0.10)", line: { width: 0 }, layer: "below"
      });
    }
    var trace = {
      x: xs, y: ys, type: "scatter", mode: "lines+markers", name: data.name,
      line: { color: "#1f5f8b", width: 2 }, marker: { size: 7 },
      hovertemplate: "%{x|%d %b %Y}: %{y} " + data.unit + "<extra></extra>"
    };
    var layout = {
      margin: { l: 48, r: 12, t: 8, b: 36 }, showlegend: false, shapes: shapes,
      yaxis: { title: { text: data.unit }, zeroline: false, fixedrange: true },
      xaxis: { type: "date", fixedrange: true },
      annotations: shapes.length ? [{
        xref: "paper", x: 0, xanchor: "left", yref: "y", y: shapes[0].y1, yanchor: "bottom",
        text: "usual range", showarrow: false, font: { size: 11, color: "#1e7a46" }
      }] : [],
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      font: { family: "system-ui, sans-serif", size: 12, color: "#1d2733" }
    };
    window.Plotly.newPlot(el, [trace], layout, { displayModeBar: false, responsive: true });
  }

  function init() {
    document.querySelectorAll(".portal-chart[data-chart]").forEach(draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
