/* chatbook staff console: customers' records (pets, vaccinations, visit notes, eye exam results,
 * the optician's list of check-ups due).
 * Plain JS, no build step, beside console.js (which owns the chrome and live events). Data comes
 * from /api/console/records/...; customer text is only ever written with textContent. */
(function () {
  "use strict";

  var body = document.body;
  var PAGE = body.dataset.page;
  var SHOP = body.dataset.shop || "";
  var dom = window.chatbookDom;  // dom.js: the helpers every console script shares
  var STRINGS = dom.strings, t = dom.t, $ = dom.$, el = dom.el, clear = dom.clear, named = dom.named;
  var API = "/api/console/records";
  var csrf = "";

  function withLang(url) {
    var explicit = new URLSearchParams(location.search).get("lang");
    return explicit ? url + (url.indexOf("?") >= 0 ? "&" : "?") + "lang=" + encodeURIComponent(explicit) : url;
  }
  function api(method, path, payload) {
    var headers = { Accept: "application/json" };
    if (method !== "GET") { headers["X-CSRF-Token"] = csrf; headers["Content-Type"] = "application/json"; }
    return fetch(path, {
      method: method, headers: headers, credentials: "same-origin", cache: "no-store",
      body: payload === undefined ? undefined : JSON.stringify(payload)
    }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (data) {
        if (resp.status === 401) location.href = "/console/login?next=" + encodeURIComponent(location.pathname + location.search);
        return { status: resp.status, ok: resp.ok, data: data || {} };
      });
    }, function () { return { status: 0, ok: false, data: {} }; });
  }
  function errorText(r) {
    if (r.status === 0) return t("err.network");
    if (r.status === 403) return r.data.error === "csrf" ? t("err.csrf") : t("err.forbidden");
    if (r.status === 400 && r.data.field) {
      var message = String(r.data.message || "").replace(r.data.field + ": ", "");
      return t("records.field_error", { field: fieldLabel(r.data.field), message: message });
    }
    return r.data.message || r.data.error || t("err.generic");
  }
  function fieldLabel(field) {
    var eye = /^(od|os)_(.+)$/.exec(field);
    if (eye) return t("records." + eye[1]) + " · " + t("records." + eye[2]);
    var key = "records." + field;
    return dom.has(key) ? t(key) : field;
  }
  function show(node, text, ok) {
    node.className = "form-result alert " + (ok ? "alert-ok" : "alert-error");
    node.textContent = text;
    node.hidden = !text;
  }
  function markField(form, field) {
    Array.prototype.forEach.call(form.querySelectorAll("[aria-invalid]"), function (n) { n.removeAttribute("aria-invalid"); });
    var input = field ? form.querySelector("[name='" + field + "']") : null;
    if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
  }
  function vaccineName(kind) {
    var key = "records.vaccine_" + kind;
    return dom.has(key) ? t(key) : kind;
  }
  function customerLink(id) {
    return withLang("/console/customer?shop=" + encodeURIComponent(SHOP) + "&id=" + encodeURIComponent(id));
  }

  // ================================================================== customers list
  function initCustomers() {
    function search() {
      var q = $("c-q").value.trim();
      api("GET", API + "/customers?shop=" + encodeURIComponent(SHOP) + "&q=" + encodeURIComponent(q)).then(function (r) {
        var list = $("c-list");
        clear(list);
        var rows = r.ok ? r.data.customers || [] : [];
        rows.forEach(function (c) {
          var li = el("li");
          var a = el("a", "grow", c.name || "#" + c.id);
          a.href = customerLink(c.id);
          li.appendChild(a);
          var pets = r.data.shop_kind === "pet" ? t("records.pets_count", { n: c.pets }) : "";  // an optician keeps no pets
          li.appendChild(el("span", "muted", [c.phone, pets].filter(Boolean).join(" · ")));
          list.appendChild(li);
        });
        $("c-empty").hidden = rows.length > 0;
      });
    }
    $("c-search").addEventListener("submit", function (ev) { ev.preventDefault(); search(); });
    search();
    loadRecalls();
  }

  // ================================================================== check-ups due (opticians)
  function loadRecalls() {
    api("GET", API + "/recalls?shop=" + encodeURIComponent(SHOP)).then(function (r) {
      if (!r.ok || r.data.shop_kind !== "optician") return;  // a groomer keeps no eye records
      var list = $("recalls-list");
      clear(list);
      var rows = r.data.recalls || [];
      $("recalls-card").hidden = false;
      $("recalls-count").textContent = String(rows.length);
      $("recalls-empty").hidden = rows.length > 0;
      rows.forEach(function (rc) {
        var li = el("li");
        li.dataset.record = String(rc.record_id);
        var who = el("span", "grow");
        var a = el("a", "", rc.customer || "#" + rc.customer_id);
        a.href = customerLink(rc.customer_id);
        who.appendChild(a);
        if (rc.patient_name) who.appendChild(document.createTextNode(" · " + t("records.recall_for", { name: rc.patient_name })));
        who.appendChild(el("div", "muted", t("records.recall_last", { date: rc.examined_on }) + " · " + t("records.recall_rule_" + rc.rule)));
        li.appendChild(who);
        li.appendChild(el("span", "pill " + (rc.overdue ? "pill-bad" : "pill-pending"),
          t(rc.overdue ? "records.recall_overdue" : "records.recall_due", { date: rc.recall_on })));
        if (rc.reminded_at) {
          li.appendChild(el("span", "chip reminded", t("records.recall_reminded", { date: String(rc.reminded_at).slice(0, 10) })));
        } else {
          var send = el("button", "btn btn-small", t("records.recall_send"));
          send.type = "button";
          send.addEventListener("click", function () {
            send.disabled = true;
            api("POST", API + "/eye_records/" + rc.record_id + "/recall", {}).then(function (res) {
              send.disabled = false;
              show($("recalls-result"), res.ok ? t("records.recall_sent", { name: rc.patient_name || rc.customer }) : errorText(res), res.ok);
              if (res.ok || res.status === 409) loadRecalls();
            });
          });
          li.appendChild(send);
        }
        list.appendChild(li);
      });
    });
  }

  // ================================================================== one customer
  function field(form, name, label, input) {
    var wrap = el("label", "field" + (name === "notes" ? " wide" : ""));
    wrap.appendChild(el("span", "", label));
    input.name = name;
    wrap.appendChild(input);
    form.appendChild(wrap);
    return input;
  }
  function input(type, value, attrs) {
    var node = el(type === "textarea" ? "textarea" : "input");
    if (type !== "textarea") node.type = type;
    node.value = value === null || value === undefined ? "" : String(value);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }
  function select(options, value) {
    var node = el("select");
    options.forEach(function (o) {
      var opt = el("option", "", o[1]);
      opt.value = o[0];
      if (o[0] === (value || "")) opt.selected = true;
      node.appendChild(opt);
    });
    return node;
  }

  function petForm(form, pet, onSaved) {
    clear(form);
    var p = pet || {};
    field(form, "name", t("records.name"), input("text", p.name, { maxlength: "100", required: "" }));
    field(form, "species", t("records.species"), select([["dog", t("records.species_dog")], ["cat", t("records.species_cat")], ["other", t("records.species_other")]], p.species || "dog"));
    field(form, "breed", t("records.breed"), input("text", p.breed, { maxlength: "100" }));
    field(form, "size", t("records.size"), select([["", t("records.size_none")], ["small", t("records.size_small")], ["medium", t("records.size_medium")], ["large", t("records.size_large")]], p.size));
    field(form, "birth_date", t("records.birth_date"), input("date", p.birth_date));
    field(form, "weight_kg", t("records.weight_kg"), input("text", p.weight_kg, { inputmode: "decimal" }));
    field(form, "notes", t("records.pet_notes"), input("textarea", p.notes, { rows: "2", maxlength: "2000" }));
    var row = el("div", "wide");
    var save = el("button", "btn btn-primary", t("records.save"));
    save.type = "submit";
    row.appendChild(save);
    form.appendChild(row);
    var out = el("div", "form-result wide");
    out.setAttribute("aria-live", "polite");
    form.appendChild(out);
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var payload = {};
      ["name", "species", "breed", "size", "birth_date", "weight_kg", "notes"].forEach(function (n) {
        payload[n] = form.elements[n].value;
      });
      var path = pet ? API + "/pets/" + pet.id : API + "/customers/" + body.dataset.customer + "/pets";
      api("POST", path, payload).then(function (r) {
        markField(form, r.ok ? null : r.data.field);
        show(out, r.ok ? t("records.saved") : errorText(r), r.ok);
        if (r.ok) onSaved();
      });
    });
  }

  function vaccinationBlock(pet, kinds, reload) {
    var box = el("div", "vaccinations");
    box.appendChild(el("h4", "subtitle", t("records.vaccinations")));
    var list = el("ul", "mini-list");
    (pet.vaccinations || []).forEach(function (v) {
      var li = el("li");
      li.dataset.kind = v.kind;
      li.appendChild(el("strong", "", vaccineName(v.kind)));
      li.appendChild(el("span", "grow muted", v.given_on + " → " + v.expires_on));
      li.appendChild(el("span", "pill " + (v.valid ? "pill-confirmed" : "pill-cancelled"), t(v.valid ? "records.valid" : "records.expired")));
      var del = el("button", "btn btn-small btn-danger", t("records.delete"));
      del.type = "button";
      del.addEventListener("click", function () {
        if (!del.dataset.armed) { del.dataset.armed = "1"; del.textContent = t("records.confirm_delete"); return; }
        api("POST", API + "/vaccinations/" + v.id + "/delete", {}).then(reload);
      });
      li.appendChild(del);
      list.appendChild(li);
    });
    if (!list.firstChild) list.appendChild(el("li", "empty-li", t("records.no_vaccinations")));
    box.appendChild(list);
    var form = el("form", "form-grid vacc-form");
    field(form, "kind", t("records.kind"), select(kinds.map(function (k) { return [k === "general" ? "" : k, vaccineName(k)]; }), ""));
    field(form, "given_on", t("records.given_on"), input("date", "", { required: "" }));
    field(form, "expires_on", t("records.expires_on"), input("date", "", { title: t("records.expires_hint") }));
    var row = el("div", "");
    var label = el("span", "", "\u00a0");
    var add = el("button", "btn", t("records.add_vaccination"));
    add.type = "submit";
    row.className = "field";
    row.appendChild(label);
    row.appendChild(add);
    form.appendChild(row);
    var out = el("div", "form-result wide");
    form.appendChild(out);
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var payload = { kind: form.elements.kind.value, given_on: form.elements.given_on.value };
      if (form.elements.expires_on.value) payload.expires_on = form.elements.expires_on.value;
      api("POST", API + "/pets/" + pet.id + "/vaccinations", payload).then(function (r) {
        markField(form, r.ok ? null : r.data.field);
        if (r.ok) reload(); else show(out, errorText(r), false);
      });
    });
    box.appendChild(form);
    return box;
  }

  function renderPets(data, reload) {
    var holder = $("r-pets");
    clear(holder);
    (data.pets || []).forEach(function (pet) {
      var card = el("article", "pet-card");
      card.dataset.pet = String(pet.id);
      card.appendChild(el("h3", "subtitle", pet.name));
      var form = el("form", "form-grid pet-form");
      petForm(form, pet, reload);
      card.appendChild(form);
      card.appendChild(vaccinationBlock(pet, data.vaccine_kinds || [], reload));
      holder.appendChild(card);
    });
    petForm($("r-add-pet"), null, reload);
    $("r-pets-card").hidden = !(data.shop_kind === "pet" || (data.pets || []).length);
  }

  function renderVisits(data) {
    var list = $("r-visits");
    clear(list);
    (data.visit_notes || []).forEach(function (n) {
      var li = el("li");
      li.appendChild(el("strong", "", n.visit_on));
      var text = [n.products && t("records.products") + ": " + n.products, n.blade && t("records.blade") + ": " + n.blade,
        n.notes && t("records.groomer_notes") + ": " + n.notes].filter(Boolean).join(" · ");
      li.appendChild(el("span", "grow", text));
      list.appendChild(li);
    });
    if (!list.firstChild) list.appendChild(el("li", "empty-li", t("records.no_visit_notes")));
    $("r-visits-card").hidden = !(data.shop_kind === "pet" || (data.visit_notes || []).length);
  }

  var EYE_FIELDS = ["sphere", "cylinder", "axis", "add", "va"];
  function fillExam(rec) {
    var r = rec || {};
    $("e-id").value = r.id || "";
    $("e-examined_on").value = r.examined_on || body.dataset.today || "";
    $("e-patient_name").value = r.patient_name || "";
    $("e-patient_birth_date").value = r.patient_birth_date || "";
    $("e-pd").value = r.pd || "";
    $("e-notes").value = r.notes || "";
    ["od", "os"].forEach(function (eye) {
      EYE_FIELDS.forEach(function (f) { $("e-" + eye + "_" + f).value = r[eye] && r[eye][f] !== null ? r[eye][f] : ""; });
    });
    $("e-new").hidden = !r.id;
  }
  function renderEyes(data) {
    var list = $("r-eyes");
    clear(list);
    (data.eye_records || []).forEach(function (rec) {
      var li = el("li", "eye-record");
      li.dataset.record = String(rec.id);
      var head = el("div", "eye-head");
      head.appendChild(el("strong", "", rec.examined_on + (rec.patient_name ? " · " + rec.patient_name : "")));
      head.appendChild(el("span", "muted", t("records.recall_on", { date: rec.recall_on })));
      var edit = el("button", "btn btn-small", t("records.edit"));
      edit.type = "button";
      edit.addEventListener("click", function () { fillExam(rec); $("e-save").scrollIntoView({ block: "nearest" }); });
      head.appendChild(edit);
      var send = el("button", "btn btn-small btn-primary send", t("records.send"));
      send.type = "button";
      send.addEventListener("click", function () {
        api("POST", API + "/eye_records/" + rec.id + "/send", {}).then(function (r) {
          show(out, r.ok ? t("records.sent") : errorText(r), r.ok);
        });
      });
      head.appendChild(send);
      li.appendChild(head);
      var out = el("div", "form-result");
      out.hidden = true;
      li.appendChild(el("div", "muted", t("records.summary")));
      li.appendChild(el("pre", "summary", rec.summary));
      li.appendChild(out);
      list.appendChild(li);
    });
    if (!list.firstChild) list.appendChild(el("li", "empty-li", t("records.no_eye_records")));
    $("r-eyes-card").hidden = !(data.shop_kind === "optician" || (data.eye_records || []).length);
  }
  function initEyeForm(reload) {
    var form = $("r-eye-form");
    $("e-new").addEventListener("click", function () { fillExam(null); });
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var payload = {
        examined_on: $("e-examined_on").value, patient_name: $("e-patient_name").value,
        patient_birth_date: $("e-patient_birth_date").value, pd: $("e-pd").value, notes: $("e-notes").value
      };
      ["od", "os"].forEach(function (eye) {
        EYE_FIELDS.forEach(function (f) { payload[eye + "_" + f] = $("e-" + eye + "_" + f).value.trim(); });
      });
      var id = $("e-id").value;
      var path = id ? API + "/eye_records/" + id : API + "/customers/" + body.dataset.customer + "/eye_records";
      api("POST", path, payload).then(function (r) {
        markField(form, r.ok ? null : r.data.field);
        show($("e-result"), r.ok ? t("records.exam_saved") : errorText(r), r.ok);
        if (r.ok) { fillExam(r.data.record); reload(); }
      });
    });
  }

  function renderRest(data) {
    var bookings = $("r-bookings");
    clear(bookings);
    (data.bookings || []).forEach(function (b) {
      var li = el("li");
      var what = el("span", "grow", String(b.start).slice(0, 16).replace("T", " ") + " · " + (named(b.service_name) || b.service));
      if (b.notes) what.appendChild(el("div", "muted note-text", b.notes));  // for staff, as text
      li.appendChild(what);
      li.appendChild(el("span", "pill pill-" + b.status, t("status." + b.status)));
      bookings.appendChild(li);
    });
    if (!bookings.firstChild) bookings.appendChild(el("li", "empty-li", t("profile.none")));
    var trail = $("r-trail");
    clear(trail);
    (data.trail || []).forEach(function (e) {
      var li = el("li");
      li.appendChild(el("span", "muted", String(e.at).slice(0, 16).replace("T", " ")));
      li.appendChild(el("span", "grow", e.action + (e.details && e.details.fields ? " (" + e.details.fields.join(", ") + ")" : "")));
      li.appendChild(el("span", "chip", e.actor));
      trail.appendChild(li);
    });
    if (!trail.firstChild) trail.appendChild(el("li", "empty-li", t("records.no_trail")));
  }

  function renderSeries(data, reload) {
    var box = $("r-series");
    clear(box);
    var list = data.series || [];
    $("r-series-card").hidden = !list.length;
    list.forEach(function (sr) {
      var card = el("div", "series");
      card.dataset.series = sr.id;
      var head = el("div", "series-head");
      head.appendChild(el("span", "grow", t("records.series_head", { service: named(sr.service_name) || sr.service, interval: named(sr.interval), time: sr.time })));
      head.appendChild(el("span", "pill pill-" + sr.status, t("records.series_status_" + sr.status)));
      card.appendChild(head);
      var visits = el("ul", "mini-list");
      (sr.visits || []).forEach(function (v) {
        var li = el("li");
        var b = v.booking;
        var when = String(b ? b.start : v.planned_start).slice(0, 16).replace("T", " ");
        li.appendChild(el("span", "muted", "#" + v.seq));
        var what = el("span", "grow");
        if (b) {  // this visit on the day view, its details open: cancel, move or complete it alone
          var open = el("a", "visit-open", when);
          open.href = withLang("/console/day?shop=" + encodeURIComponent(SHOP) + "&date=" + String(b.start).slice(0, 10) +
            "&booking=" + encodeURIComponent(b.id));
          what.appendChild(open);
        } else {
          what.appendChild(document.createTextNode(when));
        }
        if (v.outcome !== "booked") what.appendChild(document.createTextNode(" · " + t("records.visit_" + v.outcome)));
        li.appendChild(what);
        if (b) li.appendChild(el("span", "pill pill-" + b.status, t("status." + b.status)));
        visits.appendChild(li);
      });
      card.appendChild(visits);
      if (sr.status === "active" || sr.upcoming > 0) {
        var cancel = el("button", "btn btn-small btn-danger", t("records.series_cancel_rest"));
        cancel.type = "button";
        cancel.addEventListener("click", function () {
          if (!cancel.dataset.armed) {  // a second tap confirms (no native dialog: tablets)
            cancel.dataset.armed = "1";
            cancel.textContent = t("records.series_confirm", { count: sr.upcoming });
            return;
          }
          cancel.disabled = true;
          api("POST", API + "/series/" + sr.id + "/cancel_rest", {}).then(function (r) {
            cancel.disabled = false;
            show($("r-series-result"), r.ok ? t("records.series_cancelled", { count: r.data.cancelled.length }) : errorText(r), r.ok);
            if (r.ok) reload();
          });
        });
        card.appendChild(cancel);
      }
      if (sr.status !== "cancelled" && sr.upcoming > 0) card.appendChild(moveForm(sr, reload));
      box.appendChild(card);
    });
  }

  // Move every visit still ahead to another weekday and/or time. The server moves all or nothing:
  // a clash comes back visit by visit with the nearest free times; staff pick one for each (or
  // keep those visits as they are) and press Move again. Text only through textContent.
  function moveForm(sr, reload) {
    var form = el("form", "series-move");
    form.dataset.series = sr.id;
    form.appendChild(el("span", "series-move-title", t("records.series_move")));
    var day = null;
    if (sr.unit === "week") {
      var dayLabel = el("label", "", t("records.series_move_weekday") + " ");
      day = el("select");
      day.name = "weekday";
      var same = el("option", "", t("records.series_move_same_day"));
      same.value = "";
      day.appendChild(same);
      for (var i = 0; i < 7; i++) {
        var opt = el("option", "", t("records.weekday_" + i));
        opt.value = String(i);
        day.appendChild(opt);
      }
      dayLabel.appendChild(day);
      form.appendChild(dayLabel);
    }
    var timeLabel = el("label", "", t("records.series_move_time") + " ");
    var time = el("input");
    time.type = "time";
    time.name = "time";
    time.step = "300";
    time.value = sr.time;
    timeLabel.appendChild(time);
    form.appendChild(timeLabel);
    var go = el("button", "btn btn-small", t("records.series_move_go"));
    go.type = "submit";
    form.appendChild(go);
    var clashes = el("ul", "mini-list series-clashes");
    form.appendChild(clashes);
    var keep = el("button", "btn btn-small series-keep", t("records.series_move_keep"));
    keep.type = "button";
    keep.hidden = true;
    form.appendChild(keep);
    var result = el("div", "form-result");
    result.hidden = true;
    form.appendChild(result);
    var choices = {};

    function clock(iso) { return String(iso).slice(0, 16).replace("T", " "); }
    function showClashes(visits) {
      clear(clashes);
      visits.filter(function (v) { return v.outcome === "clash"; }).forEach(function (v) {
        var li = el("li", "series-clash");
        li.dataset.seq = v.seq;
        li.appendChild(el("span", "grow", t("records.series_move_clash", { n: v.seq, when: clock(v.to) })));
        (v.alternatives || []).forEach(function (a) {
          var pick = el("button", "btn btn-small btn-ghost alt", clock(a).slice(11));
          pick.type = "button";
          pick.dataset.start = a;
          if (choices[v.seq] === a) pick.classList.add("selected");
          pick.addEventListener("click", function () {
            choices[v.seq] = a;
            Array.prototype.forEach.call(li.querySelectorAll(".alt"), function (n) { n.classList.remove("selected"); });
            pick.classList.add("selected");
            pick.setAttribute("aria-pressed", "true");
          });
          li.appendChild(pick);
        });
        clashes.appendChild(li);
      });
    }
    function send(keepClashing) {
      var payload = { time: time.value, choices: choices, keep_clashing: keepClashing };
      if (day && day.value !== "") payload.weekday = Number(day.value);
      go.disabled = keep.disabled = true;
      api("POST", API + "/series/" + sr.id + "/move", payload).then(function (r) {
        go.disabled = keep.disabled = false;
        var visits = (r.data && r.data.visits) || [];
        if (r.ok) {
          var moved = visits.filter(function (v) { return v.outcome === "moved"; }).length;
          var kept = visits.filter(function (v) { return v.outcome === "kept"; }).length;
          clear(clashes);
          keep.hidden = true;
          show($("r-series-result"), t("records.series_moved", { moved: moved, kept: kept }), true);
          reload();
        } else if (r.status === 409 && visits.length) {
          showClashes(visits);
          keep.hidden = false;
          var count = visits.filter(function (v) { return v.outcome === "clash"; }).length;
          show(result, t("records.series_move_none", { count: count }), false);
        } else {
          show(result, errorText(r), false);
        }
      });
    }
    form.addEventListener("submit", function (ev) { ev.preventDefault(); send(false); });
    keep.addEventListener("click", function () { send(true); });
    return form;
  }

  function initCustomer() {
    var id = body.dataset.customer;
    function load() {
      return api("GET", API + "/customers/" + encodeURIComponent(id)).then(function (r) {
        if (!r.ok) { show($("r-error"), errorText(r), false); return; }
        var d = r.data;
        body.dataset.today = d.today;
        $("r-name").textContent = d.customer.name || "#" + d.customer.id;
        $("r-phone").textContent = d.customer.phone || t("profile.none");
        $("r-language").textContent = d.customer.language || t("profile.none");
        $("r-notes").textContent = d.customer.notes || t("profile.none");
        renderPets(d, load);
        renderVisits(d);
        renderEyes(d);
        if (!$("e-id").value && !$("e-examined_on").value) $("e-examined_on").value = d.today;
        renderSeries(d, load);
        renderRest(d);
        body.dataset.loaded = String(parseInt(body.dataset.loaded || "0", 10) + 1);
      });
    }
    initEyeForm(load);
    load();
  }

  // ================================================================== day: visit notes at completion
  function initDayVisit() {
    var dialog = $("booking-dialog");
    var form = $("bd-visit");
    if (!dialog || !form) return;
    var last = null;
    function opened() {
      var id = dialog.dataset.booking;
      form.hidden = true;
      last = null;
      $("v-products").value = $("v-blade").value = $("v-notes").value = "";
      $("v-last").hidden = true;
      if (!id || (dialog.dataset.status !== "confirmed" && dialog.dataset.status !== "completed")) return;
      api("GET", API + "/bookings/" + id + "/visit").then(function (r) {
        if (!r.ok || dialog.dataset.booking !== id) return;
        form.hidden = false;
        var link = $("v-records");
        link.hidden = !r.data.customer_id;
        if (r.data.customer_id) link.href = customerLink(r.data.customer_id);
        var notes = r.data.notes;
        if (notes) {
          $("v-products").value = notes.products;
          $("v-blade").value = notes.blade;
          $("v-notes").value = notes.notes;
        }
        last = r.data.last;
        if (last) {
          $("v-same").textContent = t("records.same_as_last", { date: last.visit_on });
          $("v-last").hidden = false;
        }
      });
    }
    new MutationObserver(function () { if (dialog.open) opened(); }).observe(dialog, { attributes: true, attributeFilter: ["open"] });
    $("v-same").addEventListener("click", function () {
      if (!last) return;
      $("v-products").value = last.products;
      $("v-blade").value = last.blade;
      $("v-notes").value = last.notes;
    });
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var payload = { products: $("v-products").value, blade: $("v-blade").value, notes: $("v-notes").value };
      api("POST", API + "/bookings/" + dialog.dataset.booking + "/complete", payload).then(function (r) {
        var out = $("bd-result");
        out.className = "alert " + (r.ok ? "alert-ok" : "alert-error");
        out.textContent = r.ok ? t("records.notes_saved") : errorText(r);
        out.hidden = false;
        if (r.ok) {
          dialog.dataset.status = "completed";
          var pill = document.querySelector("#bd-facts .pill");
          if (pill) { pill.className = "pill pill-completed"; pill.textContent = t("status.completed"); }
        }
      });
    });
  }

  // ================================================================== start
  if (PAGE !== "customers" && PAGE !== "customer" && PAGE !== "day") return;
  fetch("/api/console/me", { credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store" })
    .then(function (resp) { return resp.ok ? resp.json() : null; })
    .then(function (me) {
      if (!me) return;
      csrf = me.csrf;
      if (PAGE === "customers") initCustomers();
      else if (PAGE === "customer") initCustomer();
      else if (PAGE === "day") initDayVisit();
    });
})();
