// The incident page: the composer (one text, live per-channel previews, recipients and cost) above
// the incident's messages, whose channel chips change live. Socket.IO only notifies: the list is
// rebuilt from GET /api/v1/incidents/<id>/messages on load and on every (re)connect.
// Everything the team or the public wrote is put in the page with textContent, never as HTML.
(function () {
  "use strict";

  const page = JSON.parse(document.getElementById("incident-data").textContent);
  const T = JSON.parse(document.getElementById("i18n").textContent);
  const API = page.urls.api;
  const CHANNELS = ["x", "facebook", "sms", "website"];
  const incident = page.incident;
  const me = page.me;
  const lang = document.documentElement.lang || "nl";

  const store = new Map(); // message id -> message_json
  const users = Object.assign({}, page.users);
  const notices = new Map(); // message id -> {text, kind}: what an action on that card answered
  for (const m of page.messages || []) store.set(m.id, m);

  // ---------------------------------------------------------------- helpers

  const { fmt, el } = window.crisisDom;
  const api = (method, path, body) => window.crisisDom.api(API, method, path, body);

  function errorText(result) {
    if (result.status === 0) return T.network_error;
    return fmt(T.server_error, { error: (result.data && (result.data.error || result.data.detail)) || result.status });
  }

  // Times are stored in UTC and shown in Europe/Amsterdam, as everywhere in the console.
  let timeFormat;
  try {
    timeFormat = new Intl.DateTimeFormat(lang, {
      timeZone: "Europe/Amsterdam", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
    });
  } catch (err) {
    timeFormat = new Intl.DateTimeFormat(lang, { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
  }
  function timeEl(template, iso) {
    if (!iso) return null;
    const when = new Date(iso);
    if (Number.isNaN(when.getTime())) return null;
    return el("time", { datetime: iso, text: fmt(template, { time: timeFormat.format(when) }) });
  }

  function safeUrl(url) {
    if (!url) return null;
    try {
      const parsed = new URL(url, window.location.href);
      return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
    } catch (err) {
      return null;
    }
  }

  function person(id) {
    return id == null ? "" : users[String(id)] || "#" + id;
  }

  // ---------------------------------------------------------------- confirm dialog

  function confirmDialog(text, okLabel) {
    const dialog = document.getElementById("confirm-dialog");
    if (!dialog || typeof dialog.showModal !== "function") return Promise.resolve(window.confirm(text));
    dialog.querySelector("#confirm-text").textContent = text;
    dialog.querySelector("#confirm-ok").textContent = okLabel;
    dialog.returnValue = "";
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
      dialog.showModal();
      // The safe answer has the focus: Enter on a reflex does not stop a message.
      dialog.querySelector('button[value="cancel"]').focus();
    });
  }

  // ---------------------------------------------------------------- the message list

  const list = document.getElementById("message-list");
  const empty = document.getElementById("no-messages");

  const SMS_DONE = ["accepted", "sent", "delivered", "undelivered", "failed", "skipped", "cancelled"];
  function smsSettled(counts) {
    return counts ? SMS_DONE.reduce((sum, key) => sum + (counts[key] || 0), 0) : -1;
  }

  function upsert(message) {
    if (!message || message.incident_id !== incident.id) return;
    const known = store.get(message.id);
    // sms.progress may have told us more than a message.updated computed a moment earlier.
    if (known && known.sms && message.sms && smsSettled(known.sms) > smsSettled(message.sms) &&
        message.state === "sending") {
      message = Object.assign({}, message, { sms: known.sms });
    }
    store.set(message.id, message);
    renderList();
  }

  function renderList() {
    const ordered = [...store.values()].sort((a, b) => b.id - a.id);
    if (empty) empty.hidden = ordered.length > 0;
    const wanted = new Set(ordered.map((m) => String(m.id)));
    for (const node of [...list.children]) {
      if (!wanted.has(node.dataset.messageId)) node.remove();
    }
    ordered.forEach((message, index) => {
      const signature = JSON.stringify([message, notices.get(message.id) || null,
        person(message.author_id), person(message.approver_id)]);
      let node = list.querySelector(`:scope > li[data-message-id="${message.id}"]`);
      if (!node || node.crisisSignature !== signature) {
        const fresh = card(message);
        fresh.crisisSignature = signature;
        if (node) {
          const active = document.activeElement;
          const key = node.contains(active) && active.dataset ? active.dataset.focusKey : null;
          node.replaceWith(fresh);
          if (key) {
            const again = fresh.querySelector(`[data-focus-key="${key}"]`);
            if (again) again.focus();
          }
        }
        node = fresh;
      }
      // Move only what is out of place, so a focused card is not taken out of the page.
      if (list.children[index] !== node) list.insertBefore(node, list.children[index] || null);
    });
  }

  function card(m) {
    const header = el("header", { class: "msg-head" },
      el("span", { class: "kind", dataset: { kind: m.kind }, text: T.kinds[m.kind] || m.kind }),
      el("span", { class: "state", dataset: { state: m.state }, text: T.states[m.state] || m.state }),
      el("span", { class: "msg-id", text: "#" + m.id }),
      m.supersedes_id ? el("a", {
        class: "supersedes", href: "#message-" + m.supersedes_id,
        text: fmt(m.kind === "cancel" ? T.cancel_of : T.correction_of, { id: m.supersedes_id }),
      }) : null,
    );
    const body = el("p", { class: "msg-body", lang: m.language, text: m.body || "—" });
    const other = Object.entries(m.translations || {}).filter(([, text]) => text);
    const translations = other.map(([code, text]) => el("p", { class: "msg-translation", lang: code },
      el("span", { class: "lang-tag", text: code.toUpperCase() }), " ", text));

    const meta = el("p", { class: "msg-meta" });
    const metaParts = [
      m.author_id != null ? fmt(T.written_by, { name: person(m.author_id) }) : null,
      m.approver_id != null ? (m.break_glass ? T.break_glass : fmt(T.approved_by, { name: person(m.approver_id) })) : null,
      timeEl(T.created, m.created_at),
      timeEl(T.approved_at, m.approved_at),
      m.scheduled_for ? timeEl(T.scheduled_for, m.scheduled_for) : null,
      m.channels.includes("sms") && m.recipient_count ? fmt(T.recipients_count, { count: m.recipient_count }) : null,
    ].filter(Boolean);
    metaParts.forEach((part, i) => {
      if (i) meta.append(" · ");
      meta.append(part instanceof Node ? part : document.createTextNode(part));
    });

    const rejection = m.rejection_reason
      ? el("p", { class: "msg-rejection", text: fmt(T.rejected_because, { reason: m.rejection_reason }) })
      : null;
    const notice = notices.get(m.id);
    const noticeEl = notice ? el("p", { class: "msg-notice " + (notice.kind || ""), role: "status", text: notice.text }) : null;

    return el("li", {
      class: "msg", id: "message-" + m.id,
      dataset: { messageId: m.id, state: m.state, kind: m.kind },
    }, header, body, translations, meta, rejection, chips(m), noticeEl, actions(m));
  }

  function chips(m) {
    const ul = el("ul", { class: "chips", "aria-label": T.channels_label });
    for (const channel of CHANNELS.filter((c) => m.channels.includes(c))) {
      const delivery = (m.deliveries || []).find((d) => d.channel === channel);
      const state = delivery ? delivery.state : "planned";
      const parts = [
        el("span", { class: "chip-name", text: T.channel_names[channel] || channel }),
        el("span", { class: "chip-state", text: T.delivery_states[state] || state }),
      ];
      if (channel === "sms" && m.sms && m.sms.total) {
        const counts = m.sms;
        parts.push(el("progress", {
          class: "sms-progress", max: counts.total, value: counts.accepted_total,
          "aria-label": fmt(T.sms_progress, { done: counts.accepted_total, total: counts.total }),
        }));
        parts.push(el("span", { class: "chip-count", text: fmt(T.sms_progress, { done: counts.accepted_total, total: counts.total }) }));
        const lost = (counts.undelivered || 0) + (counts.failed || 0);
        if (lost) parts.push(el("span", { class: "chip-lost", text: fmt(T.sms_failed, { count: lost }) }));
      }
      const url = delivery && safeUrl(delivery.url);
      const attrs = {
        class: "chip", dataset: { channel, state },
        title: delivery && delivery.error ? delivery.error : (url ? T.open_post : null),
      };
      const chip = url
        ? el("a", Object.assign(attrs, { href: url, target: "_blank", rel: "noopener noreferrer" }), parts)
        : el("span", attrs, parts);
      ul.append(el("li", {}, chip, retryButton(m, delivery)));
    }
    return ul;
  }

  function retryButton(m, delivery) {
    if (!me.can_draft || !delivery || m.state === "stopped" || m.state === "withdrawn") return null;
    let offer = delivery.state === "failed" || delivery.state === "unknown";
    if (!offer && delivery.channel === "sms" && m.sms && ["sent", "partially_failed", "failed"].includes(m.state)) {
      offer = (m.sms.failed || 0) + (m.sms.unknown || 0) > 0;
    }
    if (!offer) return null;
    return el("button", {
      type: "button", class: "small retry", dataset: { focusKey: "retry-" + delivery.channel },
      text: T.retry, on: { click: () => retry(m, delivery) },
    });
  }

  function actions(m) {
    const box = el("div", { class: "msg-actions" });
    const button = (label, key, handler, cls) => el("button", {
      type: "button", class: cls || "", dataset: { focusKey: key }, text: label, on: { click: handler },
    });
    if (m.state === "pending_approval" && me.can_approve && m.author_id !== me.id) {
      box.append(el("a", { class: "button primary", href: page.urls.approvals + "#approval-" + m.id, text: T.approve }));
    }
    if (me.can_draft && !incident.closed) {
      if (["draft", "rejected", "pending_approval"].includes(m.state)) box.append(button(T.edit, "edit", () => edit(m)));
      if (m.state === "sending") box.append(button(T.stop, "stop", () => stop(m), "danger"));
      if (m.state === "scheduled") box.append(button(T.withdraw, "withdraw", () => withdraw(m), "danger"));
      // What landed can be corrected or cancelled, also after a stop (the rest never went out).
      const landed = (m.deliveries || []).some((d) => ["accepted", "delivered"].includes(d.state));
      if (m.state === "sent" || m.state === "partially_failed" || (m.state === "stopped" && landed)) {
        box.append(button(T.correct, "correct", () => followUp(m, "correct")));
        if (m.kind !== "cancel") box.append(button(T.cancel_message, "cancel", () => followUp(m, "cancel")));
      }
    }
    return box.childElementCount ? box : null;
  }

  function note(id, text, kind) {
    notices.set(id, { text, kind });
    renderList();
  }

  async function stop(m) {
    if (!(await confirmDialog(T.confirm_stop, T.stop))) return;
    const result = await api("POST", `/messages/${m.id}/stop`);
    if (!result.ok) return note(m.id, errorText(result), "error");
    const outcome = result.data;
    let text;
    if (outcome.withdrawn) {
      text = T.states.withdrawn;
    } else {
      const accepted = outcome.accepted || {};
      const what = CHANNELS.filter((c) => c !== "sms" && accepted[c]).map((c) => T.channel_names[c]);
      if (accepted.sms_recipients) what.push(fmt(T.sms_people, { count: accepted.sms_recipients }));
      text = what.length ? fmt(T.stopped_summary, { what: what.join(", ") }) : T.stopped_nothing;
    }
    notices.set(m.id, { text, kind: "warn" });
    upsert(outcome.message);
  }

  async function withdraw(m) {
    if (!(await confirmDialog(T.confirm_withdraw, T.withdraw))) return;
    const result = await api("POST", `/messages/${m.id}/withdraw`);
    if (!result.ok) return note(m.id, errorText(result), "error");
    notices.delete(m.id);
    upsert(result.data);
  }

  async function retry(m, delivery) {
    const channel = T.channel_names[delivery.channel] || delivery.channel;
    if (!(await confirmDialog(fmt(T.confirm_retry, { channel }), T.retry))) return;
    const result = await api("POST", `/deliveries/${delivery.id}/retry`);
    if (!result.ok) return note(m.id, errorText(result), "error");
    notices.delete(m.id);
    upsert(result.data);
  }

  async function edit(m) {
    if (!composer) return;
    if (!(await composer.mayReplace())) return;
    const result = await api("GET", `/messages/${m.id}`);
    if (!result.ok) return note(m.id, errorText(result), "error");
    upsert(result.data);
    composer.load(result.data);
  }

  async function followUp(m, action) {
    if (!composer) return;
    if (!(await composer.mayReplace())) return;
    const result = await api("POST", `/messages/${m.id}/${action}`);
    if (!result.ok) return note(m.id, errorText(result), "error");
    upsert(result.data);
    composer.load(result.data);
  }

  // ---------------------------------------------------------------- reloading from the server

  let reloadTimer = null;
  let reloading = null;
  async function reload() {
    if (reloading) return reloading;
    reloading = (async () => {
      const result = await api("GET", `/incidents/${incident.id}/messages`);
      if (result.ok) {
        Object.assign(users, result.data.users || {});
        store.clear();
        for (const message of result.data.messages || []) store.set(message.id, message);
        renderList();
      }
    })();
    try { await reloading; } finally { reloading = null; }
  }
  function scheduleReload(delay) {
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(reload, delay);
  }

  // ---------------------------------------------------------------- the composer

  const composer = (function () {
    const form = document.getElementById("composer");
    if (!form) return null;
    const $ = (selector) => form.querySelector(selector);
    const bodyEl = $("#c-body");
    const translationEl = $("#c-translation");
    const kindEl = $("#c-kind");
    const sendAtEl = $("#c-send-at");
    const heading = $("#composer-heading");
    const modeEl = $("#composer-mode");
    const noticeEl = $("#composer-notice");
    const statusEl = $("#composer-status");
    const newButton = $("#composer-new");
    const previewsEl = $("#previews");
    const recipientsEl = document.getElementById("recipients");
    const overrideEls = Object.fromEntries(CHANNELS.map((c) => [c, $(`#c-override-${c}`)]));
    const channelBoxes = [...form.querySelectorAll('input[name="channels"]')];
    const areaBoxes = [...form.querySelectorAll('input[name="area_ids"]')];
    const other = incident.other_language;

    let editing = null; // {id, version, kind, supersedes_id}
    let dirty = false;
    let busy = false;
    let lastSms = {}; // language -> segments, from the latest preview
    let recipients = null;

    const selectedChannels = () => channelBoxes.filter((b) => b.checked).map((b) => b.value);
    const selectedAreas = () => areaBoxes.filter((b) => b.checked).map((b) => Number(b.value));
    const isFollowUp = () => Boolean(editing && editing.supersedes_id);

    function status(text, kind) {
      statusEl.textContent = text || "";
      statusEl.dataset.kind = kind || "";
    }

    function showNotice(parts, kind) {
      noticeEl.replaceChildren(...parts);
      noticeEl.dataset.kind = kind || "";
      noticeEl.hidden = parts.length === 0;
    }

    // -- what is in the form

    function pad(n) { return String(n).padStart(2, "0"); }
    function localToIso(value) {
      // "2024-05-01T14:30" in the browser's zone -> ISO 8601 with that moment's offset.
      const when = new Date(value);
      if (Number.isNaN(when.getTime())) return value;
      const offset = -when.getTimezoneOffset();
      const sign = offset >= 0 ? "+" : "-";
      const abs = Math.abs(offset);
      return `${when.getFullYear()}-${pad(when.getMonth() + 1)}-${pad(when.getDate())}T` +
        `${pad(when.getHours())}:${pad(when.getMinutes())}:00${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
    }
    function isoToLocal(iso) {
      if (!iso) return "";
      const when = new Date(iso);
      if (Number.isNaN(when.getTime())) return "";
      return `${when.getFullYear()}-${pad(when.getMonth() + 1)}-${pad(when.getDate())}T${pad(when.getHours())}:${pad(when.getMinutes())}`;
    }

    function collect() {
      const overrides = {};
      for (const c of CHANNELS) if (overrideEls[c].value.trim()) overrides[c] = overrideEls[c].value;
      const fields = {
        body: bodyEl.value,
        translations: translationEl.value.trim() ? { [other]: translationEl.value } : {},
        overrides,
        scheduled_for: sendAtEl.value ? localToIso(sendAtEl.value) : null,
      };
      if (!isFollowUp()) {
        // A correction or cancel is bound to where the original went: those stay as they are.
        fields.channels = selectedChannels();
        fields.area_ids = selectedAreas();
        fields.kind = kindEl.value;
      }
      return fields;
    }

    function defaultKind() {
      return [...store.values()].some((m) => ["sent", "partially_failed", "sending"].includes(m.state)) ? "update" : "alert";
    }

    function lock(locked) {
      for (const box of channelBoxes.concat(areaBoxes)) box.disabled = locked;
      $("#c-channels-locked").hidden = !locked;
      for (const option of kindEl.options) {
        const followUpKind = option.value === "correction" || option.value === "cancel";
        option.hidden = followUpKind && !locked;
        option.disabled = followUpKind && !locked;
      }
      kindEl.disabled = locked;
    }

    function reset() {
      editing = null;
      dirty = false;
      form.reset();
      bodyEl.value = "";
      translationEl.value = "";
      for (const c of CHANNELS) overrideEls[c].value = "";
      channelBoxes.forEach((b) => { b.checked = true; });
      areaBoxes.forEach((b) => { b.checked = incident.area_ids.includes(Number(b.value)); });
      lock(false);
      kindEl.value = defaultKind();
      sendAtEl.value = "";
      heading.textContent = T.new_message;
      modeEl.textContent = "";
      newButton.hidden = true;
      showNotice([]);
      clearProblems();
      schedulePreview(0);
      scheduleRecipients(0);
    }

    function load(m) {
      editing = { id: m.id, version: m.version, kind: m.kind, supersedes_id: m.supersedes_id };
      dirty = false;
      bodyEl.value = m.body || "";
      translationEl.value = (m.translations || {})[other] || "";
      $("#c-translation-box").open = Boolean(translationEl.value);
      let anyOverride = false;
      for (const c of CHANNELS) {
        overrideEls[c].value = (m.overrides || {})[c] || "";
        overrideEls[c].closest("details").open = Boolean(overrideEls[c].value);
        anyOverride = anyOverride || Boolean(overrideEls[c].value);
      }
      $("#c-overrides").open = anyOverride;
      lock(Boolean(m.supersedes_id));
      channelBoxes.forEach((b) => { b.checked = m.channels.includes(b.value); });
      areaBoxes.forEach((b) => { b.checked = m.area_ids.includes(Number(b.value)); });
      kindEl.value = m.kind;
      sendAtEl.value = isoToLocal(m.scheduled_for);
      heading.textContent = m.supersedes_id
        ? fmt(m.kind === "cancel" ? T.editing_cancel : T.editing_correction, { id: m.supersedes_id })
        : fmt(T.editing, { id: m.id });
      modeEl.textContent = T.states[m.state] || m.state;
      newButton.hidden = false;
      clearProblems();
      showNotice(m.rejection_reason ? [el("strong", { text: fmt(T.rejected_because, { reason: m.rejection_reason }) })] : [],
        "error");
      status("");
      schedulePreview(0);
      scheduleRecipients(0);
      form.scrollIntoView({ block: "start", behavior: "smooth" });
      bodyEl.focus();
    }

    async function mayReplace() {
      const hasText = bodyEl.value.trim() || translationEl.value.trim();
      if (!dirty || !hasText) return true;
      return confirmDialog(T.discard_composer, T.discard);
    }

    // -- problems next to the fields

    function clearProblems() {
      for (const ul of document.querySelectorAll("#composer .problems, #previews .problems")) ul.replaceChildren();
      for (const field of form.querySelectorAll("[aria-invalid]")) field.removeAttribute("aria-invalid");
    }

    function problemList(field) {
      return form.querySelector(`.problems[data-field="${field}"]`) || form.querySelector('.problems[data-field="general"]');
    }

    function showProblems(error) {
      clearProblems();
      let first = null;
      for (const problem of String(error || "").split("; ").filter(Boolean)) {
        const match = /^(\w+)(?: \((\w+)\))?: (.*)$/.exec(problem);
        let field = "general";
        let text = problem;
        if (match) {
          const [, key, language, rest] = match;
          const tooLong = /too long \((\d+) of (\d+)\)/.exec(rest);
          if (key === "body") { field = "body"; if (rest === "empty") text = T.problem_body_empty; }
          else if (key === "channels") { field = "channels"; if (rest.startsWith("choose")) text = T.problem_channels; }
          else if (key === "areas" || key === "area_ids") { field = "areas"; if (rest.startsWith("SMS needs")) text = T.problem_areas; }
          else if (CHANNELS.includes(key)) {
            field = key;
            if (tooLong) {
              text = fmt(T.problem_too_long, {
                channel: T.channel_names[key], language: T.language_names[language] || language || "",
                length: tooLong[1], limit: tooLong[2],
              });
            }
          } else if (["kind", "scheduled_for", "translations", "overrides"].includes(key)) field = key;
        }
        const ul = problemList(field);
        ul.append(el("li", { text }));
        first = first || ul;
        const input = { body: bodyEl, scheduled_for: sendAtEl, translations: translationEl }[field];
        if (input) input.setAttribute("aria-invalid", "true");
        if (field === "translations") $("#c-translation-box").open = true;
      }
      if (first) {
        first.scrollIntoView({ block: "center", behavior: "smooth" });
        const input = first.closest("fieldset, details, form").querySelector("textarea, input:not([disabled]), select");
        if (input && !input.disabled) input.focus();
      }
    }

    // -- saving and submitting

    function conflict() {
      const mine = bodyEl.value;
      const id = editing.id;
      const reloadButton = el("button", { type: "button", class: "primary", text: T.reload, on: { click: async () => {
        const result = await api("GET", `/messages/${id}`);
        if (!result.ok) { status(errorText(result), "error"); return; }
        upsert(result.data);
        if (["draft", "rejected", "pending_approval"].includes(result.data.state)) {
          load(result.data);
        } else {
          reset();
        }
        if (mine && mine !== result.data.body) {
          showNotice([el("p", { text: T.your_text }), el("pre", { class: "your-text", text: mine })], "warn");
        }
      } } });
      showNotice([el("p", { text: T.conflict }), reloadButton], "error");
      reloadButton.focus();
    }

    function failed(result) {
      status("", "");
      if (result.status === 409 && /someone else changed/i.test((result.data || {}).error || "")) {
        conflict();
      } else if (result.status === 422) {
        status(T.fix_problems, "error");
        showProblems(result.data.error);
      } else {
        status(errorText(result), "error");
      }
    }

    async function save() {
      clearProblems();
      const fields = collect();
      const result = editing
        ? await api("PATCH", `/messages/${editing.id}`, Object.assign(fields, { version: editing.version }))
        : await api("POST", `/incidents/${incident.id}/messages`, fields);
      if (!result.ok) { failed(result); return null; }
      const m = result.data;
      editing = { id: m.id, version: m.version, kind: m.kind, supersedes_id: m.supersedes_id };
      dirty = false;
      heading.textContent = m.supersedes_id
        ? fmt(m.kind === "cancel" ? T.editing_cancel : T.editing_correction, { id: m.supersedes_id })
        : fmt(T.editing, { id: m.id });
      modeEl.textContent = T.states[m.state] || m.state;
      newButton.hidden = false;
      upsert(m);
      return m;
    }

    async function saveDraft() {
      if (busy) return;
      busy = true;
      status(T.saving);
      try {
        if (await save()) status(T.saved, "ok");
      } finally {
        busy = false;
      }
    }

    async function submit() {
      if (busy) return;
      busy = true;
      status(T.submitting);
      try {
        let m = editing;
        if (!m || dirty) m = await save();
        if (!m) return;
        const result = await api("POST", `/messages/${m.id}/submit`);
        if (!result.ok) { failed(result); return; }
        upsert(result.data);
        reset();
        status(T.submitted, "ok");
      } finally {
        busy = false;
      }
    }

    // -- previews (asked from the API: the same counting the channels use)

    const previewCards = {};
    for (const key of [...CHANNELS, "readability"]) {
      const title = key === "readability" ? T.readability : T.channel_names[key];
      const content = el("div", { class: "preview-content" });
      const problems = el("ul", { class: "problems", dataset: { field: key } });
      const box = el("section", { class: "preview", dataset: { channel: key }, "aria-label": title },
        el("h3", { text: title }), content, problems);
      previewCards[key] = { box, content };
      previewsEl.append(box);
    }
    const emptyPreview = el("p", { class: "muted preview-empty", text: T.preview_empty });
    previewsEl.prepend(emptyPreview);

    let previewTimer = null;
    let previewSeq = 0;
    function schedulePreview(delay) {
      clearTimeout(previewTimer);
      previewTimer = setTimeout(runPreview, delay === undefined ? 250 : delay);
    }

    function marked(text, language) {
      const marker = page.markers[language] || "";
      if (!marker || text.startsWith(marker)) return { text, prefix: 0 };
      return { text: marker + " " + text, prefix: Array.from(marker).length + 1 };
    }

    function nextId() {
      return editing ? editing.id : Math.max(0, ...store.keys()) + 1;
    }

    async function runPreview() {
      const seq = ++previewSeq;
      const channels = selectedChannels();
      const link = page.update_link + nextId();
      const main = marked(bodyEl.value, incident.language);
      const hasText = bodyEl.value.trim() || CHANNELS.some((c) => overrideEls[c].value.trim());
      emptyPreview.hidden = Boolean(hasText);
      for (const key of Object.keys(previewCards)) {
        previewCards[key].box.hidden = !hasText || (key !== "readability" && !channels.includes(key)) ||
          (key === "readability" && incident.language !== "nl");
      }
      if (!hasText) { lastSms = {}; renderCost(); return; }

      // One request for the body's channels, one per channel with its own text, one for the
      // translation's SMS (the only channel that goes out per language).
      const jobs = [{ source: bodyEl, marked: main, language: incident.language,
        channels: channels.filter((c) => !overrideEls[c].value.trim()) }];
      for (const c of channels) {
        if (overrideEls[c].value.trim()) {
          jobs.push({ source: overrideEls[c], marked: marked(overrideEls[c].value, incident.language),
            language: incident.language, channels: [c] });
        }
      }
      if (channels.includes("sms") && translationEl.value.trim()) {
        jobs.push({ source: translationEl, marked: marked(translationEl.value, other), language: other,
          channels: ["sms"], translation: true });
      }
      const results = await Promise.all(jobs.map((job) =>
        api("POST", "/preview", { body: job.marked.text, channels: job.channels, link })));
      if (seq !== previewSeq) return; // a newer keystroke already asked again
      if (results.some((r) => !r.ok)) {
        for (const key of Object.keys(previewCards)) previewCards[key].content.replaceChildren(el("p", { class: "muted", text: T.preview_failed }));
        return;
      }
      const sms = [];
      lastSms = {};
      jobs.forEach((job, i) => {
        const data = results[i].data;
        if (i === 0 && data.readability) renderReadability(data.readability);
        for (const c of job.channels) {
          if (c === "sms") sms.push({ job, info: data.sms });
          else renderChannel(c, data[c]);
        }
      });
      for (const { job, info } of sms) lastSms[job.language] = info.segments;
      renderSms(sms);
      renderCost();
    }

    function exactText(text) {
      return el("details", { class: "exact" }, el("summary", { text: T.exact_text }), el("p", { class: "exact-text", text }));
    }

    function meter(value, max, valid) {
      return el("progress", { class: "length " + (valid ? "ok" : "bad"), max, value: Math.min(value, max) });
    }

    function renderChannel(channel, info) {
      const { content } = previewCards[channel];
      if (channel === "x") {
        content.replaceChildren(
          el("p", { class: "count " + (info.valid ? "ok" : "bad") },
            el("strong", { text: fmt(T.weighted_length, { length: info.weighted_length, limit: info.limit }) }),
            " · ", info.valid ? T.fits : T.too_long),
          meter(info.weighted_length, info.limit, info.valid),
          exactText(info.text));
      } else if (channel === "facebook") {
        content.replaceChildren(
          el("p", { class: "count " + (info.valid ? "ok" : "bad") },
            el("strong", { text: fmt(T.characters, { length: info.length }) }), info.valid ? "" : " · " + T.too_long),
          exactText(info.text));
      } else {
        content.replaceChildren(
          el("p", { class: "count" }, el("strong", { text: fmt(T.characters, { length: info.length }) })),
          exactText(info.text));
      }
      content.closest(".preview").dataset.valid = info.valid === false ? "false" : "true";
    }

    function applyReplacements(job, replacements) {
      // Positions index the SMS text (marker first, Python code points); map them onto the field.
      const chars = Array.from(job.source.value);
      for (const r of [...replacements].sort((a, b) => b.position - a.position)) {
        const i = r.position - job.marked.prefix;
        if (i >= 0 && i < chars.length && chars[i] === r.char) chars[i] = r.replacement;
      }
      job.source.value = chars.join("");
      dirty = true;
      schedulePreview(0);
      job.source.focus();
    }

    function renderSms(parts) {
      const { content, box } = previewCards.sms;
      const blocks = parts.map(({ job, info }) => {
        const block = el("div", { class: "sms-block", lang: job.language });
        if (parts.length > 1) block.append(el("h4", { text: fmt(T.preview_for, { language: T.language_names[job.language] || job.language }) }));
        block.append(el("p", { class: "count " + (info.encoding === "GSM-7" ? "ok" : "warn") },
          el("strong", { text: fmt(T.segments, { encoding: info.encoding, segments: info.segments, units: info.units }) })));
        if (info.ucs2_chars && info.ucs2_chars.length) {
          const chars = el("ul", { class: "ucs2-chars" });
          const seen = new Set();
          for (const c of info.ucs2_chars) {
            if (seen.has(c.char)) continue;
            seen.add(c.char);
            const swap = (info.replacements || []).find((r) => r.char === c.char);
            chars.append(el("li", {}, el("code", { class: "char", text: c.char }),
              el("span", { class: "muted", text: " " + c.codepoint }),
              swap ? el("span", { text: " → " }) : null, swap ? el("code", { class: "char", text: swap.replacement }) : null));
          }
          block.append(el("p", { class: "hint", text: T.ucs2_intro }), chars);
          const typography = (info.replacements || []).filter((r) => r.kind !== "spelling");
          const spelling = (info.replacements || []).filter((r) => r.kind === "spelling");
          const buttons = el("div", { class: "row" });
          if (typography.length) {
            buttons.append(el("button", { type: "button", class: "small replace-gsm", text: T.replace_gsm,
              on: { click: () => applyReplacements(job, typography) } }));
          }
          if (spelling.length) {
            const listed = [...new Set(spelling.map((r) => `${r.char}→${r.replacement}`))].join(", ");
            buttons.append(el("button", { type: "button", class: "small replace-spelling", text: fmt(T.replace_spelling, { list: listed }),
              on: { click: () => applyReplacements(job, spelling) } }));
          }
          if (buttons.childElementCount) block.append(buttons);
        }
        block.append(exactText(info.text));
        return block;
      });
      content.replaceChildren(...blocks);
      box.dataset.valid = "true";
    }

    function renderReadability(r) {
      const { content } = previewCards.readability;
      const parts = [];
      if (r.flesch_douma == null) {
        content.replaceChildren();
        return;
      }
      parts.push(el("p", { class: "count" }, el("strong", {
        text: fmt(T.readability_score, { score: Math.round(r.flesch_douma), level: r.level || "?" }),
      })));
      if (r.long_sentences && r.long_sentences.length) {
        parts.push(el("p", { class: "hint", text: T.long_sentences }),
          el("ul", { class: "flagged" }, r.long_sentences.map((s) => el("li", { text: s.text }))));
      }
      if (r.long_words && r.long_words.length) {
        parts.push(el("p", { class: "hint", text: T.long_words }),
          el("p", { class: "flagged-words" }, r.long_words.map((w) => el("mark", { text: w.word }))));
      }
      if (!(r.long_sentences || []).length && !(r.long_words || []).length) parts.push(el("p", { class: "ok", text: T.readability_ok }));
      content.replaceChildren(...parts);
    }

    // -- recipients and what the SMS costs

    let recipientsTimer = null;
    let recipientsSeq = 0;
    function scheduleRecipients(delay) {
      clearTimeout(recipientsTimer);
      recipientsTimer = setTimeout(loadRecipients, delay === undefined ? 250 : delay);
    }

    async function loadRecipients() {
      const seq = ++recipientsSeq;
      if (!selectedChannels().includes("sms")) { recipients = "off"; renderCost(); return; }
      const query = isFollowUp() ? `supersedes=${editing.supersedes_id}` : `area_ids=${selectedAreas().join(",")}`;
      recipientsEl.textContent = T.recipients_loading;
      const result = await api("GET", `/incidents/${incident.id}/recipients?${query}`);
      if (seq !== recipientsSeq) return;
      recipients = result.ok ? result.data : null;
      renderCost();
    }

    function renderCost() {
      recipientsEl.dataset.state = "";
      recipientsEl.dataset.count = "";
      recipientsEl.dataset.sms = "";
      if (recipients === "off") { recipientsEl.textContent = T.recipients_off; return; }
      if (!recipients) { recipientsEl.textContent = ""; return; }
      if (!recipients.count) { recipientsEl.textContent = T.recipients_none; recipientsEl.dataset.state = "none"; return; }
      const byLanguage = Object.entries(recipients.by_language || {}).sort((a, b) => b[1] - a[1]);
      const languages = byLanguage.map(([code, n]) => `${code} ${n}`).join(" · ");
      const hasTranslation = Boolean(translationEl.value.trim());
      let sms = 0;
      let known = true;
      for (const [code, n] of byLanguage) {
        // A subscriber gets their language's text when there is one, the main text otherwise.
        const segments = code === other && hasTranslation ? lastSms[other] : lastSms[incident.language];
        if (segments === undefined) known = false;
        sms += n * (segments || 1);
      }
      recipientsEl.textContent = known
        ? fmt(T.recipients_line, { count: recipients.count, languages, sms })
        : fmt(T.recipients_only, { count: recipients.count, languages });
      recipientsEl.dataset.state = "ok";
      recipientsEl.dataset.count = recipients.count;
      recipientsEl.dataset.sms = known ? sms : "";
    }

    // -- events

    form.addEventListener("input", (event) => {
      dirty = true;
      clearProblems();
      if (event.target.name === "area_ids" || event.target.name === "channels") scheduleRecipients();
      if (event.target.tagName === "TEXTAREA" || event.target.name === "channels") schedulePreview();
      if (event.target === translationEl) renderCost();
    });
    form.addEventListener("submit", (event) => { event.preventDefault(); submit(); });
    form.addEventListener("keydown", (event) => {
      if ((event.ctrlKey || event.metaKey) && event.key === "Enter") { event.preventDefault(); submit(); }
      if ((event.ctrlKey || event.metaKey) && (event.key === "s" || event.key === "S")) { event.preventDefault(); saveDraft(); }
    });
    $("#c-save").addEventListener("click", saveDraft);
    newButton.addEventListener("click", async () => { if (await mayReplace()) { reset(); bodyEl.focus(); } });
    window.addEventListener("beforeunload", (event) => {
      if (dirty && bodyEl.value.trim()) { event.preventDefault(); event.returnValue = ""; }
    });

    reset();
    return { load, mayReplace, reset };
  })();

  // "Answer this cluster" in the feed created a draft: the composer takes that draft itself (not
  // a copy of its text), so saving edits it instead of creating a second one.
  if (composer) {
    document.addEventListener("crisis:compose", async (event) => {
      const message = event.detail && event.detail.message;
      if (!message || message.incident_id !== incident.id) return;
      event.preventDefault();
      upsert(message);
      if (await composer.mayReplace()) composer.load(message);
    });
  }

  // ---------------------------------------------------------------- live updates

  renderList();

  const socket = window.crisisSocket;
  if (socket) {
    socket.on("message.updated", (message) => {
      if (!message || message.incident_id !== incident.id) return;
      upsert(message);
      // The payload was computed before a worker's delivery events it may arrive after: while a
      // message is in flight, ask the server again once things have settled.
      if (message.state === "sending") scheduleReload(1500);
    });
    socket.on("delivery.updated", (delivery) => {
      const message = delivery && store.get(delivery.message_id);
      if (!message) { scheduleReload(300); return; }
      const deliveries = (message.deliveries || []).filter((d) => d.id !== delivery.id && d.channel !== delivery.channel);
      deliveries.push(delivery);
      deliveries.sort((a, b) => a.id - b.id);
      store.set(message.id, Object.assign({}, message, { deliveries }));
      renderList();
    });
    socket.on("sms.progress", (progress) => {
      const message = progress && store.get(progress.message_id);
      if (!message) return;
      const counts = Object.assign({}, progress);
      delete counts.message_id;
      if (message.sms && smsSettled(message.sms) > smsSettled(counts)) return;
      store.set(message.id, Object.assign({}, message, { sms: counts }));
      renderList();
    });
  }
  // Every (re)join: rebuild from the server, whatever was missed while the socket was away.
  document.addEventListener("crisis:joined", (event) => {
    if (event.detail && event.detail.ok) reload();
  });
  reload();
})();
