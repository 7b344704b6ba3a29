// The live reaction feed of the incident page: reactions newest first (calls for help pinned on
// top), themes (clusters) with counts and sparklines, a spike banner and two charts.
//
// Socket.IO only notifies: the feed is rebuilt from the API on load and on every (re)join.
// Events are queued and rendered at most every FLUSH_MS, and the list holds at most `limit` items
// ("load more" raises it), so 100 reactions a second do not freeze the page.
// Everything the public wrote goes into the page with textContent, never as HTML.
(function () {
  "use strict";

  const root = document.getElementById("feed");
  if (!root) return;
  const T = JSON.parse(document.getElementById("feed-i18n").textContent);
  const API = root.dataset.api;
  const incidentId = Number(root.dataset.incidentId);
  const canHandle = root.dataset.canHandle === "1";
  const canReply = root.dataset.canReply === "1";
  const canDraft = root.dataset.canDraft === "1";
  const meId = Number(document.body.dataset.userId || 0);
  const lang = document.documentElement.lang || "nl";

  const FLUSH_MS = 250;
  const PAGE = 100;
  const CAP = 500;
  const URGENT_MAX = 20;
  const CLUSTERS_SHOWN = 8;
  const SPARK_BUCKETS = 36;
  const BUCKET_MS = 300 * 1000;
  const CATEGORIES = ["question", "rumour", "help", "report", "complaint", "thanks", "other"];
  const CHANNELS = ["x", "facebook", "sms", "form"];
  const HANDLING = ["new", "assigned", "escalated", "handled"];

  const { fmt, el } = window.crisisDom;
  const api = (method, path, body) => window.crisisDom.api(API, method, path, body);
  const $ = (id) => document.getElementById(id);
  const list = $("reaction-list");
  const urgentBox = $("urgent");
  const urgentList = $("urgent-list");
  const clusterList = $("cluster-list");
  const filtersForm = $("feed-filters");
  const moreButton = $("feed-more");
  const detail = $("reaction-detail");
  const detailBody = $("detail-body");
  const detailClose = $("detail-close");
  // The detail opens right under its reaction (a row of the list), never over other reactions.
  const detailRow = el("li", { class: "detail-row" }, detail);

  const reactions = new Map(); // id -> reaction shown in the list (at most `limit`)
  const urgent = new Map(); // id -> open, urgent reaction (the pinned lane)
  const clusters = new Map(); // id -> cluster
  const nodes = new Map(); // id -> <li> in the main list
  const users = {}; // id -> name
  const messages = new Map(); // message id -> promise of the message it answers
  let assignees = null;
  let limit = CAP;
  let hasMore = false;
  let selectedId = null;
  let showAllClusters = false;
  let filters = { channel: "", category: "", cluster_id: "", handling: "" };
  let generation = 0; // bumped by each full reload: late answers of an older one are dropped
  let arrivedDuringLoad = null; // reactions live events brought while a reload's answer was on its way

  // ---------------------------------------------------------------- helpers

  const known = (value, allowed) => (allowed.includes(value) ? value : "other");

  const errorOf = (result) => (result.data && (result.data.error || result.data.detail)) || String(result.status || "network");

  let timeFormat;
  try {
    timeFormat = new Intl.DateTimeFormat(lang, { timeZone: "Europe/Amsterdam", hour: "2-digit", minute: "2-digit" });
  } catch (err) {
    timeFormat = new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit" });
  }
  const timeText = (iso) => (iso ? timeFormat.format(new Date(iso)) : "");

  function isUrgent(r) {
    return r.urgency === "high" && r.handling !== "handled" && !r.removed_at;
  }

  function matches(r) {
    if (r.incident_id !== incidentId) return false;
    if (filters.channel && r.channel !== filters.channel) return false;
    if (filters.category && r.category !== filters.category) return false;
    if (filters.cluster_id && String(r.cluster_id) !== filters.cluster_id) return false;
    if (filters.handling === "open" && (r.handling === "handled" || r.removed_at)) return false;
    if (filters.handling && filters.handling !== "open" && r.handling !== filters.handling) return false;
    return true;
  }

  function query(extra) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(Object.assign({}, filters, extra || {}))) {
      if (value !== "" && value !== null && value !== undefined) params.set(key, value);
    }
    return params.toString();
  }

  // ---------------------------------------------------------------- one reaction

  function badge(cls, text) { return el("span", { class: cls, text }); }

  function reactionNode(r) {
    const category = known(r.category, CATEGORIES);
    const li = el("li", {
      class: "reaction" + (isUrgent(r) ? " is-urgent" : "") + (r.handling === "handled" ? " is-handled" : "") +
        (r.removed_at ? " is-removed" : "") + (r.id === selectedId ? " is-selected" : ""),
      dataset: { id: String(r.id), category, handling: known(r.handling, HANDLING), channel: known(r.channel, CHANNELS) },
      tabindex: "-1",
    });
    const head = el("div", { class: "reaction-head" },
      badge("chan chan-" + known(r.channel, CHANNELS), T.channels[r.channel] || r.channel),
      r.category ? badge("cat cat-" + category, T.categories[category] || category) : null,
      r.urgency === "high" ? badge("urgency-high", T.urgency.high) : null,
      r.drill ? badge("drill-tag", T.drill) : null,
      el("span", { class: "author", text: r.author_name || "" }),
      el("time", { datetime: r.received_at, class: "muted", text: timeText(r.received_at) }),
      r.handling !== "new" ? badge("handling handling-" + known(r.handling, HANDLING), T.handling[r.handling] || r.handling) : null,
      r.assignee_id ? el("span", { class: "muted", text: fmt(T.assigned_to, { name: users[r.assignee_id] || "#" + r.assignee_id }) }) : null,
    );
    const text = el("p", { class: "reaction-text", text: r.text || "" });
    const meta = el("div", { class: "reaction-meta" },
      r.cluster_label ? el("button", { type: "button", class: "link cluster-link", dataset: { action: "cluster", cluster: String(r.cluster_id) }, text: r.cluster_label }) : null,
      r.edited_at ? el("span", { class: "muted", text: T.edited }) : null,
      r.removed_at ? el("span", { class: "muted", text: T.removed }) : null,
    );
    const actions = el("div", { class: "reaction-actions" },
      el("button", { type: "button", dataset: { action: "details" }, text: T.details }),
      canHandle && r.handling !== "handled" ? el("button", { type: "button", dataset: { action: "handled" }, text: T.mark_handled }) : null,
      canHandle && r.handling === "handled" ? el("button", { type: "button", dataset: { action: "reopen" }, text: T.reopen }) : null,
      canHandle && r.assignee_id !== meId && r.handling !== "handled" ? el("button", { type: "button", dataset: { action: "assign-me" }, text: T.assign_me }) : null,
      canHandle && r.handling !== "escalated" && r.handling !== "handled" ? el("button", { type: "button", dataset: { action: "escalate" }, text: T.escalate }) : null,
    );
    li.append(head, text, meta, actions);
    return li;
  }

  // ---------------------------------------------------------------- the main list

  function insertSorted(node, id) {
    // Newest first: nearly always at the top; a late one is put in its place (the detail row
    // stays with the reaction above it).
    let before = list.firstElementChild;
    while (before && (before === detailRow || Number(before.dataset.id) > id)) before = before.nextElementSibling;
    list.insertBefore(node, before);
  }

  function placeDetail() {
    // Under the selected reaction: in the feed, else in the pinned lane, else on top.
    if (detail.hidden) { detailRow.remove(); return; }
    const node = nodes.get(selectedId) ||
      urgentList.querySelector(`li.reaction[data-id="${Number(selectedId)}"]`);
    if (node) node.after(detailRow);
    else list.prepend(detailRow);
  }

  function upsertNode(r) {
    const old = nodes.get(r.id);
    if (!matches(r)) {
      if (old) { old.remove(); nodes.delete(r.id); reactions.delete(r.id); }
      return;
    }
    reactions.set(r.id, r);
    const node = reactionNode(r);
    nodes.set(r.id, node);
    if (old) old.replaceWith(node);
    else insertSorted(node, r.id);
    if (r.id === selectedId) placeDetail();
  }

  function trim() {
    while (nodes.size > limit) {
      let last = list.lastElementChild;
      if (last === detailRow) last = last.previousElementSibling;
      if (!last) break;
      const id = Number(last.dataset.id);
      last.remove();
      nodes.delete(id);
      reactions.delete(id);
      hasMore = true;
    }
  }

  function renderChrome() {
    $("feed-empty").hidden = nodes.size > 0;
    moreButton.hidden = !hasMore;
    $("feed-count").textContent = nodes.size ? "(" + fmt(T.count, { shown: nodes.size }) + ")" : "";
  }

  function renderUrgent() {
    const items = [...urgent.values()].filter(isUrgent).sort((a, b) => b.id - a.id).slice(0, URGENT_MAX);
    urgentList.replaceChildren(...items.map(reactionNode));
    urgentBox.hidden = items.length === 0;
    if (!nodes.has(selectedId)) placeDetail();
  }

  // ---------------------------------------------------------------- clusters

  function sparkline(cluster) {
    const NS = "http://www.w3.org/2000/svg";
    let series = (cluster.series || []).map(Number);
    if (cluster.series_end) {
      // Right-align on now: buckets since the last reaction are zero.
      const gap = Math.floor((Date.now() - new Date(cluster.series_end).getTime()) / BUCKET_MS);
      for (let i = 0; i < Math.min(gap, SPARK_BUCKETS); i++) series.push(0);
    }
    series = series.slice(-SPARK_BUCKETS);
    while (series.length < SPARK_BUCKETS) series.unshift(0);
    const max = Math.max(1, ...series);
    const w = 108, h = 24;
    const points = series.map((v, i) => `${(i * w / (SPARK_BUCKETS - 1)).toFixed(1)},${(h - 1 - (v / max) * (h - 2)).toFixed(1)}`).join(" ");
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
    svg.setAttribute("class", "sparkline");
    svg.setAttribute("aria-hidden", "true");
    const line = document.createElementNS(NS, "polyline");
    line.setAttribute("points", points);
    svg.append(line);
    return svg;
  }

  function clusterNode(c) {
    const category = known(c.category, CATEGORIES);
    return el("li", { class: "cluster-card cat-border-" + category, dataset: { id: String(c.id) } },
      el("div", { class: "cluster-head" },
        badge("cat cat-" + category, T.categories[category] || category),
        el("span", { class: "cluster-label", text: c.label || "" })),
      el("div", { class: "cluster-body" },
        el("span", { class: "cluster-counts", text: fmt(c.count === 1 ? T.cluster_counts_one : T.cluster_counts, { count: c.count, open: c.open_count }) }),
        sparkline(c)),
      el("div", { class: "cluster-actions" },
        el("button", { type: "button", dataset: { action: "show-cluster" }, text: T.show_cluster }),
        canDraft ? el("button", { type: "button", class: "primary", dataset: { action: "answer-cluster" }, text: T.answer_cluster }) : null),
    );
  }

  function sortedClusters() {
    return [...clusters.values()].sort((a, b) => (b.open_count - a.open_count) || (b.count - a.count) || (a.id - b.id));
  }

  function renderClusters() {
    const all = sortedClusters();
    const shown = showAllClusters ? all : all.slice(0, CLUSTERS_SHOWN);
    clusterList.replaceChildren(...shown.map(clusterNode));
    $("no-clusters").hidden = all.length > 0;
    $("clusters-all").hidden = all.length <= CLUSTERS_SHOWN || showAllClusters;
    // The theme filter lists every cluster; labels are text nodes (option.textContent).
    const select = filtersForm.elements.cluster_id;
    const current = select.value;
    const options = [select.options[0]];
    for (const c of all) options.push(el("option", { value: String(c.id), text: `${c.label} (${c.count})` }));
    select.replaceChildren(...options);
    select.value = current;
    if (select.value !== current) select.value = "";
  }

  // ---------------------------------------------------------------- batching live events

  const pending = { reactions: new Map(), clusters: new Map(), created: [] };
  let flushTimer = null;
  let lastFlush = 0;

  function scheduleFlush() {
    if (flushTimer !== null) return;
    const wait = Math.max(0, lastFlush + FLUSH_MS - performance.now());
    flushTimer = setTimeout(flush, wait);
  }

  function flush() {
    flushTimer = null;
    lastFlush = performance.now();
    const batch = [...pending.reactions.values()].sort((a, b) => a.id - b.id);
    const created = pending.created;
    pending.reactions.clear();
    pending.created = [];
    let urgentChanged = false;
    for (const r of batch) {
      upsertNode(r);
      if (arrivedDuringLoad) arrivedDuringLoad.set(r.id, r);
      const wasUrgent = urgent.has(r.id);
      if (isUrgent(r)) { urgent.set(r.id, r); urgentChanged = true; }
      else if (wasUrgent) { urgent.delete(r.id); urgentChanged = true; }
      if (r.id === selectedId) renderDetail(r);
    }
    if (urgentChanged) renderUrgent();
    trim();
    renderChrome();
    if (pending.clusters.size) {
      for (const c of pending.clusters.values()) clusters.set(c.id, c);
      pending.clusters.clear();
      renderClusters();
    }
    if (created.length) charts.count(created);
  }

  function queueReaction(r, isNew) {
    if (!r || r.incident_id !== incidentId) return;
    const queued = pending.reactions.get(r.id);
    // Events may overtake each other: keep what looks newest (handling settles, a reply lands).
    pending.reactions.set(r.id, queued && !r.processed && queued.processed ? queued : r);
    if (isNew) pending.created.push(r);
    scheduleFlush();
  }

  function queueCluster(c) {
    if (!c || c.incident_id !== incidentId) return;
    pending.clusters.set(c.id, c);
    scheduleFlush();
  }

  // ---------------------------------------------------------------- loading from the server

  async function loadReactions() {
    const mine = ++generation;
    const arrived = arrivedDuringLoad = new Map();
    const result = await api("GET", `/incidents/${incidentId}/reactions?${query({ limit: PAGE })}`);
    if (mine !== generation) return;
    arrivedDuringLoad = null; // also when the load failed: nothing is collected until the next one
    if (!result.ok) return;
    Object.assign(users, result.data.users || {});
    list.replaceChildren();
    nodes.clear();
    reactions.clear();
    limit = CAP;
    for (const r of result.data.reactions) upsertNode(r);
    // The answer may predate a reaction that an event already showed: keep that one.
    for (const r of arrived.values()) if (!nodes.has(r.id)) upsertNode(r);
    trim();
    hasMore = Boolean(result.data.next_before_id);
    placeDetail();
    renderChrome();
  }

  async function loadMore() {
    const oldest = Math.min(...nodes.keys());
    if (!Number.isFinite(oldest)) return;
    moreButton.disabled = true;
    const result = await api("GET", `/incidents/${incidentId}/reactions?${query({ limit: PAGE, before_id: oldest })}`);
    moreButton.disabled = false;
    if (!result.ok) return;
    Object.assign(users, result.data.users || {});
    limit = Math.max(limit, nodes.size + result.data.reactions.length);
    for (const r of result.data.reactions) upsertNode(r);
    hasMore = Boolean(result.data.next_before_id);
    renderChrome();
  }

  async function loadUrgent() {
    const result = await api("GET", `/incidents/${incidentId}/reactions?urgency=high&handling=open&limit=${URGENT_MAX}`);
    if (!result.ok) return;
    Object.assign(users, result.data.users || {});
    urgent.clear();
    for (const r of result.data.reactions) urgent.set(r.id, r);
    renderUrgent();
  }

  async function loadClusters() {
    const result = await api("GET", `/incidents/${incidentId}/clusters`);
    if (!result.ok) return;
    clusters.clear();
    for (const c of result.data.clusters) clusters.set(c.id, c);
    renderClusters();
  }

  function reloadAll() {
    loadReactions();
    loadUrgent();
    loadClusters();
    charts.load();
  }

  // ---------------------------------------------------------------- actions

  function find(id) {
    return reactions.get(id) || urgent.get(id) || pending.reactions.get(id) || null;
  }

  async function patch(id, body) {
    const result = await api("PATCH", `/reactions/${id}`, body);
    if (!result.ok) {
      announce(fmt(T.error, { error: errorOf(result) }));
      return null;
    }
    queueReaction(result.data, false);
    return result.data;
  }

  function announce(text) {
    const banner = $("spike-banner");
    $("spike-text").textContent = text;
    banner.dataset.kind = "notice";
    banner.hidden = false;
  }

  async function act(action, id, target) {
    if (action === "details") return select(id, true);
    if (action === "handled") return patch(id, { handling: "handled" });
    if (action === "reopen") return patch(id, { handling: "new" });
    if (action === "assign-me") return patch(id, { assignee_id: meId });
    if (action === "escalate") return patch(id, { handling: "escalated" });
    if (action === "cluster") return filterCluster(target.dataset.cluster);
    return null;
  }

  function filterCluster(clusterId) {
    filtersForm.elements.cluster_id.value = String(clusterId);
    if (filtersForm.elements.cluster_id.value !== String(clusterId)) return;
    readFilters();
    filtersForm.scrollIntoView({ block: "start", behavior: "smooth" });
  }

  function onListClick(event) {
    if (event.target.closest(".detail-row")) return; // the detail's own controls
    const button = event.target.closest("button[data-action]");
    const item = event.target.closest("li.reaction");
    if (!item) return;
    const id = Number(item.dataset.id);
    if (button) { act(button.dataset.action, id, button); return; }
    select(id, false);
  }
  list.addEventListener("click", onListClick);
  urgentList.addEventListener("click", onListClick);

  clusterList.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    const card = event.target.closest("li.cluster-card");
    if (!button || !card) return;
    const id = Number(card.dataset.id);
    if (button.dataset.action === "show-cluster") filterCluster(id);
    if (button.dataset.action === "answer-cluster") answerCluster(id, button);
  });

  async function answerCluster(id, button) {
    button.disabled = true;
    const result = await api("POST", `/clusters/${id}/follow-up`);
    button.disabled = false;
    if (!result.ok) { announce(fmt(T.compose_failed, { error: errorOf(result) })); return; }
    const message = result.data;
    // The composer loads the draft when it listens for crisis:compose (and then cancels the
    // event); otherwise the draft's text is put into the composer's body field.
    const compose = new CustomEvent("crisis:compose", { detail: { message_id: message.id, message }, cancelable: true });
    const unhandled = document.dispatchEvent(compose);
    if (unhandled) {
      const body = document.querySelector("#composer textarea[name=body]");
      if (body) {
        body.value = message.body || "";
        body.dispatchEvent(new Event("input", { bubbles: true }));
        body.scrollIntoView({ block: "center", behavior: "smooth" });
        body.focus();
      }
    }
    announce(T.compose_loaded);
  }

  // ---------------------------------------------------------------- details

  function select(id, open) {
    const previous = selectedId !== null && nodes.get(selectedId);
    if (previous) previous.classList.remove("is-selected");
    if (id !== selectedId && !open) { detail.hidden = true; placeDetail(); }
    selectedId = id;
    const node = nodes.get(id);
    if (node) { node.classList.add("is-selected"); node.focus({ preventScroll: false }); }
    if (open) {
      const r = find(id);
      if (r) renderDetail(r);
    }
  }

  function answered(messageId) {
    if (!messages.has(messageId)) {
      messages.set(messageId, api("GET", `/messages/${messageId}`).then((result) => (result.ok ? result.data : null)));
    }
    return messages.get(messageId);
  }

  async function loadAssignees() {
    if (assignees) return assignees;
    const result = await api("GET", "/reactions/assignees");
    assignees = result.ok ? result.data.users : [];
    for (const u of assignees) users[u.id] = u.name;
    return assignees;
  }

  function renderDetail(r) {
    // A live update re-renders the panel: keep an answer being typed.
    const typing = detail.dataset.id === String(r.id) ? detailBody.querySelector(".reply-form textarea") : null;
    const typed = typing ? typing.value : "";
    const hadFocus = typing !== null && document.activeElement === typing;
    detail.hidden = false;
    detail.dataset.id = String(r.id);
    placeDetail();
    const category = known(r.category, CATEGORIES);
    const parts = [];
    parts.push(el("div", { class: "reaction-head" },
      badge("chan chan-" + known(r.channel, CHANNELS), T.channels[r.channel] || r.channel),
      r.category ? badge("cat cat-" + category, T.categories[category] || category) : null,
      r.urgency === "high" ? badge("urgency-high", T.urgency.high) : null,
      el("span", { class: "author", text: r.author_name || "" }),
      el("time", { datetime: r.received_at, class: "muted", text: timeText(r.received_at) })));
    parts.push(el("p", { class: "detail-text", text: r.text || "" }));
    if (r.url) parts.push(el("p", {}, el("a", { href: r.url, rel: "noopener noreferrer", target: "_blank", text: T.open_on_x })));

    // What it answers.
    const answer = el("div", { class: "detail-answer" }, el("h4", { text: T.in_answer_to }));
    if (r.message_id) {
      const body = el("p", { class: "detail-message muted", text: T.loading });
      answer.append(body);
      answered(r.message_id).then((m) => { body.textContent = m ? (m.body || "") : T.answer_unknown; });
    } else {
      answer.append(el("p", { class: "muted", text: T.answer_unknown }));
    }
    parts.push(answer);

    // Why it was classified so: the words that decided each field.
    const why = el("div", { class: "detail-why" }, el("h4", { text: T.why }));
    const dl = el("dl", { class: "triggers" });
    const values = { category: T.categories[r.category], urgency: T.urgency[r.urgency], sentiment: T.sentiment[r.sentiment], language: T.languages[r.language] };
    let any = false;
    for (const field of ["category", "urgency", "sentiment", "language"]) {
      const words = (r.triggers && Array.isArray(r.triggers[field])) ? r.triggers[field] : [];
      any = any || words.length > 0;
      dl.append(el("dt", { text: `${T.fields[field]}: ${values[field] || r[field] || "—"}` }),
        el("dd", {}, words.length ? words.map((w) => el("mark", { class: "trigger", text: String(w) })) : "—"));
    }
    why.append(dl);
    if (!any) why.append(el("p", { class: "muted", text: T.no_triggers }));
    const corrected = r.triggers && Array.isArray(r.triggers.corrected_from) ? r.triggers.corrected_from[0] : null;
    if (corrected) why.append(el("p", { class: "muted", text: fmt(T.corrected_from, { category: T.categories[corrected] || corrected }) }));
    parts.push(why);
    if (r.cluster_label) {
      parts.push(el("p", {}, `${T.theme}: `, el("button", { type: "button", class: "link", text: r.cluster_label,
        on: { click: () => filterCluster(r.cluster_id) } })));
    }

    // Handling.
    if (canHandle) {
      const categorySelect = el("select", { "aria-label": T.correct_category },
        CATEGORIES.map((c) => el("option", { value: c, text: T.categories[c], selected: c === r.category })));
      categorySelect.addEventListener("change", () => patch(r.id, { category: categorySelect.value }));
      const assigneeSelect = el("select", { "aria-label": T.assign_to }, el("option", { value: "", text: T.nobody }));
      loadAssignees().then((team) => {
        for (const u of team) assigneeSelect.append(el("option", { value: String(u.id), text: u.name, selected: u.id === r.assignee_id }));
      });
      assigneeSelect.addEventListener("change", () => patch(r.id, { assignee_id: assigneeSelect.value ? Number(assigneeSelect.value) : null }));
      const handlingSelect = el("select", {},
        HANDLING.map((h) => el("option", { value: h, text: T.handling[h], selected: h === r.handling })));
      handlingSelect.addEventListener("change", () => patch(r.id, { handling: handlingSelect.value }));
      parts.push(el("div", { class: "detail-handling" },
        el("label", {}, T.correct_category, " ", categorySelect),
        el("label", {}, T.assign_to, " ", assigneeSelect),
        el("label", {}, T.handling_label, " ", handlingSelect)));
    }

    // Answer on the reaction's own channel.
    const reply = el("div", { class: "detail-reply" });
    if (r.reply_text && r.replied_at) {
      reply.append(el("p", { class: "reply-sent", text: fmt(T.reply_sent, { time: timeText(r.replied_at), text: r.reply_text }) }));
    } else if (r.reply_pending) {
      reply.append(el("p", { class: "muted", text: T.reply_pending }));
    } else if (!r.can_reply) {
      reply.append(el("p", { class: "muted", text: T.reply_none }));
    } else if (canReply) {
      if (r.reply_error) reply.append(el("p", { class: "reply-error", text: fmt(T.reply_failed, { error: r.reply_error }) }));
      const channelName = T.channels[r.channel] || r.channel;
      const textarea = el("textarea", { rows: "3", "aria-label": fmt(T.reply_heading, { channel: channelName }) });
      const status = el("span", { class: "muted", role: "status" });
      const send = el("button", { type: "submit", class: "primary", text: T.reply_send });
      const form = el("form", { class: "reply-form" },
        el("h4", { text: fmt(T.reply_heading, { channel: channelName }) }),
        el("p", { class: "hint", text: T["reply_hint_" + r.channel] || "" }),
        textarea, el("div", { class: "row" }, send, status));
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        send.disabled = true;
        const result = await api("POST", `/reactions/${r.id}/reply`, { text: textarea.value });
        send.disabled = false;
        if (!result.ok) { status.textContent = fmt(T.error, { error: errorOf(result) }); return; }
        queueReaction(result.data, false);
      });
      reply.append(form);
    }
    parts.push(reply);
    detailBody.replaceChildren(...parts);
    const again = detailBody.querySelector(".reply-form textarea");
    if (again && typed) again.value = typed;
    if (again && hadFocus) again.focus();
  }

  detailClose.addEventListener("click", () => {
    detail.hidden = true;
    placeDetail();
    const node = nodes.get(selectedId);
    if (node) node.focus();
  });

  // ---------------------------------------------------------------- filters, keys, banner

  function fillCategoryFilter() {
    const select = filtersForm.elements.category;
    for (const c of CATEGORIES) select.append(el("option", { value: c, text: T.categories[c] }));
    const handling = filtersForm.elements.handling;
    for (const h of HANDLING) handling.append(el("option", { value: h, text: T.handling[h] }));
  }

  function readFilters() {
    const data = new FormData(filtersForm);
    filters = {
      channel: String(data.get("channel") || ""),
      category: String(data.get("category") || ""),
      cluster_id: String(data.get("cluster_id") || ""),
      handling: String(data.get("handling") || ""),
    };
    loadReactions();
  }
  filtersForm.addEventListener("change", readFilters);
  filtersForm.addEventListener("submit", (event) => event.preventDefault());
  moreButton.addEventListener("click", loadMore);
  $("clusters-all").addEventListener("click", () => { showAllClusters = true; renderClusters(); });
  $("spike-dismiss").addEventListener("click", () => { $("spike-banner").hidden = true; });

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const tag = (event.target.tagName || "").toLowerCase();
    if (["input", "textarea", "select"].includes(tag) || event.target.isContentEditable) return;
    const ids = [...list.querySelectorAll(":scope > li.reaction")].map((n) => Number(n.dataset.id));
    if (!ids.length) return;
    const index = ids.indexOf(selectedId);
    if (event.key === "j") { select(ids[Math.min(ids.length - 1, index + 1)], !detail.hidden); event.preventDefault(); }
    else if (event.key === "k") { select(ids[Math.max(0, index - 1)], !detail.hidden); event.preventDefault(); }
    else if (event.key === "Enter" && selectedId !== null && event.target.closest && event.target.closest("li.reaction")) { select(selectedId, true); event.preventDefault(); }
    else if (event.key === "h" && selectedId !== null && canHandle) { patch(selectedId, { handling: "handled" }); }
    else if (event.key === "a" && selectedId !== null && canHandle) { patch(selectedId, { assignee_id: meId }); }
  });

  const spikesSeen = new Set();
  function onSpike(spike) {
    if (!spike || spike.incident_id !== incidentId) return;
    const key = `${spike.scope}:${spike.cluster_id || ""}:${spike.bucket_start}`;
    if (spikesSeen.has(key)) return; // sent to the incident room and to the team room
    spikesSeen.add(key);
    const text = spike.scope === "cluster"
      ? fmt(T.spike_cluster, { label: spike.label || "", current: spike.current })
      : fmt(T.spike_incident, { current: spike.current, baseline: Math.round(spike.baseline) });
    $("spike-text").textContent = text;
    $("spike-banner").dataset.kind = "spike";
    $("spike-banner").hidden = false;
  }

  // ---------------------------------------------------------------- charts

  const charts = (function () {
    const COLORS = { x: "#5cb8ff", facebook: "#a78bfa", sms: "#4ade80", form: "#fbbf24" };
    const CAT_COLORS = { question: "#5cb8ff", rumour: "#f472b6", help: "#f87171", report: "#fbbf24", complaint: "#fb923c", thanks: "#4ade80", other: "#94a3b8" };
    const tooltip = $("chart-tooltip");
    let volume = null;
    let mix = null;
    let stats = null;
    let dirty = false;
    let timer = null;
    if (typeof Chart === "undefined") return { load() {}, count() {} };
    Chart.defaults.color = "#a9b4bf";
    Chart.defaults.borderColor = "#36404a";
    Chart.defaults.animation = false;

    // Tooltips are built in the page with textContent (theme labels come from the public).
    function external(context) {
      const model = context.tooltip;
      if (!model || model.opacity === 0) { tooltip.hidden = true; return; }
      const lines = [];
      for (const title of model.title || []) lines.push(el("strong", { text: title }));
      for (const item of model.body || []) for (const line of item.lines) lines.push(el("span", { text: line }));
      for (const line of model.afterBody || []) lines.push(el("span", { class: "muted", text: line }));
      tooltip.replaceChildren(...lines);
      const box = context.chart.canvas.getBoundingClientRect();
      const host = tooltip.parentElement.getBoundingClientRect();
      tooltip.style.left = `${box.left - host.left + model.caretX + 8}px`;
      tooltip.style.top = `${box.top - host.top + model.caretY + 8}px`;
      tooltip.hidden = false;
    }
    const tooltipOptions = { enabled: false, external };

    function labels(data) {
      const start = new Date(data.start).getTime();
      const n = data.volume.x.length;
      return Array.from({ length: n }, (_, i) => timeFormat.format(new Date(start + i * data.bucket_seconds * 1000)));
    }

    function build() {
      const volumeCanvas = $("chart-volume");
      const mixCanvas = $("chart-categories");
      volume = new Chart(volumeCanvas, {
        type: "line",
        data: { labels: labels(stats), datasets: CHANNELS.map((c) => ({
          label: T.channels[c], data: stats.volume[c].slice(), borderColor: COLORS[c],
          backgroundColor: COLORS[c], pointRadius: 0, tension: 0.25, borderWidth: 2 })) },
        options: { responsive: true, maintainAspectRatio: false, interaction: { mode: "index", intersect: false },
          scales: { y: { beginAtZero: true, ticks: { precision: 0 } }, x: { ticks: { maxTicksLimit: 6 } } },
          plugins: { legend: { position: "bottom", labels: { boxWidth: 10 } }, tooltip: tooltipOptions } },
      });
      mix = new Chart(mixCanvas, {
        type: "doughnut",
        data: { labels: CATEGORIES.map((c) => T.categories[c]), datasets: [{
          data: CATEGORIES.map((c) => stats.categories[c] || 0), backgroundColor: CATEGORIES.map((c) => CAT_COLORS[c]), borderWidth: 0 }] },
        options: { responsive: true, maintainAspectRatio: false,
          plugins: { legend: { position: "right", labels: { boxWidth: 10 } }, tooltip: Object.assign({}, tooltipOptions, {
            callbacks: {
              label: (item) => `${item.label}: ${fmt(T.reactions_n, { count: item.raw })}`,
              afterBody: (items) => {
                const category = CATEGORIES[items[0].dataIndex];
                const top = (stats.top_clusters || {})[category];
                return top ? [fmt(T.largest_theme, { label: top.label })] : [];
              },
            } }) } },
      });
    }

    function redraw() {
      timer = null;
      if (!dirty || !volume) return;
      dirty = false;
      for (const [i, c] of CHANNELS.entries()) volume.data.datasets[i].data = stats.volume[c].slice();
      volume.data.labels = labels(stats);
      mix.data.datasets[0].data = CATEGORIES.map((c) => stats.categories[c] || 0);
      volume.update("none");
      mix.update("none");
    }

    function later() {
      dirty = true;
      if (timer === null) timer = setTimeout(redraw, 1000);
    }

    async function load() {
      const result = await api("GET", `/incidents/${incidentId}/reactions/stats`);
      if (!result.ok) return;
      stats = result.data;
      if (!volume) build();
      else { dirty = true; redraw(); }
    }

    function count(created) {
      if (!stats) return;
      const start = new Date(stats.start).getTime();
      const step = stats.bucket_seconds * 1000;
      for (const r of created) {
        let index = Math.floor((new Date(r.received_at).getTime() - start) / step);
        const n = stats.volume.x.length;
        if (index >= n) {
          // The window moved on: shift every series left.
          const shift = index - n + 1;
          for (const c of CHANNELS) stats.volume[c] = stats.volume[c].slice(shift).concat(new Array(Math.min(shift, n)).fill(0)).slice(-n);
          stats.start = new Date(start + shift * step).toISOString();
          index = n - 1;
        }
        if (index >= 0 && stats.volume[r.channel]) stats.volume[r.channel][index] += 1;
        if (r.category) stats.categories[r.category] = (stats.categories[r.category] || 0) + 1;
      }
      for (const c of clusters.values()) {
        const top = stats.top_clusters[c.category];
        if (!top || c.count > top.count || top.label === c.label) stats.top_clusters[c.category] = { label: c.label, count: c.count };
      }
      later();
    }

    return { load, count };
  })();

  // ---------------------------------------------------------------- live

  fillCategoryFilter();
  const socket = window.crisisSocket;
  if (socket) {
    // New reactions come in batches (one event per batch the worker processed).
    socket.on("reactions.created", (batch) => batch.reactions.forEach((r) => queueReaction(r, true)));
    socket.on("reaction.updated", (r) => queueReaction(r, false));
    socket.on("cluster.updated", queueCluster);
    socket.on("spike.detected", onSpike);
  }
  document.addEventListener("crisis:joined", (event) => {
    if (event.detail && event.detail.ok) reloadAll();
  });
  reloadAll();
})();
