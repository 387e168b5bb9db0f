/* assay dashboard charts: draws every <figure class="chart"> of a page with uPlot.
 *
 * Progressive: the page is complete without this script (each chart's data is also a
 * server-rendered table and a CSV link next to it); the script only adds the picture.
 * No inline script, no style attribute: sizes are set through the CSSOM, which the
 * Content-Security-Policy (style-src 'self') allows.
 *
 * The contract with the pages is the docstring of src/assay/dashboard/_render.py: a chart is
 * <figure class="chart" data-chart="KIND">, its JSON fetched from data-src or read from its
 * first child <script type="application/json"> (data, never run). The picture is drawn in the
 * figure's <div class="chart-canvas">, which gets role="img" and an aria-label (the caption,
 * or the figure's data-label). Kinds and their JSON:
 *
 *   line, band  {x, series: [{name, values}], band: {lower, upper} | null, flags: [x...],
 *                events: [{x, label}], format, y_label}
 *               line: one or more lines (the `by` split), told apart by dash and a marker
 *               shape; band: the first series solid, the others dashed (e.g. "expected"),
 *               the band filled between lower and upper, flagged x marked with a diamond.
 *   spark       {x, series: [{name, values}], format}   a small line without axes.
 *   heat        {x: [column labels], y: [row labels], values: [[v|null...]...], format}
 *               a matrix of cells, each with its value printed (retention cohorts).
 *   bar, hist   {x, series: [{name, values}], format, y_label}  bars per x (categories or
 *               bins); a second series is drawn beside the first (reference vs target).
 *   curve       {x, series: [{name, values}], diagonal: bool, x_label, y_label}  ROC, PR
 *               and reliability curves on [0, 1] x [0, 1]; diagonal adds the chance line.
 *
 * x values are ISO days (YYYY-MM-DD, drawn on a UTC time axis), numbers, or labels
 * (categories, drawn in order). format: number, percent (fractions: 0.25 is 25%), ms, usd.
 */
(function () {
  "use strict";
  // Loaded once per page; a second copy of the script does nothing.
  if (window.assayCharts) return;

  // Dash patterns and point shapes tell series apart without colour (WCAG 1.4.1).
  var DASHES = [[], [8, 4], [2, 3], [10, 3, 2, 3], [4, 4], [1, 6]];
  var COLOURS = ["#1f5fa8", "#b34700", "#2a7a2a", "#7a2a7a", "#5a5a5a", "#a31f4a"];
  var SHAPES = ["circle", "square", "triangle", "diamond", "cross", "circle"];

  var DAY = /^\d{4}-\d{2}-\d{2}$/;

  function parseDay(text) {
    var p = String(text).split("-");
    return Date.UTC(+p[0], +p[1] - 1, +p[2]) / 1000;
  }

  // "day", "number" or "category", from the x values themselves.
  function xType(xs) {
    if (!xs.length) return "number";
    if (xs.every(function (v) { return DAY.test(String(v)); })) return "day";
    if (xs.every(function (v) { return typeof v === "number"; })) return "number";
    return "category";
  }

  function xValues(data) {
    var xs = data.x || [];
    data.xtype = data.xtype || xType(xs);
    if (data.xtype === "day") return xs.map(parseDay);
    if (data.xtype === "category") return xs.map(function (_, i) { return i; });
    return xs.map(Number);
  }

  // An x of the data (a day, a number or a label) on the plot's x scale.
  function xPos(data, x) {
    if (data.xtype === "day") return parseDay(x);
    if (data.xtype === "category") return (data.x || []).indexOf(x);
    return Number(x);
  }

  function num(v) {
    return v === null || v === undefined || v === "" ? null : Number(v);
  }

  function formatter(format) {
    return function (v) {
      if (v === null || v === undefined) return "";
      if (format === "percent") return +(v * 100).toFixed(2) + "%";
      if (format === "ms") return v + " ms";
      if (format === "usd") return "$" + v;
      return String(+v.toPrecision(6));
    };
  }

  function readData(fig) {
    var src = fig.getAttribute("data-src");
    if (!src) {
      var own = fig.firstElementChild;
      if (own && own.tagName === "SCRIPT" && own.type === "application/json") {
        return Promise.resolve(JSON.parse(own.textContent));
      }
      return Promise.reject(new Error("chart without data"));
    }
    return fetch(src, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (!r.ok) throw new Error("chart data: HTTP " + r.status);
        return r.json();
      });
  }

  // The picture goes in the figure's .chart-canvas (made when the page has none). That box,
  // not the figure, is the image for assistive technology: the figure also holds the data
  // table and the CSV link, which role="img" on the figure would hide from them.
  function plotBox(fig, kind) {
    var box = fig.querySelector(".chart-canvas");
    if (!box) {
      box = document.createElement("div");
      box.className = "chart-canvas";
      var cap = fig.querySelector("figcaption");
      fig.insertBefore(box, cap ? cap.nextSibling : fig.firstChild);
    }
    box.classList.add("chart-plot-" + kind);
    var cap2 = fig.querySelector("figcaption");
    var label = fig.getAttribute("data-label") || (cap2 ? cap2.textContent.trim() : kind + " chart");
    box.removeAttribute("aria-hidden");
    box.setAttribute("role", "img");
    box.setAttribute("aria-label", label + " (chart; its data is in the table below)");
    return box;
  }

  function width(fig, kind) {
    if (kind === "spark") return 120;
    var w = fig.clientWidth || (fig.parentNode && fig.parentNode.clientWidth) || 640;
    return Math.max(240, Math.min(w, 960));
  }

  function drawShape(ctx, shape, x, y, r) {
    ctx.beginPath();
    if (shape === "square") {
      ctx.rect(x - r, y - r, 2 * r, 2 * r);
    } else if (shape === "triangle") {
      ctx.moveTo(x, y - r);
      ctx.lineTo(x + r, y + r);
      ctx.lineTo(x - r, y + r);
      ctx.closePath();
    } else if (shape === "diamond") {
      ctx.moveTo(x, y - r * 1.4);
      ctx.lineTo(x + r * 1.4, y);
      ctx.lineTo(x, y + r * 1.4);
      ctx.lineTo(x - r * 1.4, y);
      ctx.closePath();
    } else if (shape === "cross") {
      ctx.moveTo(x - r, y - r);
      ctx.lineTo(x + r, y + r);
      ctx.moveTo(x + r, y - r);
      ctx.lineTo(x - r, y + r);
    } else {
      ctx.arc(x, y, r, 0, 2 * Math.PI);
    }
  }

  // A uPlot hook that draws the marks uPlot does not: anomalous points (diamonds outlined
  // in black), release events (dashed verticals with a label), and a shape per series on
  // each line so that lines are told apart in print and without colour.
  function overlay(marks) {
    return function (u) {
      var ctx = u.ctx;
      var dpr = window.devicePixelRatio || 1;
      ctx.save();
      var i, j, cx, cy;
      (marks.releases || []).forEach(function (r) {
        cx = u.valToPos(r.x, "x", true);
        if (!(cx >= u.bbox.left && cx <= u.bbox.left + u.bbox.width)) return;
        ctx.strokeStyle = "#444";
        ctx.lineWidth = dpr;
        ctx.setLineDash([4 * dpr, 4 * dpr]);
        ctx.beginPath();
        ctx.moveTo(cx, u.bbox.top);
        ctx.lineTo(cx, u.bbox.top + u.bbox.height);
        ctx.stroke();
        ctx.setLineDash([]);
        ctx.fillStyle = "#222";
        ctx.font = 10 * dpr + "px sans-serif";
        ctx.fillText(String(r.label).slice(0, 24), cx + 3 * dpr, u.bbox.top + 10 * dpr);
      });
      (marks.shapes || []).forEach(function (s) {
        var xs = u.data[0], ys = u.data[s.index];
        var step = Math.max(1, Math.ceil(xs.length / 12));
        ctx.strokeStyle = s.colour;
        ctx.fillStyle = s.colour;
        ctx.lineWidth = dpr;
        for (j = s.offset % step; j < xs.length; j += step) {
          if (ys[j] === null || ys[j] === undefined) continue;
          cx = u.valToPos(xs[j], "x", true);
          cy = u.valToPos(ys[j], u.series[s.index].scale || "y", true);
          drawShape(ctx, s.shape, cx, cy, 3 * dpr);
          if (s.shape === "cross") ctx.stroke(); else ctx.fill();
        }
      });
      if (marks.flags) {
        var obs = u.data[1];
        for (i = 0; i < marks.flags.length; i++) {
          j = marks.flags[i];
          if (j < 0 || obs[j] === null || obs[j] === undefined) continue;
          cx = u.valToPos(u.data[0][j], "x", true);
          cy = u.valToPos(obs[j], "y", true);
          drawShape(ctx, "diamond", cx, cy, 4.5 * dpr);
          ctx.fillStyle = "#c00000";
          ctx.fill();
          ctx.lineWidth = 1.5 * dpr;
          ctx.strokeStyle = "#000";
          ctx.stroke();
        }
      }
      ctx.restore();
    };
  }

  function lineSeries(series, shapes, format) {
    var value = formatter(format);
    return series.map(function (s, k) {
      var c = COLOURS[k % COLOURS.length];
      if (shapes && series.length > 1) {
        shapes.push({ index: k + 1, colour: c, shape: SHAPES[k % SHAPES.length], offset: k });
      }
      return {
        label: s.name,
        stroke: c,
        width: 2,
        dash: DASHES[k % DASHES.length],
        points: { show: false },
        spanGaps: false,
        value: function (u, v) { return value(v); },
      };
    });
  }

  function axes(data) {
    var xa = { stroke: "#333", grid: { stroke: "#e4e4e4" } };
    if (data.xtype === "category") {
      xa.values = function (u, splits) {
        return splits.map(function (v) {
          return Number.isInteger(v) && data.x[v] !== undefined ? String(data.x[v]) : "";
        });
      };
    }
    if (data.x_label) xa.label = data.x_label;
    var y = formatter(data.format);
    var ya = {
      stroke: "#333",
      grid: { stroke: "#e4e4e4" },
      // Wide enough for the longest tick label ("10000 ms"), plus the axis label.
      size: function (u, values) {
        var longest = (values || []).reduce(function (m, v) { return Math.max(m, String(v).length); }, 1);
        return 14 + 7 * longest + (data.y_label ? 14 : 0);
      },
      values: function (u, splits) { return splits.map(y); },
    };
    if (data.y_label) ya.label = data.y_label;
    return [xa, ya];
  }

  function eventMarks(data) {
    return (data.events || []).map(function (r) {
      return { x: xPos(data, r.x), label: r.label };
    });
  }

  function flagIndexes(data) {
    return (data.flags || []).map(function (x) { return (data.x || []).indexOf(x); });
  }

  function columns(xs, data) {
    var cols = [xs];
    (data.series || []).forEach(function (s) { cols.push((s.values || []).map(num)); });
    return cols;
  }

  function buildLine(data) {
    var xs = xValues(data);
    var shapes = [];
    var cols = columns(xs, data);
    var series = [{ label: data.xtype === "day" ? "day" : "x" }].concat(
      lineSeries(data.series || [], shapes, data.format));
    var bands;
    if (data.band) {
      // The band's edges are two more series (thin, dotted), the area between them filled.
      var k = cols.length;
      cols.push((data.band.upper || []).map(num), (data.band.lower || []).map(num));
      series.push(
        { label: "band (upper)", stroke: "#8aa8c8", width: 1, dash: [2, 3],
          points: { show: false } },
        { label: "band (lower)", stroke: "#8aa8c8", width: 1, dash: [2, 3],
          points: { show: false } }
      );
      bands = [{ series: [k, k + 1], fill: "rgba(31, 95, 168, 0.12)" }];
    }
    var opts = {
      scales: { x: { time: data.xtype === "day" } },
      series: series,
      axes: axes(data),
      legend: { show: series.length > 2 },
      hooks: { draw: [overlay({ releases: eventMarks(data), shapes: shapes,
        flags: flagIndexes(data) })] },
    };
    if (bands) opts.bands = bands;
    return { opts: opts, cols: cols };
  }

  function buildSpark(data) {
    var xs = xValues(data);
    var values = ((data.series || [])[0] || { values: [] }).values.map(num);
    var opts = {
      height: 30,
      pxAlign: false,
      cursor: { show: false },
      select: { show: false },
      legend: { show: false },
      scales: { x: { time: false } },
      axes: [{ show: false }, { show: false }],
      series: [{}, { stroke: COLOURS[0], width: 1.5, points: { show: false } }],
    };
    return { opts: opts, cols: [xs, values] };
  }

  function buildBar(data) {
    var xs = xValues(data);
    var cols = columns(xs, data);
    var bars = window.uPlot.paths && window.uPlot.paths.bars;
    var n = (data.series || []).length;
    var series = [{}];
    (data.series || []).forEach(function (s, k) {
      series.push({
        label: s.name,
        stroke: COLOURS[k % COLOURS.length],
        // Reference filled, target outlined and dashed: told apart without colour.
        fill: k === 0 ? "rgba(31, 95, 168, 0.35)" : "rgba(179, 71, 0, 0.08)",
        width: k === 0 ? 1 : 2,
        dash: k === 0 ? [] : [6, 3],
        points: { show: false },
        paths: bars ? bars({ size: [0.8 / Math.max(1, n), 64], align: n > 1 ? (k ? 1 : -1) : 0 })
          : undefined,
      });
    });
    var opts = {
      scales: { x: { time: data.xtype === "day", distr: data.xtype === "category" ? 2 : 1 } },
      series: series,
      axes: axes(data),
      legend: { show: n > 1 },
    };
    return { opts: opts, cols: cols };
  }

  function buildCurve(data) {
    data.xtype = "number";
    var xs = (data.x || []).map(num);
    var shapes = [];
    var cols = columns(xs, data);
    var series = [{}].concat(lineSeries(data.series || [], shapes, "number"));
    if (data.diagonal) {
      cols.push(xs.slice());
      series.push({ label: "chance / perfect calibration", stroke: "#777", width: 1,
        dash: [4, 4], points: { show: false } });
    }
    var opts = {
      scales: { x: { time: false, range: [0, 1] }, y: { range: [0, 1] } },
      series: series,
      axes: axes(data),
      hooks: { draw: [overlay({ shapes: shapes })] },
    };
    return { opts: opts, cols: cols };
  }

  // uPlot draws lines, not matrices: the heat map is a plain canvas of cells, each with its
  // value printed (readable without colour), darker for larger values.
  function drawHeat(fig, data) {
    var rows = data.y || [], cols = data.x || [], values = data.values || [];
    var cellW = 44, cellH = 22, left = 96, top = 22;
    var canvas = document.createElement("canvas");
    var dpr = window.devicePixelRatio || 1;
    var w = left + cellW * cols.length, h = top + cellH * rows.length;
    canvas.width = w * dpr;
    canvas.height = h * dpr;
    canvas.style.width = w + "px";
    canvas.style.height = h + "px";
    canvas.setAttribute("aria-hidden", "true");
    var ctx = canvas.getContext("2d");
    ctx.scale(dpr, dpr);
    var flat = [];
    values.forEach(function (r) { r.forEach(function (v) { if (v !== null) flat.push(+v); }); });
    var lo = data.min !== undefined ? data.min : Math.min.apply(null, flat.concat([0]));
    var hi = data.max !== undefined ? data.max : Math.max.apply(null, flat.concat([1]));
    ctx.font = "11px sans-serif";
    ctx.textBaseline = "middle";
    ctx.fillStyle = "#222";
    cols.forEach(function (c, j) { ctx.fillText(String(c), left + j * cellW + 4, top / 2); });
    rows.forEach(function (r, i) {
      ctx.fillStyle = "#222";
      ctx.fillText(String(r), 2, top + i * cellH + cellH / 2);
      (values[i] || []).forEach(function (v, j) {
        if (v === null || v === undefined) return;
        var t = hi > lo ? (v - lo) / (hi - lo) : 0;
        var light = Math.round(96 - 66 * t);
        ctx.fillStyle = "hsl(212, 60%, " + light + "%)";
        ctx.fillRect(left + j * cellW, top + i * cellH, cellW - 1, cellH - 1);
        ctx.fillStyle = light < 60 ? "#fff" : "#000";
        var label = data.format === "percent" ? Math.round(v * 100) + "%" : String(v);
        ctx.fillText(label, left + j * cellW + 4, top + i * cellH + cellH / 2);
      });
    });
    var box = plotBox(fig, "heat");
    box.appendChild(canvas);
    fig.classList.add("chart-drawn");
  }

  var BUILDERS = { line: buildLine, band: buildLine, spark: buildSpark, bar: buildBar,
    hist: buildBar, curve: buildCurve, roc: buildCurve, pr: buildCurve, reliability: buildCurve };

  function draw(fig) {
    var kind = fig.getAttribute("data-chart");
    // Each figure is drawn once (drawAll may run again after content is added).
    if (fig.classList.contains("chart-drawn") || fig.getAttribute("data-chart-busy")) {
      return Promise.resolve();
    }
    fig.setAttribute("data-chart-busy", "1");
    return readData(fig).then(function (data) {
      if (kind === "heat") return drawHeat(fig, data);
      var build = BUILDERS[kind];
      if (!build || !window.uPlot) return;
      var made = build(data);
      made.opts.width = width(fig, kind);
      made.opts.height = made.opts.height || (kind === "spark" ? 30 : 240);
      var plot = new window.uPlot(made.opts, made.cols, plotBox(fig, kind));
      fig.classList.add("chart-drawn");
      return plot;
    }).catch(function (err) {
      // The table beside the chart still has the data; say why the picture is missing.
      fig.classList.add("chart-failed");
      fig.setAttribute("data-chart-error", String(err && err.message || err).slice(0, 200));
    });
  }

  function drawAll() {
    var figs = document.querySelectorAll("figure.chart[data-chart]");
    for (var i = 0; i < figs.length; i++) draw(figs[i]);
  }

  window.assayCharts = { draw: draw, drawAll: drawAll, parseDay: parseDay };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
