// For approvers and admins, on every console page: a message waiting for approval is announced
// (a toast with a link to the queue, a short beep, a desktop notification when allowed), and the
// top bar's count follows the server (GET /api/v1/approvals) on every event and reconnect.
(function () {
  "use strict";
  const toasts = document.getElementById("toasts");
  const counter = document.getElementById("approvals-count");
  const notifyButton = document.getElementById("notify-me");
  const socket = window.crisisSocket;
  const myId = Number(document.body.dataset.userId);
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  if (!toasts) return;
  const S = toasts.dataset;

  function fmt(template, values) {
    return String(template).replace(/\{(\w+)\}/g, (all, key) => (key in values ? String(values[key]) : all));
  }

  async function getJson(path) {
    try {
      const response = await fetch(path, {
        credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRFToken": csrfMeta ? csrfMeta.content : "" },
      });
      return response.ok ? await response.json() : null;
    } catch (err) {
      return null;
    }
  }

  // ---- the count in the top bar

  let countTimer = null;
  async function refreshCount() {
    const data = await getJson("/api/v1/approvals");
    if (!data) return;
    if (counter) {
      counter.textContent = String(data.count);
      counter.dataset.count = String(data.count);
      counter.setAttribute("aria-label", fmt(counter.dataset.label || "{count}", { count: data.count }));
    }
    // A toast for a message someone has meanwhile approved or rejected is no longer news.
    const waiting = new Set((data.message_ids || []).map(String));
    for (const toast of toasts.querySelectorAll(".toast[data-message-id]")) {
      if (!waiting.has(toast.dataset.messageId)) toast.remove();
    }
  }
  function scheduleCount(delay) {
    clearTimeout(countTimer);
    countTimer = setTimeout(refreshCount, delay);
  }

  // ---- sound: a short two-tone beep, made on the spot (no file to download)

  let audio = null;
  function unlockAudio() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return;
    if (!audio) audio = new Context();
    if (audio.state === "suspended") audio.resume();
  }
  // Browsers only start sound after a user gesture: the first click or key press unlocks it.
  document.addEventListener("pointerdown", unlockAudio, { once: true, capture: true });
  document.addEventListener("keydown", unlockAudio, { once: true, capture: true });

  function beep() {
    if (!audio || audio.state !== "running") return;
    const start = audio.currentTime;
    [880, 1320].forEach((frequency, i) => {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.type = "sine";
      osc.frequency.value = frequency;
      const at = start + i * 0.18;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.3, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.16);
      osc.connect(gain).connect(audio.destination);
      osc.start(at);
      osc.stop(at + 0.17);
    });
  }

  // ---- desktop notifications, asked for after a click on "Notify me"

  function updateNotifyButton() {
    if (!notifyButton) return;
    notifyButton.hidden = !("Notification" in window) || Notification.permission !== "default";
  }
  if (notifyButton) {
    notifyButton.addEventListener("click", async () => {
      unlockAudio();
      if (!("Notification" in window)) return;
      try { await Notification.requestPermission(); } catch (err) { /* older API: ignored */ }
      updateNotifyButton();
    });
    updateNotifyButton();
  }

  // ---- the toast

  function toast(payload, message, incident) {
    const id = payload.message_id;
    const href = `${S.approvalsUrl}#approval-${id}`;
    for (const old of toasts.querySelectorAll(`.toast[data-message-id="${id}"]`)) old.remove();
    const node = document.createElement("div");
    node.className = "toast";
    node.setAttribute("role", "alert");
    node.dataset.messageId = String(id);
    const title = document.createElement("strong");
    title.textContent = S.title;
    node.append(title);
    if (incident) {
      const line = document.createElement("p");
      const badge = document.createElement("span");
      const drill = incident.mode === "drill";
      badge.className = "badge " + (drill ? "drill" : "live");
      badge.textContent = drill ? S.drill : S.live;
      line.append(badge, " ", fmt(S.incident, { title: incident.title }));
      node.append(line);
    }
    if (message && message.body) {
      const body = document.createElement("p");
      body.className = "toast-body";
      body.textContent = message.body.length > 140 ? message.body.slice(0, 140) + "…" : message.body;
      node.append(body);
    }
    const actions = document.createElement("div");
    actions.className = "toast-actions";
    const link = document.createElement("a");
    link.className = "button primary";
    link.href = href;
    link.textContent = S.open;
    link.addEventListener("click", (event) => {
      // Already on the queue: only the hash would change, and the new message is not on the page.
      if (window.location.pathname === S.approvalsUrl) {
        event.preventDefault();
        window.location.hash = "approval-" + id;
        window.location.reload();
      }
    });
    const close = document.createElement("button");
    close.type = "button";
    close.textContent = S.dismiss;
    close.addEventListener("click", () => node.remove());
    actions.append(link, close);
    node.append(actions);
    toasts.prepend(node);

    if ("Notification" in window && Notification.permission === "granted") {
      try {
        const shown = new Notification(S.title, {
          body: incident ? fmt(S.incident, { title: incident.title }) : "",
          tag: "approval-" + id,
        });
        shown.addEventListener("click", () => { window.focus(); window.location.href = href; });
      } catch (err) { /* some platforms only allow notifications from a service worker */ }
    }
  }

  async function onApprovalRequested(payload) {
    scheduleCount(0);
    if (!payload || !payload.message_id) return;
    const [message, incident] = await Promise.all([
      getJson(`/api/v1/messages/${payload.message_id}`),
      payload.incident_id ? getJson(`/api/v1/incidents/${payload.incident_id}`) : null,
    ]);
    // The author cannot approve their own message: no point calling them.
    if (message && message.author_id === myId) return;
    if (message && message.state && message.state !== "pending_approval") return;
    toast(payload, message, incident);
    beep();
  }

  if (socket) {
    socket.on("approval.requested", onApprovalRequested);
    socket.on("message.updated", () => scheduleCount(300));
    socket.on("connect", () => scheduleCount(0));
  }
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") scheduleCount(0);
  });
})();
