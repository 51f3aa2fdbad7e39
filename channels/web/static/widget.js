/* chatbook web chat widget. Plain JS, no dependencies, no build step.
 *
 * Embed: <script src="https://HOST/widget/SHOP.js" async></script>
 * The script finds its server origin and shop from its own URL, draws a chat bubble in a
 * shadow root (styles cannot leak either way) and talks to wss://HOST/widget/SHOP/ws.
 * Every text from the customer or the server is rendered with textContent, never as HTML.
 * Protocol: see channels/web/__init__.py.
 */
(function () {
  "use strict";

  var CONFIG = /*CHATBOOK_CONFIG*/null;

  // --------------------------------------------------------------- where we come from
  var script = document.currentScript;
  if (!script || !/\/widget\/[^/]+\.js/.test(script.src || "")) {
    script = null;
    var all = document.getElementsByTagName("script");
    for (var i = all.length - 1; i >= 0; i--) {
      if (/\/widget\/[^/?#]+\.js(\?|#|$)/.test(all[i].src || "")) { script = all[i]; break; }
    }
  }
  if (!script) return;
  var srcUrl = new URL(script.src, document.baseURI);
  var ORIGIN = srcUrl.origin;
  var SHOP = (CONFIG && CONFIG.shop) || decodeURIComponent(srcUrl.pathname.replace(/^.*\/widget\/([^/]+)\.js$/, "$1"));
  var KIND = (CONFIG && CONFIG.kind) || "other";
  var HOST_ID = "chatbook-widget-" + SHOP;
  if (document.getElementById(HOST_ID)) return; // embedded twice

  // --------------------------------------------------------------- UI language
  function pickLang() {
    var tag = (document.documentElement.getAttribute("lang") || navigator.language || "en").toLowerCase();
    return tag.indexOf("zh") === 0 ? "zh" : "en";
  }
  var LANG = pickLang();
  var UI = {
    zh: {
      open: "打开聊天", openUnread: "打开聊天（有新消息）", close: "关闭聊天", send: "发送",
      placeholder: "输入消息…", input: "消息",
      connecting: "正在连接…", reconnecting: "连接中断，正在重连…", sending: "发送中…",
      typing: "正在输入", quick: "快捷回复", log: "聊天记录", you: "我", dialog: "与{shop}聊天",
      err_busy: "消息太多了，请稍等。", err_failed: "出了点问题，请再试一次。",
      err_generic: "消息无法发送。", today: "今天"
    },
    en: {
      open: "Open chat", openUnread: "Open chat (new message)", close: "Close chat", send: "Send",
      placeholder: "Type a message…", input: "Message",
      connecting: "Connecting…", reconnecting: "Connection lost, reconnecting…", sending: "Sending…",
      typing: "Typing", quick: "Quick replies", log: "Chat messages", you: "You", dialog: "Chat with {shop}",
      err_busy: "Too many messages at once, please wait a moment.", err_failed: "Something went wrong, please try again.",
      err_generic: "The message could not be sent.", today: "Today"
    }
  }[LANG];
  var SHOP_NAME = (CONFIG && CONFIG.name && CONFIG.name[LANG]) || SHOP;

  // --------------------------------------------------------------- storage (may be unavailable)
  var TOKEN_KEY = "chatbook:" + SHOP + ":token";
  var memory = {};
  function load(key) {
    try { return window.localStorage.getItem(key); } catch (e) { return memory[key] || null; }
  }
  function save(key, value) {
    try { window.localStorage.setItem(key, value); } catch (e) { memory[key] = value; }
  }

  // --------------------------------------------------------------- DOM helpers
  function el(tag, cls, attrs) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (attrs) for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) node.setAttribute(k, attrs[k]);
    return node;
  }
  var SVG_NS = "http://www.w3.org/2000/svg";
  function icon(name) {
    var shapes = ICONS[name];
    var svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    for (var i = 0; i < shapes.length; i++) {
      var shape = document.createElementNS(SVG_NS, shapes[i][0]);
      for (var k in shapes[i][1]) shape.setAttribute(k, shapes[i][1][k]);
      svg.appendChild(shape);
    }
    return svg;
  }
  var STROKE = { fill: "none", stroke: "currentColor", "stroke-width": "2", "stroke-linecap": "round", "stroke-linejoin": "round" };
  function s(extra) { var o = {}; for (var k in STROKE) o[k] = STROKE[k]; for (var j in extra) o[j] = extra[j]; return o; }
  var ICONS = {
    chat: [["path", { fill: "currentColor", d: "M12 3C6.5 3 2 6.9 2 11.6c0 2.4 1.2 4.6 3.1 6.1-.2 1.3-.8 2.6-1.8 3.6 2 0 3.8-.7 5.1-1.7 1.1.3 2.3.5 3.6.5 5.5 0 10-3.9 10-8.6S17.5 3 12 3z" }]],
    close: [["path", s({ d: "M6 6l12 12M18 6L6 18" })]],
    send: [["path", { fill: "currentColor", d: "M3.4 20.4l17.5-7.5a1 1 0 000-1.8L3.4 3.6a1 1 0 00-1.4 1.1L3.9 11l8.1 1-8.1 1-1.9 6.3a1 1 0 001.4 1.1z" }]],
    paw: [
      ["ellipse", { fill: "currentColor", cx: "12", cy: "16", rx: "5", ry: "4.2" }],
      ["ellipse", { fill: "currentColor", cx: "5.2", cy: "10.6", rx: "2", ry: "2.5" }],
      ["ellipse", { fill: "currentColor", cx: "9.2", cy: "6.4", rx: "2", ry: "2.6" }],
      ["ellipse", { fill: "currentColor", cx: "14.8", cy: "6.4", rx: "2", ry: "2.6" }],
      ["ellipse", { fill: "currentColor", cx: "18.8", cy: "10.6", rx: "2", ry: "2.5" }]
    ],
    glasses: [
      ["circle", s({ cx: "6.5", cy: "14", r: "3.8" })],
      ["circle", s({ cx: "17.5", cy: "14", r: "3.8" })],
      ["path", s({ d: "M10.3 13.4c1.1-.8 2.3-.8 3.4 0M2.7 13L4.5 6.5M21.3 13l-1.8-6.5" })]
    ],
    shop: [["path", s({ d: "M4 10v10h16V10M3 10l2-6h14l2 6M9 20v-5h6v5" })]]
  };

  // --------------------------------------------------------------- build the widget
  var host = el("div", null, { id: HOST_ID });
  host.style.position = "static";
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  var frame = el("div", "cb cb-theme-" + KIND, { lang: LANG });
  frame.style.display = "none"; // until our stylesheet has loaded
  var css = el("link", null, { rel: "stylesheet", href: ORIGIN + "/widget/" + encodeURIComponent(SHOP) + ".css" });
  css.addEventListener("load", function () { frame.style.display = ""; });
  css.addEventListener("error", function () { frame.style.display = ""; });
  root.appendChild(css);
  root.appendChild(frame);

  var bubble = el("button", "cb-launcher", { type: "button", "aria-label": UI.open, "aria-expanded": "false", "aria-controls": "cb-panel" });
  bubble.appendChild(icon("chat"));
  var badge = el("span", "cb-badge", { "aria-hidden": "true" });
  badge.hidden = true;
  bubble.appendChild(badge);

  var panel = el("section", "cb-panel", { id: "cb-panel", role: "dialog", "aria-label": UI.dialog.replace("{shop}", SHOP_NAME) });
  panel.hidden = true;

  var header = el("header", "cb-header");
  var avatar = el("span", "cb-avatar", { "aria-hidden": "true" });
  avatar.appendChild(icon(KIND === "pet" ? "paw" : KIND === "optician" ? "glasses" : "shop"));
  var titles = el("div", "cb-titles");
  var title = el("h2", "cb-title");
  title.textContent = SHOP_NAME;
  var status = el("p", "cb-status", { role: "status" });
  status.textContent = UI.connecting;
  titles.appendChild(title);
  titles.appendChild(status);
  var closeBtn = el("button", "cb-close", { type: "button", "aria-label": UI.close });
  closeBtn.appendChild(icon("close"));
  header.appendChild(avatar);
  header.appendChild(titles);
  header.appendChild(closeBtn);

  var log = el("div", "cb-log", { role: "log", "aria-live": "polite", "aria-label": UI.log, tabindex: "-1" });
  var typing = el("div", "cb-typing", { role: "status", "aria-label": UI.typing });
  typing.appendChild(el("span"));
  typing.appendChild(el("span"));
  typing.appendChild(el("span"));
  typing.hidden = true;
  var quick = el("div", "cb-quick", { role: "group", "aria-label": UI.quick });
  quick.hidden = true;

  var form = el("form", "cb-compose");
  var input = el("textarea", "cb-input", { rows: "1", maxlength: "2000", placeholder: UI.placeholder, "aria-label": UI.input, enterkeyhint: "send" });
  var sendBtn = el("button", "cb-send", { type: "submit", "aria-label": UI.send });
  sendBtn.appendChild(icon("send"));
  form.appendChild(input);
  form.appendChild(sendBtn);

  panel.appendChild(header);
  panel.appendChild(log);
  panel.appendChild(typing);
  panel.appendChild(quick);
  panel.appendChild(form);
  var backdrop = el("div", "cb-backdrop", { "aria-hidden": "true" }); // phones: dims the page under the sheet
  frame.appendChild(backdrop);
  frame.appendChild(panel);
  frame.appendChild(bubble);

  function attach() { (document.body || document.documentElement).appendChild(host); }
  if (document.body) attach(); else document.addEventListener("DOMContentLoaded", attach);

  // --------------------------------------------------------------- rendering messages
  var timeFmt = new Intl.DateTimeFormat(LANG === "zh" ? "zh-CN" : "en-GB", { hour: "2-digit", minute: "2-digit" });
  var dayFmt = new Intl.DateTimeFormat(LANG === "zh" ? "zh-CN" : "en-GB", { month: "short", day: "numeric" });
  function stamp(iso) {
    var when = iso ? new Date(iso) : new Date();
    if (isNaN(when.getTime())) when = new Date();
    var now = new Date();
    var sameDay = when.toDateString() === now.toDateString();
    var node = el("time", "cb-time", { datetime: when.toISOString() });
    node.textContent = (sameDay ? "" : dayFmt.format(when) + " ") + timeFmt.format(when);
    return node;
  }
  function safeUrl(url) {
    if (typeof url !== "string") return null;
    try {
      var parsed = new URL(url, ORIGIN);
      return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
    } catch (e) { return null; }
  }
  var URL_RE = /https?:\/\/[^\s<>"'）)]+/g;
  function appendText(parent, text) {
    // plain text with URLs turned into links; every piece goes in as a text node
    var last = 0, match;
    URL_RE.lastIndex = 0;
    while ((match = URL_RE.exec(text)) !== null) {
      if (match.index > last) parent.appendChild(document.createTextNode(text.slice(last, match.index)));
      var href = safeUrl(match[0]);
      if (href) {
        var a = el("a", null, { href: href, target: "_blank", rel: "noopener noreferrer" });
        a.textContent = match[0];
        parent.appendChild(a);
      } else {
        parent.appendChild(document.createTextNode(match[0]));
      }
      last = match.index + match[0].length;
    }
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
  }
  function scrollDown() { log.scrollTop = log.scrollHeight; }

  function renderMessage(m) {
    var mine = m.from === "customer";
    var row = el("div", "cb-msg " + (mine ? "cb-msg--me" : "cb-msg--shop"));
    var body = el("div", "cb-text");
    if (typeof m.image_url === "string" && safeUrl(m.image_url)) {
      var img = el("img", "cb-image", { src: safeUrl(m.image_url), alt: "", loading: "lazy" });
      img.addEventListener("load", scrollDown);
      body.appendChild(img);
    }
    if (typeof m.text === "string" && m.text) {
      var p = el("p");
      appendText(p, m.text);
      body.appendChild(p);
    }
    if (m.link && m.link.length === 2 && safeUrl(m.link[1])) {
      var a = el("a", "cb-link", { href: safeUrl(m.link[1]), target: "_blank", rel: "noopener noreferrer" });
      a.textContent = String(m.link[0] || m.link[1]);
      body.appendChild(a);
    }
    row.appendChild(body);
    row.appendChild(stamp(m.at));
    log.appendChild(row);
    return row;
  }

  var focusButtons = false;
  function showButtons(buttons) {
    while (quick.firstChild) quick.removeChild(quick.firstChild);
    var list = Array.isArray(buttons) ? buttons : [];
    for (var i = 0; i < list.length; i++) {
      var b = list[i];
      if (!b || typeof b.payload !== "string") continue;
      var btn = el("button", "cb-chip", { type: "button" });
      btn.textContent = String(b.label || b.payload);
      btn.addEventListener("click", press.bind(null, b.payload, String(b.label || "")));
      quick.appendChild(btn);
    }
    quick.hidden = !quick.firstChild;
    if (!quick.hidden && focusButtons && !panel.hidden) {
      var active = root.activeElement;
      if (!active || active === log) quick.firstChild.focus();
    }
    focusButtons = false;
  }

  function showMessages(messages, replace) {
    if (replace) while (log.firstChild) log.removeChild(log.firstChild);
    var buttons = null;
    for (var i = 0; i < messages.length; i++) {
      renderMessage(messages[i]);
      buttons = messages[i].from === "customer" ? [] : (messages[i].buttons || []);
    }
    if (buttons !== null) showButtons(buttons);
    scrollDown();
    if (panel.hidden && !replace && messages.length) setUnread(true);
  }

  function notice(text) {
    var row = el("div", "cb-notice", { role: "alert" });
    row.textContent = text;
    log.appendChild(row);
    scrollDown();
  }

  function setUnread(on) {
    badge.hidden = !on;
    bubble.setAttribute("aria-label", on ? UI.openUnread : UI.open);
  }

  // --------------------------------------------------------------- the connection
  var ws = null, connected = false, started = false, attempts = 0, retryTimer = null, firstHistory = true;
  var pending = []; // frames sent but not answered yet: {frame, row}

  function wsUrl() {
    return ORIGIN.replace(/^http/, "ws") + "/widget/" + encodeURIComponent(SHOP) + "/ws";
  }
  function newId() {
    var bytes = new Uint8Array(12);
    (window.crypto || window.msCrypto).getRandomValues(bytes);
    var out = "";
    for (var i = 0; i < bytes.length; i++) out += ("0" + bytes[i].toString(16)).slice(-2);
    return out;
  }
  // online: the socket is up; shopOpen: the shop is open now (its hours, told by the server).
  function setStatus(text, online, shopOpen) {
    status.textContent = text;
    frame.classList.toggle("cb-offline", !online);
    frame.classList.toggle("cb-closed", online && shopOpen === false);
  }

  function connect() {
    if (ws) return;
    started = true;
    clearTimeout(retryTimer);
    retryTimer = null;
    var socket;
    try { socket = new WebSocket(wsUrl()); } catch (e) { scheduleReconnect(); return; }
    ws = socket;
    socket.onopen = function () {
      socket.send(JSON.stringify({ type: "hello", token: load(TOKEN_KEY), lang: LANG }));
    };
    socket.onmessage = function (event) {
      var data;
      try { data = JSON.parse(event.data); } catch (e) { return; }
      if (data && typeof data.type === "string") onFrame(data);
    };
    socket.onclose = function () {
      if (ws !== socket) return;
      ws = null;
      connected = false;
      typing.hidden = true;
      setStatus(UI.reconnecting, false);
      scheduleReconnect();
    };
    socket.onerror = function () { /* onclose follows */ };
  }

  function scheduleReconnect() {
    if (retryTimer) return;
    var delay = Math.min(20000, 500 * Math.pow(2, attempts)) * (0.75 + Math.random() * 0.5);
    attempts += 1;
    retryTimer = setTimeout(function () { retryTimer = null; connect(); }, delay);
  }
  function reconnectNow() {
    if (!started || ws) return;
    attempts = 0;
    clearTimeout(retryTimer);
    retryTimer = null;
    connect();
  }
  window.addEventListener("online", reconnectNow);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) reconnectNow(); });

  function onFrame(data) {
    switch (data.type) {
      case "welcome":
        if (typeof data.token === "string") save(TOKEN_KEY, data.token);
        connected = true;
        attempts = 0;
        // The shop's own words for now: "Online", or closed and when it opens (server texts).
        setStatus(typeof data.status === "string" ? data.status : "", true, data.open !== false);
        return;
      case "history":
        // First load, or a reconnect with nothing in flight: show the server's transcript.
        // With messages in flight after a reconnect we keep what is shown and resend them
        // (same ids): their replies then arrive once (a repeat gets the stored reply).
        if (firstHistory || !pending.length) {
          showMessages(Array.isArray(data.messages) ? data.messages : [], true);
          for (var i = 0; i < pending.length; i++) log.appendChild(pending[i].row);
          if (pending.length) showButtons([]);
          scrollDown();
        }
        firstHistory = false;
        // Frames the server acknowledged are stored there: their replies come with the history
        // or pushed, so only unacknowledged ones are sent again.
        for (var j = 0; j < pending.length; j++) if (!pending[j].acked) ws.send(JSON.stringify(pending[j].frame));
        if (pending.length) typing.hidden = false;
        return;
      case "ack":
        for (var k = 0; k < pending.length; k++) if (pending[k].frame.id === data.id) pending[k].acked = true;
        return;
      case "typing":
        typing.hidden = false;
        scrollDown();
        return;
      case "reply":
        settle(data.in_reply_to, data.received_at);
        typing.hidden = !pending.length;
        showMessages(Array.isArray(data.messages) ? data.messages : [], false);
        return;
      case "push":
        for (var q = pending.length - 1; q >= 0; q--) if (pending[q].acked) settle(pending[q].frame.id);
        typing.hidden = !pending.length;
        showMessages(Array.isArray(data.messages) ? data.messages : [], false);
        return;
      case "error":
        onError(data);
        return;
    }
  }

  function settle(id, at) {
    for (var i = 0; i < pending.length; i++) {
      if (pending[i].frame.id === id) {
        var row = pending[i].row;
        row.classList.remove("cb-pending");
        if (typeof at === "string") row.replaceChild(stamp(at), row.lastChild); // the server's time
        pending.splice(i, 1);
        return;
      }
    }
  }

  function onError(data) {
    if (data.code === "busy" && data.in_reply_to) {
      setTimeout(function () {
        for (var i = 0; i < pending.length; i++) {
          if (pending[i].frame.id === data.in_reply_to && ws && connected) ws.send(JSON.stringify(pending[i].frame));
        }
      }, 1500);
      return;
    }
    if (data.in_reply_to) {
      for (var j = 0; j < pending.length; j++) {
        if (pending[j].frame.id === data.in_reply_to) pending[j].row.classList.add("cb-failed");
      }
      settle(data.in_reply_to);
    }
    typing.hidden = !pending.length;
    var limited = (data.code === "rate_limited" || data.code === "too_many_sessions") && typeof data.message === "string";
    notice(limited ? data.message : data.code === "failed" ? UI.err_failed : UI.err_generic);
  }

  function transmit(frameOut, label) {
    var row = renderMessage({ from: "customer", text: label });
    row.classList.add("cb-pending");
    pending.push({ frame: frameOut, row: row });
    showButtons([]);
    scrollDown();
    if (ws && connected) {
      ws.send(JSON.stringify(frameOut));
      typing.hidden = false;
    } else {
      connect();
    }
  }

  function press(payload, label) {
    var fromKeyboard = root.activeElement && quick.contains(root.activeElement);
    transmit({ type: "press", id: newId(), payload: payload, label: label }, label || payload);
    if (fromKeyboard) { focusButtons = true; log.focus({ preventScroll: true }); }
  }

  function sendTyped() {
    var text = input.value.trim();
    if (!text) return;
    input.value = "";
    autosize();
    transmit({ type: "message", id: newId(), text: text.slice(0, 2000) }, text.slice(0, 2000));
  }

  // --------------------------------------------------------------- open / close, keys
  var lastFocus = null;
  function open() {
    if (!panel.hidden) return;
    lastFocus = document.activeElement;
    panel.hidden = false;
    frame.classList.add("cb-open");
    bubble.setAttribute("aria-expanded", "true");
    setUnread(false);
    connect();
    scrollDown();
    input.focus({ preventScroll: true });
  }
  function close() {
    if (panel.hidden) return;
    panel.hidden = true;
    frame.classList.remove("cb-open");
    bubble.setAttribute("aria-expanded", "false");
    bubble.focus();
  }
  bubble.addEventListener("click", function () { if (panel.hidden) open(); else close(); });
  closeBtn.addEventListener("click", close);
  backdrop.addEventListener("click", close);
  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape") { event.preventDefault(); close(); }
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      sendTyped();
    }
  });
  function autosize() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 120) + "px";
    input.style.overflowY = input.scrollHeight > 120 ? "auto" : "hidden";
  }
  input.addEventListener("input", autosize);
  form.addEventListener("submit", function (event) { event.preventDefault(); sendTyped(); input.focus(); });

  // A returning visitor reconnects at once so messages from the shop reach the open page.
  if (load(TOKEN_KEY)) connect();
})();
