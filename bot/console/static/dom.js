/* chatbook staff console: the DOM and text helpers every console script shares (console.js,
 * records.js, reports.js, faq_learn.js), loaded first by templates/base.html. Plain JS, no
 * build step. Customer text is hostile input: `el` only ever writes it with textContent. */
(function () {
  "use strict";

  var STRINGS = {};
  try {
    STRINGS = JSON.parse(document.getElementById("cb-strings").textContent);
  } catch (e) { /* keys are shown instead */ }

  function has(key) { return Object.prototype.hasOwnProperty.call(STRINGS, key); }
  // The page's text for `key` ({name} placeholders filled from `vars`); the key when unknown.
  function t(key, vars) {
    var s = has(key) ? STRINGS[key] : key;
    if (vars) Object.keys(vars).forEach(function (k) { s = s.split("{" + k + "}").join(String(vars[k])); });
    return s;
  }
  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  // A {zh, en} name in the page's language (or a plain string as it is).
  function named(obj) {
    if (!obj) return "";
    if (typeof obj === "string") return obj;
    return obj[document.body.dataset.lang || "zh"] || obj.zh || obj.en || "";
  }

  window.chatbookDom = { strings: STRINGS, has: has, t: t, $: $, el: el, clear: clear, named: named };
})();
