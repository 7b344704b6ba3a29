/* The public pages, refreshed without a reload: poll /status.json (small, cacheable, ETag'd) every
 * data-poll-seconds and, when its version differs from the page's, fetch this page again and swap
 * the main content, announcing it in the live region. No sockets. The pages are complete without
 * this script. Plain ES5 so it runs on old phones; no third-party requests. */
(function () {
  "use strict";
  var body = document.body;
  if (!body || !window.fetch || !window.DOMParser) { return; }
  var statusUrl = body.getAttribute("data-status-url");
  var version = body.getAttribute("data-version");
  var page = body.getAttribute("data-page");
  var seconds = parseFloat(body.getAttribute("data-poll-seconds")) || 30;
  var live = document.getElementById("live");
  var timer = null;
  var busy = false;
  if (!statusUrl || !live) { return; }

  function schedule() {
    // A little jitter, so a crowd that opened the page at once does not poll at once.
    var delay = seconds * 1000 * (0.9 + Math.random() * 0.2);
    timer = window.setTimeout(poll, delay);
  }

  function say(text, href, linkText) {
    while (live.firstChild) { live.removeChild(live.firstChild); }
    var p = document.createElement("p");
    p.textContent = text + " ";
    if (href) {
      var a = document.createElement("a");
      a.href = href;
      a.textContent = linkText;
      p.appendChild(a);
    }
    live.appendChild(p);
  }

  function refreshPage(newVersion) {
    return fetch(window.location.href, { cache: "no-cache", credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error("page " + response.status); }
        return response.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("content");
        var current = document.getElementById("content");
        if (!fresh || !current) { return; }
        current.parentNode.replaceChild(document.importNode(fresh, true), current);
        version = (doc.body && doc.body.getAttribute("data-version")) || newVersion;
        body.setAttribute("data-version", version);
        say(body.getAttribute("data-updated"));
      });
  }

  function changed(status) {
    if (page === "update" || page === "not-found") {
      // One update stays as it is; say that there is news and where.
      version = status.version;
      var target = body.getAttribute("data-incident-url") || "/";
      say(body.getAttribute("data-newer"), target, body.getAttribute("data-newer-link"));
      return Promise.resolve();
    }
    return refreshPage(status.version);
  }

  function done() {
    busy = false;
    schedule();
  }

  function poll() {
    timer = null;
    if (busy || document.hidden) { return; }  // a hidden page resumes on visibilitychange
    busy = true;
    fetch(statusUrl, { cache: "no-cache", credentials: "omit" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (status) {
        if (status && status.version && status.version !== version) { return changed(status); }
      })
      .catch(function () { /* offline or busy: try again at the next tick */ })
      .then(done, done);
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && timer === null && !busy) { poll(); }
  });
  schedule();
})();
