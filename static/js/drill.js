// The incident page's runbook panel: checklist timers and live updates, templates into the
// composer in one click. Everything is built with textContent (no HTML from data).
(function () {
  "use strict";
  var panel = document.getElementById("drill-panel");
  if (!panel) return;

  function markOverdue() {
    var now = Date.now();
    var first = null;
    panel.querySelectorAll(".step").forEach(function (step) {
      var overdue = step.dataset.done === "no" && Date.parse(step.dataset.due) < now;
      step.classList.toggle("overdue", overdue);
      if (overdue && !first) first = step;
    });
    var notice = document.getElementById("next-overdue");
    if (notice) {
      notice.hidden = !first;
      notice.textContent = first ? "⚠ " + first.querySelector(".title").textContent : "";
    }
  }

  function applyChecklist(data) {
    (data.items || []).forEach(function (item) {
      var step = panel.querySelector('.step[data-step-id="' + CSS.escape(item.step_id) + '"]');
      if (!step) return;
      step.dataset.done = item.done_at ? "yes" : "no";
      var button = step.querySelector("button.check");
      if (button) {
        button.textContent = item.done_at ? "✓" : "○";
        button.setAttribute("aria-pressed", item.done_at ? "true" : "false");
        step.querySelector('input[name="done"]').value = item.done_at ? "0" : "1";
      }
    });
    markOverdue();
  }

  function reloadChecklist() {
    fetch(panel.dataset.checklistUrl, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) applyChecklist(data); });
  }

  function setField(selector, value) {
    var field = document.querySelector(selector);
    if (!field || value == null) return;
    field.value = value;
    field.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function useTemplate(template) {
    setField("#c-body", template.body);
    setField("#c-translation", template.en || "");
    ["x", "facebook", "sms", "website"].forEach(function (channel) {
      setField("#c-override-" + channel, (template.variants || {})[channel] || "");
    });
    if (template.kind) setField("#c-kind", template.kind);
    var body = document.getElementById("c-body");
    if (body) body.focus();
  }

  function showTemplates(data) {
    var list = document.getElementById("templates");
    if (!list) return;
    (data.templates || []).concat(data.follow_ups || []).forEach(function (template) {
      var item = document.createElement("li");
      var button = document.createElement("button");
      button.type = "button";
      button.className = "use-template";
      button.dataset.templateId = template.id;
      button.textContent = (template.title || template.theme || template.id);
      button.addEventListener("click", function () { useTemplate(template); });
      var text = document.createElement("span");
      text.className = "muted template-text";
      text.textContent = template.body;
      item.appendChild(button);
      item.appendChild(text);
      list.appendChild(item);
    });
  }

  if (panel.dataset.templatesUrl && document.getElementById("templates")) {
    fetch(panel.dataset.templatesUrl, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : {}; })
      .then(showTemplates);
  }
  markOverdue();
  setInterval(markOverdue, 15000);
  document.addEventListener("crisis:joined", function () {
    var socket = window.crisisSocket;
    if (!socket || socket.__checklistBound) return;
    socket.__checklistBound = true;
    socket.on("checklist.updated", applyChecklist);
    socket.on("drill.updated", function () { /* counts are shown on reload */ });
    socket.on("connect", reloadChecklist);
  });
})();
