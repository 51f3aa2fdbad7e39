/* chatbook console: the Reports page. Figures come from /api/console/reports (computed in
 * core/reports.py); this file only draws them: KPI tiles, uPlot charts (vendor/uplot, served
 * from here), a table per period, the side-by-side table for several shops, latest ratings.
 * Everything is written with textContent (uPlot sets its labels with textContent too). */
(function () {
  "use strict";

  var root = document.getElementById("reports");
  if (!root) return;
  var dom = window.chatbookDom;  // dom.js: the helpers every console script shares
  var STRINGS = dom.strings, t = dom.t, $ = dom.$, el = dom.el, clear = dom.clear, named = dom.named;
  var COLORS = ["#2f5bea", "#1f8a5b", "#d97706", "#c8322f", "#7c3aed", "#0891b2", "#be185d", "#4b5563"];
  var charts = [];


  var RATES = { conversion: 1, no_show_rate: 1, confirmation_rate: 1, faq_answer_rate: 1 };
  function fmt(key, v) {
    if (v === null || v === undefined) return "–";
    if (RATES[key]) return Math.round(v * 1000) / 10 + "%";
    if (key === "average_stars") return v.toFixed(2) + " " + t("reports.stars_unit");
    return String(v);
  }
  function channelName(c) {
    var key = "reports.channel_" + c;
    return dom.has(key) ? STRINGS[key] : c;
  }

  // ------------------------------------------------------------------ the form <-> the address
  var form = $("report-form");
  var params = new URLSearchParams(location.search);
  var grain = ["day", "week", "month"].indexOf(params.get("grain")) >= 0 ? params.get("grain") : "day";
  Array.prototype.forEach.call(form.querySelectorAll("input[name=grain]"), function (r) { r.checked = r.value === grain; });
  if (params.get("from")) $("report-from").value = params.get("from");
  if (params.get("to")) $("report-to").value = params.get("to");

  function query() {
    var q = new URLSearchParams();
    q.set("shop", $("report-shop").value || root.dataset.view);
    var checked = form.querySelector("input[name=grain]:checked");
    q.set("grain", checked ? checked.value : "day");
    if ($("report-from").value) q.set("from", $("report-from").value);
    if ($("report-to").value) q.set("to", $("report-to").value);
    return q.toString();
  }

  // ------------------------------------------------------------------ charts
  function chartCard(title) {
    var card = el("section", "card chart-card");
    card.appendChild(el("h3", "chart-title", title));
    var box = el("div", "chart-box");
    card.appendChild(box);
    $("report-charts").appendChild(card);
    return box;
  }

  function drawChart(title, labels, series, opts) {
    opts = opts || {};
    var box = chartCard(title);
    if (typeof window.uPlot !== "function") { box.appendChild(el("p", "empty", "uPlot missing")); return; }
    var xs = labels.map(function (_, i) { return i; });
    var pct = !!opts.percent;
    var yRange = pct ? [0, 1] : opts.key === "average_stars" ? [0, 5]
      : function (u, min, max) { return [0, Math.max(opts.max || 1, Math.ceil((max || 0) * 1.15))]; };
    var config = {
      width: Math.max(240, box.clientWidth || 320),
      height: 220,
      scales: { x: { time: false }, y: { range: yRange } },
      axes: [
        {
          incrs: [1, 2, 3, 5, 7, 10, 14, 20, 30, 50, 100],
          space: 56,
          values: function (u, splits) { return splits.map(function (v) { return Number.isInteger(v) && labels[v] ? labels[v].replace(/^\d{4}-/, "") : ""; }); },
          grid: { show: false },
        },
        {
          incrs: pct ? [0.1, 0.2, 0.25, 0.5] : [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000],
          size: 48,
          values: function (u, splits) { return splits.map(function (v) { return pct ? Math.round(v * 100) + "%" : String(v); }); },
          grid: { stroke: "#eef1f5" },
        },
      ],
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
      series: [{ label: t("reports.period"), value: function (u, v) { return v === null || v === undefined ? "–" : labels[v] || ""; } }],
    };
    series.forEach(function (s, i) {
      var color = COLORS[i % COLORS.length];
      config.series.push({
        label: s.label,
        stroke: color,
        width: 2,
        fill: series.length === 1 ? color + "22" : undefined,
        points: { show: labels.length <= 40, size: 5 },
        spanGaps: false,
        value: function (u, v) { return fmt(opts.key || "", v); },
      });
    });
    var data = [xs].concat(series.map(function (s) { return s.values; }));
    var chart = new window.uPlot(config, data, box);
    charts.push({ chart: chart, box: box });
  }

  function resize() {
    charts.forEach(function (c) { c.chart.setSize({ width: Math.max(240, c.box.clientWidth), height: 220 }); });
  }
  var resizeTimer = null;
  window.addEventListener("resize", function () {
    if (resizeTimer) clearTimeout(resizeTimer);
    resizeTimer = setTimeout(resize, 120);
  });

  function column(rows, key) { return rows.map(function (r) { return r[key]; }); }

  function singleShopCharts(report) {
    var rows = report.rows;
    var labels = column(rows, "period");
    function s(key) { return { label: t("reports." + key), values: column(rows, key) }; }
    drawChart(t("reports.chats"), labels, [s("chats"), s("chats_converted")]);
    drawChart(t("reports.conversion"), labels, [s("conversion")], { percent: true, key: "conversion" });
    var channels = report.channels.length ? report.channels : [];
    drawChart(t("reports.by_channel"), labels, channels.length ? channels.map(function (c) {
      return { label: channelName(c), values: rows.map(function (r) { return r.by_channel[c] || 0; }) };
    }) : [s("bookings")]);
    drawChart(t("reports.changes"), labels, [s("cancelled"), s("rescheduled"), s("no_show")]);
    drawChart(t("reports.confirmation_rate"), labels, [s("reminded"), s("confirmed")]);
    drawChart(t("reports.waitlist"), labels, [s("waitlist_joined"), s("waitlist_filled")]);
    drawChart(t("reports.ratings"), labels, [s("ratings"), s("low_ratings")]);
    drawChart(t("reports.average_stars"), labels, [s("average_stars")], { key: "average_stars", max: 5 });
    drawChart(t("reports.faq"), labels, [s("faq_answered"), s("faq_unanswered")]);
  }

  var COMPARED = [
    ["chats"], ["conversion", true], ["bookings"], ["cancelled"], ["rescheduled"], ["no_show_rate", true],
    ["confirmation_rate", true], ["waitlist_filled"], ["average_stars"], ["faq_answer_rate", true],
  ];
  function compareCharts(shops) {
    var labels = column(shops[0].report.rows, "period");
    COMPARED.forEach(function (m) {
      drawChart(t("reports." + m[0]), labels, shops.map(function (shop) {
        return { label: named(shop.name), values: column(shop.report.rows, m[0]) };
      }), { percent: !!m[1], key: m[0], max: m[0] === "average_stars" ? 5 : 1 });
    });
  }

  // ------------------------------------------------------------------ tiles and tables
  var TILES = ["chats", "conversion", "bookings", "cancelled", "rescheduled", "no_show_rate", "confirmation_rate",
    "waitlist_filled", "average_stars", "low_ratings", "faq_answer_rate"];
  function tiles(total) {
    var box = $("report-kpis");
    clear(box);
    TILES.forEach(function (key) {
      var tile = el("div", "kpi");
      tile.dataset.key = key;
      tile.appendChild(el("div", "kpi-value", fmt(key, total[key])));
      tile.appendChild(el("div", "kpi-label", t("reports." + key)));
      box.appendChild(tile);
    });
  }

  var TABLE = ["chats", "chats_converted", "conversion", "bookings", "cancelled", "rescheduled", "completed", "no_show",
    "no_show_rate", "reminded", "confirmed", "confirmation_rate", "waitlist_joined", "waitlist_filled", "ratings",
    "average_stars", "low_ratings", "faq_answered", "faq_unanswered", "faq_answer_rate"];
  function periodTable(report) {
    var table = $("report-table");
    clear(table);
    var head = el("tr");
    head.appendChild(el("th", "", t("reports.period")));
    TABLE.forEach(function (key) { head.appendChild(el("th", "num", t("reports." + key))); });
    report.channels.forEach(function (c) { head.appendChild(el("th", "num", channelName(c))); });
    var thead = el("thead");
    thead.appendChild(head);
    table.appendChild(thead);
    var body = el("tbody");
    report.rows.concat([report.total]).forEach(function (row, i) {
      var tr = el("tr", i === report.rows.length ? "total" : "");
      tr.appendChild(el("th", "", i === report.rows.length ? t("reports.total") : row.period));
      TABLE.forEach(function (key) { tr.appendChild(el("td", "num", fmt(key, row[key]))); });
      report.channels.forEach(function (c) { tr.appendChild(el("td", "num", row.by_channel[c] || 0)); });
      body.appendChild(tr);
    });
    table.appendChild(body);
  }

  function compareTable(shops) {
    var table = $("report-compare-table");
    clear(table);
    var head = el("tr");
    head.appendChild(el("th", "", t("reports.metric")));
    shops.forEach(function (shop) { head.appendChild(el("th", "num", named(shop.name))); });
    var thead = el("thead");
    thead.appendChild(head);
    table.appendChild(thead);
    var body = el("tbody");
    TABLE.forEach(function (key) {
      var tr = el("tr");
      tr.dataset.key = key;
      tr.appendChild(el("th", "", t("reports." + key)));
      shops.forEach(function (shop) { tr.appendChild(el("td", "num", fmt(key, shop.report.total[key]))); });
      body.appendChild(tr);
    });
    table.appendChild(body);
  }

  function ratingsList(shops) {
    var box = $("report-ratings-list");
    clear(box);
    shops.forEach(function (shop) {
      if (shops.length > 1) box.appendChild(el("h3", "subtitle", named(shop.name)));
      if (!shop.recent_ratings.length) { box.appendChild(el("p", "empty", t("reports.no_ratings"))); return; }
      var ul = el("ul", "ratings-list");
      shop.recent_ratings.forEach(function (r) {
        var li = el("li", r.stars <= 2 ? "rating is-low" : "rating");
        li.appendChild(el("span", "rating-stars", "★★★★★".slice(0, r.stars) + "☆☆☆☆☆".slice(0, 5 - r.stars)));
        li.appendChild(el("span", "rating-when", String(r.at).slice(0, 16).replace("T", " ")));
        li.appendChild(el("span", "rating-comment", r.comment || t("reports.no_comment")));
        ul.appendChild(li);
      });
      box.appendChild(ul);
    });
  }

  // ------------------------------------------------------------------ load and render
  function render(data) {
    charts.forEach(function (c) { c.chart.destroy(); });
    charts = [];
    clear($("report-charts"));
    var shops = data.shops || [];
    if (!$("report-from").value) $("report-from").value = data.first;
    if (!$("report-to").value) $("report-to").value = data.last;
    root.dataset.shops = String(shops.length);
    root.dataset.grain = data.grain;
    if (shops.length === 1) {
      tiles(shops[0].report.total);
      singleShopCharts(shops[0].report);
      periodTable(shops[0].report);
      $("report-periods").hidden = false;
      $("report-compare").hidden = true;
    } else {
      clear($("report-kpis"));
      compareCharts(shops);
      compareTable(shops);
      $("report-periods").hidden = true;
      $("report-compare").hidden = false;
    }
    ratingsList(shops);
    root.dataset.loaded = "1";
  }

  function load() {
    var q = query();
    $("report-csv").href = "/api/console/reports.csv?" + q;
    var status = $("report-status");
    status.hidden = false;
    status.textContent = t("reports.loading");
    var alert = $("report-alert");
    fetch("/api/console/reports?" + q, { credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (resp) {
        if (resp.status === 401) { location.href = "/console/login?next=" + encodeURIComponent(location.pathname + location.search); return null; }
        return resp.json().then(function (data) { return { ok: resp.ok, data: data }; });
      })
      .then(function (r) {
        if (!r) return;
        status.hidden = true;
        if (!r.ok) {
          alert.textContent = (r.data && r.data.message) || t("err.generic");
          alert.hidden = false;
          root.dataset.loaded = "error";
          return;
        }
        alert.hidden = true;
        render(r.data);
      }, function () {
        status.hidden = true;
        alert.textContent = t("err.network");
        alert.hidden = false;
      });
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var q = query();
    var lang = new URLSearchParams(location.search).get("lang");
    history.replaceState(null, "", location.pathname + "?" + q + (lang ? "&lang=" + encodeURIComponent(lang) : ""));
    load();
  });
  document.addEventListener("cb:low_rating", function () { load(); });
  load();
})();
