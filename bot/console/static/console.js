/* chatbook staff console: plain JS, no build step. Pages are server-rendered shells; this file
 * fills them from the JSON API (/api/console/...) and keeps them live over /console/ws.
 * Customer text is hostile input: it is only ever written with textContent. */
(function () {
  "use strict";

  var body = document.body;
  var PAGE = body.dataset.page;
  var SHOP = body.dataset.shop || "";
  var LANG = body.dataset.lang || "zh";
  var dom = window.chatbookDom;  // dom.js: the helpers every console script shares
  var STRINGS = dom.strings, t = dom.t, $ = dom.$, el = dom.el, clear = dom.clear, named = dom.named;
  if (PAGE === "login") return;

  var csrf = "";
  var me = null;

  // ------------------------------------------------------------------ helpers
  function button(label, cls, onClick) {
    var b = el("button", cls || "btn", label);
    b.type = "button";
    if (onClick) b.addEventListener("click", onClick);
    return b;
  }
  function hhmm(iso) { return iso ? String(iso).slice(11, 16) : ""; }
  function mdhm(iso) { return iso ? String(iso).slice(5, 10) + " " + String(iso).slice(11, 16) : ""; }
  function minutesOf(iso) { var s = String(iso); return parseInt(s.slice(11, 13), 10) * 60 + parseInt(s.slice(14, 16), 10); }
  function debounce(fn, ms) {
    var timer = null;
    return function () {
      if (timer) clearTimeout(timer);
      timer = setTimeout(function () { timer = null; fn(); }, ms);
    };
  }
  function withLang(url) {
    var explicit = new URLSearchParams(location.search).get("lang");
    if (!explicit) return url;
    return url + (url.indexOf("?") >= 0 ? "&" : "?") + "lang=" + encodeURIComponent(explicit);
  }

  var toastTimer = null;
  function toast(text) {
    var node = $("cb-toast");
    if (!node) return;
    node.textContent = text;
    node.hidden = false;
    if (toastTimer) clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { node.hidden = true; }, 3500);
  }

  function toLogin() {
    location.href = "/console/login?next=" + encodeURIComponent(location.pathname + location.search);
  }

  function api(method, path, payload, raw) {
    var headers = { Accept: "application/json" };
    var sent;
    if (method !== "GET") headers["X-CSRF-Token"] = csrf;
    if (raw !== undefined) {
      sent = raw;
      headers["Content-Type"] = "application/x-yaml; charset=utf-8";
    } else if (payload !== undefined) {
      sent = JSON.stringify(payload);
      headers["Content-Type"] = "application/json";
    }
    return fetch(path, { method: method, headers: headers, body: sent, credentials: "same-origin", cache: "no-store" })
      .then(function (resp) {
        return resp.json().catch(function () { return {}; }).then(function (data) {
          if (resp.status === 401) toLogin();
          return { status: resp.status, ok: resp.ok, data: data || {} };
        });
      }, function () {
        return { status: 0, ok: false, data: {} };
      });
  }
  function errorText(r) {
    if (r.status === 0) return t("err.network");
    if (r.status === 401) return t("err.login");
    if (r.status === 403) return r.data.error === "csrf" ? t("err.csrf") : t("err.forbidden");
    return r.data.message || r.data.error || t("err.generic");
  }
  function showAlert(node, text, kind) {
    if (!node) return;
    node.className = "alert " + (kind || "alert-error");
    node.textContent = text;
    node.hidden = !text;
  }

  // ------------------------------------------------------------------ sound (WebAudio, after a gesture)
  var sound = { on: false, ctx: null };
  try { sound.on = localStorage.getItem("chatbook:console:sound") === "on"; } catch (e) { /* private mode */ }
  body.dataset.beeps = "0";

  function audio() {
    var AC = window.AudioContext || window.webkitAudioContext;
    if (!sound.ctx && AC) sound.ctx = new AC();
    if (sound.ctx && sound.ctx.state === "suspended") sound.ctx.resume();
    return sound.ctx;
  }
  function beep() {
    if (!sound.on) return;
    var ctx = audio();
    if (!ctx) return;
    var start = ctx.currentTime + 0.01;
    [[880, 0], [1175, 0.16]].forEach(function (tone) {
      var osc = ctx.createOscillator();
      var gain = ctx.createGain();
      osc.type = "sine";
      osc.frequency.value = tone[0];
      gain.gain.setValueAtTime(0.0001, start + tone[1]);
      gain.gain.exponentialRampToValueAtTime(0.2, start + tone[1] + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + tone[1] + 0.14);
      osc.connect(gain);
      gain.connect(ctx.destination);
      osc.start(start + tone[1]);
      osc.stop(start + tone[1] + 0.15);
    });
    body.dataset.beeps = String(parseInt(body.dataset.beeps, 10) + 1);
  }
  function renderSound() {
    var b = $("cb-sound");
    if (!b) return;
    b.textContent = t(sound.on ? "nav.sound_on" : "nav.sound_off");
    b.setAttribute("aria-pressed", sound.on ? "true" : "false");
  }
  function initSound() {
    var b = $("cb-sound");
    if (!b) return;
    renderSound();
    b.addEventListener("click", function () {
      sound.on = !sound.on;
      try { localStorage.setItem("chatbook:console:sound", sound.on ? "on" : "off"); } catch (e) { /* ignore */ }
      renderSound();
      if (sound.on) { audio(); beep(); }
    });
    // browsers only start audio after a user gesture: unlock on the first tap anywhere
    var unlock = function () {
      if (sound.on) audio();
      document.removeEventListener("pointerdown", unlock);
      document.removeEventListener("keydown", unlock);
    };
    document.addEventListener("pointerdown", unlock);
    document.addEventListener("keydown", unlock);
  }

  // ------------------------------------------------------------------ badge
  var baseTitle = document.title;
  function setBadge(n) {
    var b = $("cb-badge");
    if (b) {
      b.textContent = String(n);
      b.hidden = n === 0;
    }
    document.title = (n ? "(" + n + ") " : "") + baseTitle;
  }
  function waitingCount(data) {
    return (data.waiting || []).filter(function (i) { return i.mode === "handoff"; }).length;
  }
  function refreshBadge() {
    if (!SHOP) return;
    api("GET", "/api/console/inbox?shop=" + encodeURIComponent(SHOP)).then(function (r) {
      if (r.ok) setBadge(waitingCount(r.data));
    });
  }

  // ------------------------------------------------------------------ live events
  function connect(onEvent) {
    var conn = $("cb-conn");
    var delay = 1000;
    var opened = false;
    function state(s) {
      if (!conn) return;
      conn.dataset.state = s;
      var label = conn.querySelector(".conn-text");
      if (label) label.textContent = s === "open" ? t("nav.live") : t("nav.offline");
    }
    function open() {
      var ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/console/ws");
      state("connecting");
      ws.onopen = function () {
        delay = 1000;
        state("open");
        if (opened) onEvent({ type: "resync" }); // events may have been missed while away
        opened = true;
      };
      ws.onmessage = function (m) {
        var ev;
        try { ev = JSON.parse(m.data); } catch (e) { return; }
        if (ev && typeof ev === "object") onEvent(ev);
      };
      ws.onclose = function (ev) {
        state("closed");
        if (ev && ev.code === 4401) { location.href = "/console/login"; return; } // the session ended
        setTimeout(open, delay);
        delay = Math.min(delay * 2, 15000);
      };
    }
    open();
  }
  function commonEvent(ev) {
    if (ev.type === "escalation") {
      beep();
      toast(t("inbox.new_escalation"));
    }
    if (ev.type === "low_rating") { // a customer rated a visit 1-2 stars (core/ratings.py)
      beep();
      toast(t("reports.low_rating_alert", { stars: ev.stars }));
      document.dispatchEvent(new CustomEvent("cb:low_rating", { detail: ev }));
    }
  }

  // ------------------------------------------------------------------ chrome
  function initChrome() {
    var select = $("cb-shop");
    if (select) {
      select.addEventListener("change", function () {
        location.href = withLang(location.pathname + "?shop=" + encodeURIComponent(select.value));
      });
    }
    initSound();
  }

  // ================================================================== inbox
  function initInbox() {
    var state = { selected: null, mode: "reply", known: null, loaded: null };
    var root = $("inbox");

    function customerName(item) {
      return item.customer || t("inbox.customer", { id: item.customer_id });
    }
    function reasonText(reason) {
      if (!reason) return "";
      if (reason === "asked" || reason === "not_understood") return t("reason." + reason);
      if (reason.indexOf("faq:") === 0) return t("reason.faq", { id: reason.slice(4) });
      return reason;
    }
    function routeText(route) {
      return STRINGS["route." + route] ? t("route." + route) : route;
    }
    function modePill(mode, assigned) {
      if (mode === "handoff") return el("span", "pill pill-handoff", t("inbox.mode_handoff"));
      if (mode === "staff") return el("span", "pill pill-staff", t("inbox.mode_staff", { name: assigned || "?" }));
      return el("span", "pill", t("inbox.mode_bot"));
    }

    function renderItem(item, waiting, fresh) {
      var li = el("li");
      var b = el("button", "conv-item");
      b.type = "button";
      b.dataset.id = String(item.id);
      if (waiting && item.mode === "handoff") b.classList.add("is-waiting");
      if (item.assigned_to && me && item.assigned_to === me.username) b.classList.add("is-mine");
      if (item.id === state.selected) b.classList.add("is-selected");
      if (fresh) b.classList.add("is-new");
      b.appendChild(el("span", "name", customerName(item)));
      var when = waiting && item.waiting_min !== null ? t("inbox.minutes", { n: item.waiting_min }) : mdhm(item.since);
      b.appendChild(el("span", "when", when));
      b.appendChild(el("span", "last", item.last_text || ""));
      var tags = el("span", "tags");
      if (waiting) tags.appendChild(modePill(item.mode, item.assigned_to));
      if (item.route) tags.appendChild(el("span", "chip", routeText(item.route)));
      tags.appendChild(el("span", "chip", item.channel));
      if (item.reason) tags.appendChild(el("span", "chip", reasonText(item.reason)));
      b.appendChild(tags);
      b.addEventListener("click", function () { select(item.id); });
      li.appendChild(b);
      return li;
    }

    function renderList(list, items, waiting, seen) {
      clear(list);
      items.forEach(function (item) {
        var fresh = seen !== null && waiting && !seen.has(item.id);
        list.appendChild(renderItem(item, waiting, fresh));
      });
    }

    function loadInbox() {
      return api("GET", "/api/console/inbox?shop=" + encodeURIComponent(SHOP)).then(function (r) {
        if (!r.ok) { toast(errorText(r)); return; }
        var waiting = r.data.waiting || [];
        var recent = r.data.recent || [];
        renderList($("waiting-list"), waiting, true, state.known);
        renderList($("recent-list"), recent, false, null);
        state.known = new Set(waiting.map(function (i) { return i.id; }));
        $("waiting-empty").hidden = waiting.length > 0;
        $("recent-empty").hidden = recent.length > 0;
        $("waiting-count").textContent = String(waiting.length);
        setBadge(waitingCount(r.data));
      });
    }

    function select(id) {
      state.selected = id;
      state.loaded = null;
      showAlert($("conv-error"), "");
      history.replaceState(null, "", location.pathname + location.search + "#c" + id);
      Array.prototype.forEach.call(document.querySelectorAll(".conv-item"), function (b) {
        b.classList.toggle("is-selected", b.dataset.id === String(id));
      });
      root.classList.add("has-selection");
      loadConv(true);
    }

    function entryNode(e, customer) {
      var cls = "msg-in";
      var who = customer;
      if (e.direction === "note") {
        cls = "msg-note";
        who = t("conv.note", { name: (e.author || "").replace(/^staff:/, "") });
      } else if (e.direction === "out") {
        if ((e.author || "").indexOf("staff:") === 0) {
          cls = "msg-staff";
          who = e.author.slice(6);
        } else {
          cls = "msg-bot";
          who = t("conv.bot");
        }
      }
      var li = el("li", "msg " + cls);
      li.dataset.direction = e.direction;
      var line = el("div", "who-line");
      line.appendChild(el("span", "author", who));
      line.appendChild(el("time", "at", hhmm(e.at)));
      li.appendChild(line);
      if (e.text) li.appendChild(el("div", "bubble", e.text));
      if (e.image_url && /^(https:\/\/|\/media\/)/.test(e.image_url)) {
        var img = el("img", "image");
        img.alt = "";
        img.src = e.image_url;
        img.referrerPolicy = "no-referrer";
        li.appendChild(img);
      } else if (e.image_url) {
        li.appendChild(el("div", "bubble", e.image_url));
      }
      if (e.buttons && e.buttons.length) {
        var row = el("div", "buttons");
        e.buttons.forEach(function (label) { row.appendChild(el("span", "chip", label)); });
        li.appendChild(row);
      }
      return li;
    }

    function renderProfile(c) {
      $("profile").hidden = false;
      var records = $("p-records"); // the customer's records page (records.js)
      if (records) {
        records.href = withLang("/console/customer?shop=" + encodeURIComponent(SHOP) + "&id=" + encodeURIComponent(c.id));
        records.hidden = false;
      }
      $("p-phone").textContent = c.phone || t("profile.none");
      $("p-language").textContent = c.language || t("profile.none");
      $("p-channels").textContent = (c.channels || []).join(", ") || t("profile.none");
      var ns = $("p-noshows");
      ns.textContent = String(c.no_shows || 0);
      ns.className = c.no_shows ? "warn" : "";
      $("p-notes").textContent = c.notes || t("profile.none");
      var pets = $("p-pets");
      clear(pets);
      (c.pets || []).forEach(function (p) {
        var li = el("li");
        li.appendChild(el("strong", "", p.name || "?"));
        var bits = [p.species, p.breed, p.size].filter(Boolean).join(" · ");
        if (bits) li.appendChild(el("span", "muted", bits));
        if (p.notes) li.appendChild(el("span", "grow", p.notes));
        pets.appendChild(li);
      });
      if (!pets.firstChild) pets.appendChild(el("li", "empty-li", t("profile.none")));
      var list = $("p-bookings");
      clear(list);
      (c.bookings || []).forEach(function (b) {
        var li = el("li");
        li.appendChild(el("span", "grow", mdhm(b.start) + " · " + (named(b.service_name) || b.service)));
        li.appendChild(el("span", "pill pill-" + b.status, t("status." + b.status)));
        li.appendChild(el("code", "muted", b.code));
        list.appendChild(li);
      });
      if (!list.firstChild) list.appendChild(el("li", "empty-li", t("profile.none")));
    }

    function loadConv(reset) {
      var id = state.selected;
      if (!id) return Promise.resolve();
      return api("GET", "/api/console/conversations/" + id).then(function (r) {
        if (id !== state.selected) return;
        if (!r.ok) { showAlert($("conv-error"), errorText(r)); return; }
        state.loaded = r.data;
        var c = r.data.conversation;
        var customer = r.data.customer || {};
        var name = customer.name || t("inbox.customer", { id: customer.id });
        $("conv-placeholder").hidden = true;
        $("conv").hidden = false;
        $("conv-name").textContent = name;
        $("conv-meta").textContent = [c.channel, c.language, "#" + c.id].filter(Boolean).join(" · ");
        var pill = $("conv-mode");
        var fresh = modePill(c.mode, c.assigned_to);
        pill.className = fresh.className;
        pill.textContent = fresh.textContent;
        pill.dataset.mode = c.mode;
        var why = $("conv-why");
        if (c.reason) {
          var bits = [reasonText(c.reason)];
          if (c.route) bits.push(t("conv.route", { route: routeText(c.route) }));
          $("conv-why-text").textContent = bits.join(" · ");
          why.hidden = false;
        } else {
          why.hidden = true;
        }
        var other = c.assigned_to && me && c.assigned_to !== me.username;
        if (other) showAlert($("conv-error"), t("conv.taken_by", { name: c.assigned_to }));
        else if (reset) showAlert($("conv-error"), "");
        $("btn-take").disabled = c.mode === "staff" && !other;
        $("btn-release").disabled = c.mode === "bot";
        var list = $("transcript");
        var atBottom = reset || list.scrollHeight - list.scrollTop - list.clientHeight < 40;
        clear(list);
        (r.data.transcript || []).forEach(function (e) { list.appendChild(entryNode(e, name)); });
        if (atBottom) list.scrollTop = list.scrollHeight;
        renderProfile(customer);
      });
    }

    function act(path, payload, okText) {
      var id = state.selected;
      return api("POST", "/api/console/conversations/" + id + "/" + path, payload).then(function (r) {
        if (r.status === 409 && r.data.error === "taken") {
          showAlert($("conv-error"), t("conv.taken_by", { name: r.data.by || "?" }));
        } else if (!r.ok) {
          showAlert($("conv-error"), errorText(r));
        } else {
          showAlert($("conv-error"), "");
          if (okText) toast(okText);
        }
        return Promise.all([loadConv(false), loadInbox()]).then(function () { return r; });
      });
    }

    $("btn-take").addEventListener("click", function () { act("take", undefined, t("conv.taken")); });
    $("btn-release").addEventListener("click", function () { act("release", undefined, t("conv.released")); });

    function setMode(mode) {
      state.mode = mode;
      var text = $("composer-text");
      var send = $("composer-send");
      $("tab-reply").classList.toggle("is-active", mode === "reply");
      $("tab-note").classList.toggle("is-active", mode === "note");
      $("tab-reply").setAttribute("aria-selected", mode === "reply" ? "true" : "false");
      $("tab-note").setAttribute("aria-selected", mode === "note" ? "true" : "false");
      $("composer").classList.toggle("is-note", mode === "note");
      $("composer-image").hidden = mode === "note";
      text.placeholder = text.dataset[mode];
      send.textContent = send.dataset[mode];
    }
    $("tab-reply").addEventListener("click", function () { setMode("reply"); });
    $("tab-note").addEventListener("click", function () { setMode("note"); });

    function submit() {
      var text = $("composer-text").value.trim();
      var image = $("composer-image").value.trim();
      if (!text && !(state.mode === "reply" && image)) { toast(t("conv.empty")); return; }
      var payload = { text: text };
      if (state.mode === "reply" && image) payload.image_url = image;
      var send = $("composer-send");
      send.disabled = true;
      act(state.mode, payload, t(state.mode === "reply" ? "conv.sent" : "conv.noted")).then(function (r) {
        send.disabled = false;
        if (r.ok) {
          $("composer-text").value = "";
          $("composer-image").value = "";
        }
      });
    }
    $("composer").addEventListener("submit", function (ev) { ev.preventDefault(); submit(); });
    $("composer-text").addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); submit(); }
    });
    $("conv-back").addEventListener("click", function () {
      state.selected = null;
      root.classList.remove("has-selection");
      history.replaceState(null, "", location.pathname + location.search);
    });

    var refreshList = debounce(loadInbox, 120);
    var refreshConv = debounce(function () { loadConv(false); }, 120);
    connect(function (ev) {
      if (ev.type === "resync") { refreshList(); refreshConv(); return; }
      commonEvent(ev);
      if (ev.shop !== SHOP) return;
      refreshList();
      if (ev.conversation && ev.conversation === state.selected) refreshConv();
    });

    // the bot's own conversations send no live events: the recent list refreshes now and then
    setInterval(function () { if (!document.hidden) refreshList(); }, 30000);
    loadInbox().then(function () {
      var m = /^#c(\d+)$/.exec(location.hash);
      if (m) select(parseInt(m[1], 10));
    });
  }

  // ================================================================== day
  function initDay() {
    var params = new URLSearchParams(location.search);
    var D = { date: params.get("date") || body.dataset.today, week: params.get("week") === "1", data: null, current: null };
    var openOnLoad = params.get("booking");  // a link to one booking (e.g. a visit of a series): its details open
    var HOUR = 64;

    function addDays(iso, n) {
      var p = iso.split("-").map(Number);
      var d = new Date(Date.UTC(p[0], p[1] - 1, p[2] + n));
      return d.toISOString().slice(0, 10);
    }
    function dayLabel(iso, opts) {
      var p = iso.split("-").map(Number);
      var d = new Date(Date.UTC(p[0], p[1] - 1, p[2]));
      var o = opts || { weekday: "long", year: "numeric", month: "long", day: "numeric" };
      o.timeZone = "UTC";
      return d.toLocaleDateString(LANG === "zh" ? "zh-CN" : "en-GB", o);
    }
    function shopLocal(iso) {
      var parts = {};
      new Intl.DateTimeFormat("en-CA", {
        timeZone: (D.data && D.data.timezone) || "UTC", year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", hourCycle: "h23"
      }).formatToParts(new Date(iso)).forEach(function (p) { parts[p.type] = p.value; });
      return { date: parts.year + "-" + parts.month + "-" + parts.day, time: parts.hour + ":" + parts.minute };
    }
    function staffName(id) {
      if (!id) return t("day.unassigned");
      var s = (D.data.staff || []).filter(function (x) { return x.id === id; })[0];
      return s ? named(s.name) : id;
    }
    function serviceName(b) { return named(b.service_name) || b.service; }
    function customerOf(b) { return b.customer || (b.customer_id ? t("inbox.customer", { id: b.customer_id }) : "—"); }

    function fillSelects() {
      var svc = $("b-service");
      if (svc.options.length) return;
      D.data.services.forEach(function (s) {
        var o = el("option", "", named(s.name) + " · " + s.duration_min + "′");
        o.value = s.id;
        svc.appendChild(o);
      });
      [$("b-staff"), $("o-staff"), $("r-staff")].forEach(function (sel) {
        D.data.staff.forEach(function (s) {
          var o = el("option", "", named(s.name));
          o.value = s.id;
          sel.appendChild(o);
        });
      });
    }

    function load() {
      var q = "/api/console/day?shop=" + encodeURIComponent(SHOP) + "&date=" + encodeURIComponent(D.date) +
        (D.week ? "&week=1" : "");
      var url = location.pathname + "?shop=" + encodeURIComponent(SHOP) + "&date=" + D.date + (D.week ? "&week=1" : "");
      history.replaceState(null, "", withLang(url));
      return api("GET", q).then(function (r) {
        if (!r.ok) { showAlert($("d-error"), errorText(r)); return; }
        showAlert($("d-error"), "");
        D.data = r.data;
        fillSelects();
        $("d-date").value = D.date;
        $("d-mode-day").classList.toggle("is-active", !D.week);
        $("d-mode-week").classList.toggle("is-active", D.week);
        $("d-mode-day").setAttribute("aria-pressed", D.week ? "false" : "true");
        $("d-mode-week").setAttribute("aria-pressed", D.week ? "true" : "false");
        $("d-title").textContent = D.week
          ? dayLabel(D.date, { month: "short", day: "numeric" }) + " – " +
            dayLabel(addDays(D.date, 6), { month: "short", day: "numeric", year: "numeric" })
          : dayLabel(D.date);
        if (D.week) renderWeek(); else renderDay();
        renderPending();
        if (openOnLoad) {
          var wanted = D.data.bookings.concat(D.data.pending || []).filter(function (b) { return String(b.id) === openOnLoad; })[0];
          openOnLoad = null;
          if (wanted) openBooking(wanted);
        }
      });
    }

    function columns(bookings) {
      var cols = D.data.staff.map(function (s) { return { id: s.id, name: named(s.name), role: s.role }; });
      if (bookings.some(function (b) { return !b.staff; })) cols.push({ id: null, name: t("day.unassigned"), role: "" });
      return cols;
    }

    function renderDay() {
      var cal = $("calendar");
      clear(cal);
      var bookings = D.data.bookings.filter(function (b) {
        return b.status !== "cancelled" && String(b.start).slice(0, 10) === D.date;
      });
      var first = 9, last = 21;
      bookings.forEach(function (b) {
        first = Math.min(first, Math.floor(minutesOf(b.start) / 60));
        var endMin = String(b.end).slice(0, 10) === D.date ? minutesOf(b.end) : 24 * 60;
        last = Math.max(last, Math.ceil(endMin / 60));
      });
      var cols = columns(bookings);
      var template = "56px repeat(" + cols.length + ", minmax(140px, 1fr))";
      var head = el("div", "cal-head");
      head.style.gridTemplateColumns = template;
      head.appendChild(el("div", "", ""));
      cols.forEach(function (c) {
        var cell = el("div", "", c.name);
        var count = bookings.filter(function (b) { return (b.staff || null) === c.id; }).length;
        cell.appendChild(el("span", "role", (c.role ? (STRINGS["route." + c.role] ? t("route." + c.role) : c.role) + " · " : "") +
          t("day.count", { n: count })));
        head.appendChild(cell);
      });
      cal.appendChild(head);
      var grid = el("div", "cal-body");
      grid.style.gridTemplateColumns = template;
      var height = (last - first) * HOUR;
      var times = el("div", "cal-times");
      times.style.height = height + "px";
      for (var h = first + 1; h < last; h++) {
        var label = el("span", "", (h < 10 ? "0" : "") + h + ":00");
        label.style.top = (h - first) * HOUR + "px";
        times.appendChild(label);
      }
      grid.appendChild(times);
      cols.forEach(function (c) {
        var col = el("div", "cal-col");
        col.style.height = height + "px";
        col.dataset.staff = c.id || "";
        bookings.filter(function (b) { return (b.staff || null) === c.id; }).forEach(function (b) {
          var start = minutesOf(b.start);
          var end = String(b.end).slice(0, 10) === D.date ? minutesOf(b.end) : 24 * 60;
          var block = el("button", "block st-" + b.status);
          block.type = "button";
          block.dataset.booking = String(b.id);
          block.style.top = ((start - first * 60) / 60) * HOUR + 1 + "px";
          block.style.height = Math.max(((end - start) / 60) * HOUR - 3, 26) + "px";
          if (end - start < 40) block.classList.add("is-short");
          block.appendChild(el("span", "b-time", hhmm(b.start) + "–" + hhmm(b.end)));
          block.appendChild(el("span", "b-name", customerOf(b)));
          block.appendChild(el("span", "b-svc", serviceName(b) + (b.status !== "confirmed" ? " · " + t("status." + b.status) : "")));
          if (b.notes) {  // the note for staff (customer-given text: written as text only)
            block.appendChild(el("span", "b-note", b.notes.split("\n")[0]));
            block.title = b.notes;
          }
          block.addEventListener("click", function () { openBooking(b); });
          col.appendChild(block);
        });
        grid.appendChild(col);
      });
      cal.appendChild(grid);
      if (!bookings.length) cal.appendChild(el("p", "empty", t("day.no_bookings")));
    }

    function renderWeek() {
      var cal = $("calendar");
      clear(cal);
      var bookings = D.data.bookings.filter(function (b) { return b.status !== "cancelled"; });
      var days = [];
      for (var i = 0; i < 7; i++) days.push(addDays(D.date, i));
      var table = el("table", "week");
      var head = el("tr");
      head.appendChild(el("th", "", t("day.staff")));
      days.forEach(function (d) {
        var th = el("th", d === body.dataset.today ? "is-today" : "");
        var b = button(dayLabel(d, { weekday: "short", month: "numeric", day: "numeric" }), "btn btn-ghost btn-small",
          function () { D.date = d; D.week = false; load(); });
        th.appendChild(b);
        head.appendChild(th);
      });
      var thead = el("thead");
      thead.appendChild(head);
      table.appendChild(thead);
      var tbody = el("tbody");
      columns(bookings).forEach(function (c) {
        var tr = el("tr");
        tr.appendChild(el("th", "staff-cell", c.name));
        days.forEach(function (d) {
          var td = el("td");
          var mine = bookings.filter(function (b) { return (b.staff || null) === c.id && String(b.start).slice(0, 10) === d; });
          td.appendChild(el("span", "n" + (mine.length ? "" : " zero"), String(mine.length)));
          mine.forEach(function (b) {
            var m = el("button", "mini st-" + b.status, hhmm(b.start) + " " + customerOf(b));
            m.type = "button";
            m.title = serviceName(b) + (b.notes ? "\n" + b.notes : "");
            if (b.notes) m.classList.add("has-note");
            m.addEventListener("click", function () { openBooking(b); });
            td.appendChild(m);
          });
          tr.appendChild(td);
        });
        tbody.appendChild(tr);
      });
      table.appendChild(tbody);
      cal.appendChild(table);
    }

    function renderPending() {
      var list = $("pending-list");
      clear(list);
      var pending = D.data.pending || [];
      $("pending-count").textContent = String(pending.length);
      $("pending-empty").hidden = pending.length > 0;
      pending.forEach(function (b) {
        var li = el("li");
        var info = el("span", "grow");
        info.appendChild(el("strong", "", customerOf(b)));
        info.appendChild(document.createTextNode(" · " + serviceName(b)));
        info.appendChild(el("div", "muted", mdhm(b.start) + " · " + staffName(b.staff) + " · " + b.code));
        if (b.notes) info.appendChild(el("div", "note-text", b.notes));
        li.appendChild(info);
        li.appendChild(button(t("day.approve"), "btn btn-primary btn-small", function () { bookingAction(b, "approve", {}); }));
        li.appendChild(button(t("day.decline"), "btn btn-danger btn-small", function () { bookingAction(b, "decline", {}); }));
        list.appendChild(li);
      });
    }

    function bookingAction(b, action, payload, resultNode) {
      return api("POST", "/api/console/bookings/" + b.id + "/" + action, payload).then(function (r) {
        var out = resultNode || null;
        if (r.ok) {
          if (out) showAlert(out, t("day.done"), "alert-ok"); else toast(t("day.done"));
        } else if (r.status === 409 && r.data.alternatives) {
          if (out) showAlternatives(out, r.data.alternatives, function (alt) {
            $("r-date").value = alt.date;
            $("r-time").value = alt.time;
            if (alt.staff) $("r-staff").value = alt.staff;
            $("bd-reschedule").requestSubmit();
          });
          else toast(errorText(r));
        } else if (out) {
          showAlert(out, errorText(r));
        } else {
          toast(errorText(r));
        }
        load();
        return r;
      });
    }

    function showAlternatives(node, alternatives, pick) {
      node.className = "alert alert-warn";
      node.hidden = false;
      clear(node);
      node.appendChild(el("div", "", t("day.alternatives")));
      var row = el("div", "alts");
      alternatives.forEach(function (a) {
        var local = shopLocal(a.start);
        var staff = (a.staff || [])[0] || "";
        var label = local.date.slice(5) + " " + local.time + (staff ? " · " + staffName(staff) : "");
        var b = button(label, "btn btn-small alt", function () {
          pick({ date: local.date, time: local.time, staff: staff });
        });
        b.dataset.start = a.start;
        row.appendChild(b);
      });
      node.appendChild(row);
    }

    // ---- booking details dialog
    var dialog = $("booking-dialog");
    function openBooking(b) {
      D.current = b;
      dialog.dataset.booking = String(b.id); // records.js: visit notes at completion
      dialog.dataset.status = b.status;
      dialog.dataset.customer = b.customer_id ? String(b.customer_id) : "";
      $("bd-title").textContent = customerOf(b) + " · " + serviceName(b);
      var facts = $("bd-facts");
      clear(facts);
      [[t("day.code"), b.code], [t("day.time"), String(b.start).slice(0, 10) + " " + hhmm(b.start) + "–" + hhmm(b.end)],
        [t("day.staff"), staffName(b.staff)], [t("day.service"), serviceName(b)]].forEach(function (f) {
        facts.appendChild(el("dt", "", f[0]));
        facts.appendChild(el("dd", "", f[1]));
      });
      facts.appendChild(el("dt", "", "·"));
      var dd = el("dd");
      dd.appendChild(el("span", "pill pill-" + b.status, t("status." + b.status)));
      facts.appendChild(dd);
      if (b.notes) {
        facts.appendChild(el("dt", "", t("day.notes")));
        facts.appendChild(el("dd", "note-text", b.notes)).id = "bd-notes";
      }
      showAlert($("bd-error"), "");
      showAlert($("bd-result"), "");
      $("r-date").value = String(b.start).slice(0, 10);
      $("r-time").value = hhmm(b.start);
      $("r-staff").value = b.staff || "";
      $("f-text").value = "";
      $("f-image").value = "";
      var cancel = $("bd-cancel");
      cancel.dataset.armed = "";
      cancel.textContent = t("day.cancel");
      if (typeof dialog.showModal === "function") dialog.showModal(); else dialog.setAttribute("open", "");
    }
    Array.prototype.forEach.call(document.querySelectorAll("#bd-actions [data-outcome]"), function (btn) {
      btn.addEventListener("click", function () {
        bookingAction(D.current, "attendance", { outcome: btn.dataset.outcome }, $("bd-result"));
      });
    });
    $("bd-cancel").addEventListener("click", function () {
      var cancel = $("bd-cancel");
      if (!cancel.dataset.armed) { // a second tap confirms: no native dialogs
        cancel.dataset.armed = "1";
        cancel.textContent = t("day.confirm_cancel");
        return;
      }
      cancel.dataset.armed = "";
      cancel.textContent = t("day.cancel");
      bookingAction(D.current, "cancel", {}, $("bd-result"));
    });
    $("bd-reschedule").addEventListener("submit", function (ev) {
      ev.preventDefault();
      bookingAction(D.current, "reschedule", {
        date: $("r-date").value, time: $("r-time").value, staff: $("r-staff").value || null
      }, $("bd-result"));
    });
    $("bd-follow").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var payload = { text: $("f-text").value.trim() };
      if ($("f-image").value.trim()) payload.image_url = $("f-image").value.trim();
      api("POST", "/api/console/bookings/" + D.current.id + "/follow_up", payload).then(function (r) {
        if (r.ok) {
          showAlert($("bd-result"), t("day.follow_up_sent"), "alert-ok");
          $("f-text").value = "";
        } else {
          showAlert($("bd-result"), errorText(r));
        }
      });
    });

    // ---- manual booking
    function book() {
      var payload = {
        shop: SHOP, service: $("b-service").value, date: $("b-date").value, time: $("b-time").value,
        staff: $("b-staff").value || null, customer_name: $("b-name").value.trim(), phone: $("b-phone").value.trim(),
        notes: $("b-notes").value.trim()
      };
      var out = $("book-result");
      return api("POST", "/api/console/bookings", payload).then(function (r) {
        if (r.ok) {
          showAlert(out, t("day.booked", { code: r.data.booking.code }), "alert-ok");
          $("b-name").value = "";
          $("b-phone").value = "";
          $("b-notes").value = "";
          D.date = payload.date;
          load();
        } else if (r.status === 409) {
          showAlternatives(out, r.data.alternatives || [], function (alt) {
            $("b-date").value = alt.date;
            $("b-time").value = alt.time;
            if ($("b-staff").value && alt.staff) $("b-staff").value = alt.staff;
            book();
          });
        } else {
          showAlert(out, errorText(r));
        }
      });
    }
    $("book-form").addEventListener("submit", function (ev) { ev.preventDefault(); book(); });

    // ---- time off (the shop-side change flow: affected customers are told)
    $("off-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var payload = {
        shop: SHOP, staff: $("o-staff").value,
        start: $("o-start-date").value + " " + $("o-start-time").value,
        end: $("o-end-date").value + " " + $("o-end-time").value,
        reason: $("o-reason").value.trim()
      };
      api("POST", "/api/console/time_off", payload).then(function (r) {
        if (r.ok) showAlert($("off-result"), t("day.affected", { n: (r.data.affected || []).length }), "alert-ok");
        else showAlert($("off-result"), errorText(r));
        load();
      });
    });

    // ---- navigation
    $("d-prev").addEventListener("click", function () { D.date = addDays(D.date, D.week ? -7 : -1); load(); });
    $("d-next").addEventListener("click", function () { D.date = addDays(D.date, D.week ? 7 : 1); load(); });
    $("d-today").addEventListener("click", function () { D.date = body.dataset.today; load(); });
    $("d-date").addEventListener("change", function () { if ($("d-date").value) { D.date = $("d-date").value; load(); } });
    $("d-mode-day").addEventListener("click", function () { D.week = false; load(); });
    $("d-mode-week").addEventListener("click", function () { D.week = true; load(); });

    var reload = debounce(load, 200);
    connect(function (ev) {
      if (ev.type === "resync") { reload(); refreshBadge(); return; }
      commonEvent(ev);
      if (ev.shop !== SHOP) return;
      if (ev.type === "booking") reload();
      if (ev.type === "escalation" || ev.type === "taken" || ev.type === "released" || ev.type === "reply") refreshBadge();
    });
    refreshBadge();
    load();
  }

  // ================================================================== faq
  function initFaq() {
    Array.prototype.forEach.call(document.querySelectorAll("form.upload"), function (form) {
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var input = form.querySelector("input[type=file]");
        var out = form.querySelector(".upload-result");
        var file = input.files && input.files[0];
        if (!file) return;
        file.text().then(function (text) {
          return api("POST", "/api/console/faq/" + encodeURIComponent(form.dataset.shop), undefined, text);
        }).then(function (r) {
          clear(out);
          if (r.ok) {
            showAlert(out, t("faq.upload_ok", { n: r.data.entries }), "alert-ok");
            setTimeout(function () { location.reload(); }, 1500);
          } else if (r.data.errors) {
            out.className = "alert alert-error";
            out.hidden = false;
            out.appendChild(el("div", "", t("faq.upload_errors")));
            var ul = el("ul", "errors");
            r.data.errors.forEach(function (e) { ul.appendChild(el("li", "", e)); });
            out.appendChild(ul);
          } else {
            showAlert(out, errorText(r));
          }
        });
      });
    });
    connect(function (ev) {
      if (ev.type === "resync") { refreshBadge(); return; }
      commonEvent(ev);
      if (ev.shop === SHOP) refreshBadge();
    });
    refreshBadge();
  }

  // ================================================================== start
  initChrome();
  fetch("/api/console/me", { credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store" })
    .then(function (resp) {
      if (resp.status === 401) { toLogin(); return null; }
      return resp.json();
    })
    .then(function (data) {
      if (!data) return;
      me = data;
      csrf = data.csrf;
      if (PAGE === "inbox") initInbox();
      else if (PAGE === "day") initDay();
      else if (PAGE === "faq") initFaq();
      else if (PAGE === "reports") connect(commonEvent); // figures are drawn by reports.js
    });
})();
