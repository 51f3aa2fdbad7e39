// The FAQ page's "learn from chats" part (bot/console/faq_api.py): questions customers asked,
// each with an entry to add it to and one button. Admins add; other staff see the list.
(function () {
  "use strict";
  var csrf = "";
  var el = window.chatbookDom.el;  // dom.js: the helpers every console script shares

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, key) { return values[key] !== undefined ? values[key] : ""; });
  }

  function request(method, url, body) {
    var headers = { Accept: "application/json" };
    if (method !== "GET") { headers["Content-Type"] = "application/json"; headers["X-CSRF-Token"] = csrf; }
    return fetch(url, { method: method, credentials: "same-origin", cache: "no-store", headers: headers,
                        body: body === undefined ? undefined : JSON.stringify(body) })
      .then(function (resp) { return resp.json().then(function (data) { return { status: resp.status, data: data }; }); });
  }

  function entrySelect(entries, chosen, label) {
    var select = el("select", "faq-learn-entry");
    select.setAttribute("aria-label", label);
    entries.forEach(function (entry) {
      var option = el("option", "", entry.label);
      option.value = entry.id;
      if (entry.id === chosen) option.selected = true;
      select.appendChild(option);
    });
    return select;
  }

  function table(box, data, title, rows, source) {
    var s = data.strings;
    box.appendChild(el("h4", "faq-learn-title", title));
    var t = el("table", "table faq-learn-table");
    t.dataset.source = source;
    var head = el("tr");
    [s.question, s.asked, s.entry, ""].forEach(function (h, i) { head.appendChild(el("th", i === 1 ? "num" : "", h)); });
    var thead = el("thead"); thead.appendChild(head); t.appendChild(thead);
    var body = el("tbody");
    rows.forEach(function (row) {
      var tr = el("tr", "faq-learn-row");
      tr.appendChild(el("td", "question", row.text));
      tr.appendChild(el("td", "num", String(row.count)));
      var cell = el("td");
      var chosen = row.entry || (row.candidates && row.candidates[0]);
      var select = entrySelect(data.entries, chosen, s.entry);
      select.disabled = !data.can_add;
      cell.appendChild(select);
      tr.appendChild(cell);
      var action = el("td");
      var button = el("button", "btn btn-primary faq-learn-add", s.add);
      button.type = "button";
      button.disabled = !data.can_add;
      var out = el("div", "faq-learn-result");
      out.setAttribute("aria-live", "polite");
      button.addEventListener("click", function () {
        button.disabled = true;
        request("POST", "/api/console/faq/" + encodeURIComponent(data.shop) + "/phrasing",
                { entry: select.value, text: row.text, source: source })
          .then(function (r) {
            out.textContent = "";
            if (r.status === 200 && r.data.ok) {
              out.className = "faq-learn-result alert alert-ok";
              out.textContent = fill(r.data.added ? s.added : s.already, { entry: r.data.entry });
              select.disabled = true;
              return;
            }
            button.disabled = false;
            out.className = "faq-learn-result alert alert-error";
            var errors = (r.data && r.data.errors) || [(r.data && r.data.message) || String(r.status)];
            out.textContent = s.failed + " " + errors.join("; ");
          })
          .catch(function () { button.disabled = false; out.className = "faq-learn-result alert alert-error"; out.textContent = s.failed; });
      });
      action.appendChild(button);
      action.appendChild(out);
      tr.appendChild(action);
      body.appendChild(tr);
    });
    t.appendChild(body);
    box.appendChild(t);
  }

  function load(box, lang) {
    var shop = box.dataset.shop;
    request("GET", "/api/console/faq/" + encodeURIComponent(shop) + "/learn?lang=" + encodeURIComponent(lang))
      .then(function (r) {
        if (r.status !== 200) { box.hidden = true; return; }
        var data = r.data, s = data.strings;
        box.textContent = "";
        box.appendChild(el("h3", "subtitle", s.title));
        box.appendChild(el("p", "muted", data.can_add ? s.hint : s.admin_only));
        if (!data.tapped.length && !data.unanswered.length) { box.appendChild(el("p", "empty", s.none)); return; }
        if (data.tapped.length) table(box, data, s.tapped, data.tapped, "tapped");
        if (data.unanswered.length) table(box, data, s.unanswered, data.unanswered, "unanswered");
        box.dataset.ready = "1";
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var boxes = document.querySelectorAll(".faq-learn[data-shop]");
    if (!boxes.length) return;
    var lang = document.body.dataset.lang || "zh";
    request("GET", "/api/console/me").then(function (r) {
      if (r.status !== 200) return;
      csrf = r.data.csrf;
      Array.prototype.forEach.call(boxes, function (box) { load(box, lang); });
    });
  });
})();
