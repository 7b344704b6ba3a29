/* crisis banner: shows the current alert on another website (e.g. the municipality's own).
 *
 *   <script src="https://<crisis host>/embed.js" async></script>
 *   optional: data-lang="en", data-target="element-id" (where to put the banner),
 *             data-poll-seconds="60" (0: look once)
 *
 * Reads <crisis host>/status.json (CORS), nothing else; no cookies, no third parties. Builds its
 * DOM with createElement/textContent only, so no text from the feed is ever parsed as HTML. Shows
 * nothing when there is no active incident. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !window.fetch) { return; }
  var origin = new URL(script.src, window.location.href).origin;
  var lang = script.getAttribute("data-lang") || "nl";
  var targetId = script.getAttribute("data-target");
  var poll = parseFloat(script.getAttribute("data-poll-seconds"));
  if (isNaN(poll)) { poll = 60; }
  var words = {
    nl: { label: "Actuele crisisinformatie", more: "Lees meer en wat u moet doen" },
    en: { label: "Current crisis information", more: "Read more and what to do" }
  }[lang === "en" ? "en" : "nl"];
  var banner = null;

  function el(tag, text, style) {
    var node = document.createElement(tag);
    if (text) { node.textContent = text; }
    for (var key in style || {}) { node.style[key] = style[key]; }
    return node;
  }

  function place(node) {
    var target = targetId && document.getElementById(targetId);
    if (target) { target.appendChild(node); return; }
    if (script.parentNode && script.parentNode !== document.head) {
      script.parentNode.insertBefore(node, script);
    } else {
      document.body.insertBefore(node, document.body.firstChild);
    }
  }

  function textOf(item) {
    var latest = item.latest || {};
    var translated = latest.translations && latest.translations[lang];
    if (lang !== item.language && translated) { return { text: translated, lang: lang }; }
    return { text: latest.instruction || latest.text || "", lang: item.language || "nl" };
  }

  function show(items) {
    var box = el("div", null, {
      background: "#b3261e", color: "#ffffff", padding: "12px 16px", margin: "0 0 12px",
      fontFamily: "system-ui, sans-serif", fontSize: "16px", lineHeight: "1.5", borderRadius: "4px"
    });
    box.setAttribute("role", "region");
    box.setAttribute("aria-label", words.label);
    box.setAttribute("lang", lang);
    box.setAttribute("data-crisis-banner", "");
    for (var i = 0; i < items.length; i++) {
      var item = items[i];
      var title = el("strong", item.title, { display: "block", fontSize: "18px" });
      title.setAttribute("lang", item.language || "nl");
      var body = textOf(item);
      var text = el("p", body.text, { margin: "4px 0" });
      text.setAttribute("lang", body.lang);
      var link = el("a", words.more, { color: "#ffffff", fontWeight: "bold", textDecoration: "underline" });
      link.href = item.url + (lang === "nl" ? "" : "?lang=" + encodeURIComponent(lang));
      box.appendChild(title);
      box.appendChild(text);
      box.appendChild(link);
    }
    if (banner && banner.parentNode) { banner.parentNode.replaceChild(box, banner); } else { place(box); }
    banner = box;
  }

  function clear() {
    if (banner && banner.parentNode) { banner.parentNode.removeChild(banner); }
    banner = null;
  }

  function load() {
    fetch(origin + "/status.json", { credentials: "omit", cache: "no-cache" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (status) {
        if (!status) { return; }
        var active = (status.incidents || []).filter(function (item) { return item.status === "active"; });
        if (active.length) { show(active); } else { clear(); }
      })
      .catch(function () { /* the page stays as it is */ })
      .then(function () { if (poll > 0) { window.setTimeout(load, poll * 1000); } });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", load);
  } else {
    load();
  }
})();
