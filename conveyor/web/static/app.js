// conveyor web UI: a small single-page app on the JSON API (/api). No dependencies.

const POLL_MS = 2500;
const TASK_STATES = ["QUEUED", "RUNNING", "COMPUTED", "FAILED", "SKIPPED", "FAILED_OPTIONAL"];
const JOB_STATES = ["SUBMITTED", "RUNNING", "STARTED", "COMPLETED", "FAILED", "CANCELED"];
const TERMINAL_JOB_STATES = new Set(["COMPLETED", "FAILED", "CANCELED"]);
const STATE_COLOURS = {
  QUEUED: "#94a3b8", WAITING: "#cbd5e1", RUNNING: "#0ea5e9", COMPUTED: "#16a34a",
  FAILED: "#dc2626", SKIPPED: "#d97706", FAILED_OPTIONAL: "#c026d3",
  SUBMITTED: "#94a3b8", STARTED: "#6366f1", COMPLETED: "#16a34a", CANCELED: "#d97706",
};
const TOKEN_KEY = "conveyor.token";

// -- helpers --------------------------------------------------------------------------------
const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
  })[c]);
}

const nf = new Intl.NumberFormat("en");
const num = (n) => nf.format(n ?? 0);

function duration(seconds) {
  if (seconds == null || Number.isNaN(seconds)) return "–";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${Number.isInteger(seconds) ? seconds : seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  const m = Math.floor(seconds / 60), s = Math.floor(seconds % 60);
  if (m < 60) return `${m}m ${String(s).padStart(2, "0")}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${String(m % 60).padStart(2, "0")}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

function ago(iso) {
  if (!iso) return "–";
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 5) return "just now";
  if (seconds < 60) return `${Math.floor(seconds)}s ago`;
  return `${duration(seconds).replace(/ \d+s$/, "")} ago`;
}

function between(start, end) {
  if (!start) return null;
  const stop = end ? Date.parse(end) : Date.now();
  return Math.max(0, (stop - Date.parse(start)) / 1000);
}

function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

const short = (id) => (id ? id.slice(0, 8) : "");
const pill = (state, label) => `<span class="pill ${esc(state)}">${esc(label ?? state)}</span>`;
const firstLine = (text) => String(text ?? "").split("\n", 1)[0];

function truncate(text, max) {
  text = String(text ?? "");
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function stackbar(counts, order, tall = false) {
  const total = order.reduce((sum, s) => sum + (counts[s] || 0), 0);
  if (!total) return `<div class="stackbar${tall ? " tall" : ""}"></div>`;
  const parts = order
    .filter((s) => counts[s])
    .map((s) => `<span class="bg-${s}" style="width:${(100 * counts[s]) / total}%" title="${s}: ${num(counts[s])}"></span>`)
    .join("");
  return `<div class="stackbar${tall ? " tall" : ""}">${parts}</div>`;
}

function toast(message, error = false) {
  const el = document.createElement("div");
  el.className = `toast${error ? " error" : ""}`;
  el.textContent = message;
  $("#toast").append(el);
  setTimeout(() => el.remove(), error ? 6000 : 3500);
}

// JSON with light syntax colouring (values escaped first).
function prettyJson(value) {
  const text = esc(JSON.stringify(value, null, 2));
  return text.replace(
    /(&quot;(?:\\.|[^&]|&(?!quot;))*?&quot;)(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g,
    (m, str, colon, lit, n) => {
      if (str) return colon ? `<span class="k">${str}</span>${colon}` : `<span class="s">${str}</span>`;
      if (lit) return `<span class="b">${lit}</span>`;
      return `<span class="n">${n}</span>`;
    },
  );
}

// -- API --------------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  const response = await fetch(path, { ...options, headers });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const detail = body && typeof body.detail === "string" ? body.detail : `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, detail);
  }
  return body;
}

const auth = { required: false };

async function askToken() {
  const dialog = $("#token-dialog");
  const input = $("#token-input");
  input.value = sessionStorage.getItem(TOKEN_KEY) || "";
  dialog.returnValue = "";
  dialog.showModal();
  input.focus();
  await new Promise((resolve) => dialog.addEventListener("close", resolve, { once: true }));
  if (dialog.returnValue === "ok" && input.value.trim()) {
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    updateTokenButton();
    return true;
  }
  return false;
}

function updateTokenButton() {
  const button = $("#token-button");
  button.hidden = !auth.required;
  button.textContent = sessionStorage.getItem(TOKEN_KEY) ? "Token ✓" : "Token";
}

// A POST action; asks for the token when needed (once per tab) and retries once.
async function action(path) {
  for (let round = 0; round < 2; round++) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (auth.required && !token && !(await askToken())) throw new ApiError(401, "No token given");
    const headers = {};
    const current = sessionStorage.getItem(TOKEN_KEY);
    if (current) headers.Authorization = `Bearer ${current}`;
    try {
      return await api(path, { method: "POST", headers });
    } catch (error) {
      if ((error.status === 401 || error.status === 403) && auth.required && round === 0) {
        sessionStorage.removeItem(TOKEN_KEY);
        updateTokenButton();
        toast(error.message, true);
        if (!(await askToken())) throw error;
        continue;
      }
      throw error;
    }
  }
  throw new ApiError(403, "Refused");
}

function confirmDialog(title, text, yes, danger = false) {
  const dialog = $("#confirm-dialog");
  $("#confirm-title").textContent = title;
  $("#confirm-text").textContent = text;
  const button = $("#confirm-yes");
  button.textContent = yes;
  button.className = danger ? "danger solid" : "primary";
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

// -- live refresh -----------------------------------------------------------------------------
const live = { page: null, timer: null, busy: false, lastOk: null, failed: false };

function setLive(state, text) {
  const el = $("#live");
  el.classList.toggle("error", state === "error");
  el.classList.toggle("paused", state === "paused");
  $("#live-text").textContent = text;
}

async function tick() {
  if (!live.page || live.busy) return;
  if (document.hidden) {
    setLive("paused", "paused");
    return;
  }
  live.busy = true;
  const page = live.page;
  try {
    await page.refresh();
    if (page === live.page) {
      live.lastOk = Date.now();
      live.failed = false;
      setLive("ok", "live");
    }
  } catch (error) {
    live.failed = true;
    setLive("error", error.status ? error.message : "server unreachable");
  } finally {
    live.busy = false;
  }
}

// -- router -----------------------------------------------------------------------------------
const routes = [
  [/^\/$/, () => dashboardPage(), "dashboard"],
  [/^\/jobs\/?$/, () => jobsPage(), "jobs"],
  [/^\/jobs\/([0-9a-fA-F-]{36})\/?$/, (m) => jobPage(m[1]), "jobs"],
  [/^\/tasks\/([0-9a-fA-F-]{36})\/?$/, (m) => taskRedirect(m[1]), "jobs"],
  [/^\/runners\/?$/, () => runnersPage(), "runners"],
  [/^\/clusters\/?$/, () => clustersPage(), "clusters"],
];

function navigate(url, replace = false) {
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  route();
}

async function route() {
  if (live.page && live.page.unmount) live.page.unmount();
  live.page = null;
  const path = location.pathname;
  const main = $("#main");
  let found = null;
  for (const [pattern, make, nav] of routes) {
    const match = path.match(pattern);
    if (match) {
      found = [make(match), nav];
      break;
    }
  }
  $$(".topbar nav a").forEach((a) => a.classList.toggle("active", found && a.dataset.nav === found[1]));
  if (!found) {
    main.innerHTML = `<div class="card empty"><div class="big">Page not found</div><a href="/" data-link>Back to the dashboard</a></div>`;
    return;
  }
  const page = found[0];
  live.page = page;
  main.innerHTML = `<div class="skeleton">Loading…</div>`;
  try {
    await page.mount(main);
    await tick();
  } catch (error) {
    main.innerHTML = `<div class="card empty"><div class="big">${esc(error.message)}</div><a href="/" data-link>Back to the dashboard</a></div>`;
  }
}

document.addEventListener("click", (event) => {
  const a = event.target.closest("a[data-link]");
  if (!a || event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
  event.preventDefault();
  navigate(a.getAttribute("href"));
});
window.addEventListener("popstate", route);
document.addEventListener("visibilitychange", () => { if (!document.hidden) tick(); });

// -- dashboard ----------------------------------------------------------------------------------
function dashboardPage() {
  let main;
  return {
    async mount(el) {
      main = el;
      main.innerHTML = `
        <div class="page-head"><h1>Dashboard</h1><span class="sub" id="dash-now"></span></div>
        <div class="grid cols-5" id="dash-stats"></div>
        <div class="grid cols-main-side mt">
          <div class="card"><div class="card-head"><h2>Throughput</h2><span class="grow"></span><span class="muted" id="tp-legend"></span></div><div class="card-body chart" id="dash-chart"></div></div>
          <div class="card"><div class="card-head"><h2>Jobs by state</h2><span class="grow"></span><a href="/jobs" data-link>All jobs →</a></div><div class="card-body" id="dash-jobs"></div></div>
        </div>
        <div class="grid cols-main-side mt">
          <div class="card"><div class="card-head"><h2>Queues</h2><span class="grow"></span><span class="muted">dispatchable tasks per cluster, task and version</span></div><div class="card-body flush" id="dash-queues"></div></div>
          <div class="card"><div class="card-head"><h2>Recent failures</h2></div><div class="card-body flush" id="dash-failures"></div></div>
        </div>`;
    },
    async refresh() {
      const [d, latest] = await Promise.all([api("/api/dashboard"), api("/api/jobs?limit=6")]);
      const ready = d.queues.reduce((s, q) => s + q.ready, 0);
      const running = d.queues.reduce((s, q) => s + q.running, 0);
      const active = (d.jobs_by_state.RUNNING || 0) + (d.jobs_by_state.STARTED || 0) + (d.jobs_by_state.SUBMITTED || 0);
      $("#dash-stats", main).innerHTML = `
        <a class="card stat" href="/jobs?state=RUNNING&state=STARTED&state=SUBMITTED" data-link><div class="label">Active jobs</div><div class="value">${num(active)}</div><div class="hint">${num(d.jobs_total)} jobs in total</div></a>
        <a class="card stat${d.jobs_by_state.FAILED ? " alert" : ""}" href="/jobs?state=FAILED" data-link><div class="label">Failed jobs</div><div class="value">${num(d.jobs_by_state.FAILED)}</div><div class="hint">retry them from the job page</div></a>
        <div class="card stat"><div class="label">Tasks per second</div><div class="value">${d.throughput.tasks_per_second.toFixed(d.throughput.tasks_per_second < 10 ? 2 : 1)}</div><div class="hint">attempts ended, last minute</div></div>
        <a class="card stat" href="/runners" data-link><div class="label">Runners online</div><div class="value">${num(d.runners_online)}</div><div class="hint">${Object.entries(d.runners_by_cluster).map(([c, n]) => `${esc(c)}: ${n}`).join(" · ") || "none connected"}</div></a>
        <a class="card stat" href="/clusters" data-link><div class="label">Tasks ready</div><div class="value">${num(ready)}<small>${num(running)} running</small></div><div class="hint">waiting for a runner</div></a>`;
      $("#dash-chart", main).innerHTML = throughputChart(d.throughput.points);
      $("#tp-legend", main).innerHTML = `<span class="graph-legend"><span><i class="dot-state bg-COMPUTED"></i>computed</span><span><i class="dot-state bg-FAILED"></i>failed</span><span><i class="dot-state bg-SKIPPED"></i>given back</span></span>`;
      const counts = d.jobs_by_state;
      $("#dash-jobs", main).innerHTML = d.jobs_total
        ? `${stackbar(counts, JOB_STATES, true)}
           <div class="legend">${JOB_STATES.map((s) => `<a class="item" href="/jobs?state=${s}" data-link><i class="dot-state bg-${s}"></i>${s.toLowerCase()} <b>${num(counts[s])}</b></a>`).join("")}</div>
           <div class="latest">${latest.items.map((j) => `<a href="/jobs/${j.id}" data-link>${pill(j.state)}<span class="n">${esc(j.name)}</span><span class="t">${num(j.tasks.done)} / ${num(j.tasks.total)} tasks · ${ago(j.submitted_at)}</span></a>`).join("")}</div>`
        : `<div class="empty"><div class="big">No jobs yet</div>Submit one with <code>conveyor submit</code> or <code>client.jobs().submit(…)</code></div>`;
      $("#dash-queues", main).innerHTML = queueTable(d.queues, true);
      $("#dash-failures", main).innerHTML = d.failures.length
        ? `<ul class="failures">${d.failures.map((f) => `
            <li data-href="/jobs/${f.job_id}?task=${f.task_id}">
              <span class="dot-state bg-${f.state}" style="margin-top:6px"></span>
              <div class="what"><div><b>${esc(truncate(firstLine(f.display), 48))}</b> <span class="muted">in</span> ${esc(truncate(f.job_name, 40))}</div>
              <div class="err">${esc(f.error ? `${f.error.type}: ${f.error.message}` : f.state)}</div></div>
              <span class="when">${ago(f.stopped_at)}</span></li>`).join("")}</ul>`
        : `<div class="empty"><div class="big">No failures</div>Every task that ran so far succeeded or is retrying.</div>`;
      $$("#dash-failures li", main).forEach((li) => li.addEventListener("click", () => navigate(li.dataset.href)));
      $("#dash-now", main).textContent = `as of ${new Date(d.now).toLocaleTimeString()}`;
    },
  };
}

function throughputChart(points) {
  const width = 640, height = 250, left = 46, bottom = 22, top = 8;
  const max = Math.max(1, ...points.map((p) => p.computed + p.failed + p.other));
  const scale = niceMax(max);
  const barW = (width - left) / points.length;
  const y = (v) => height - bottom - ((height - bottom - top) * v) / scale;
  let bars = "";
  points.forEach((p, i) => {
    const x = left + i * barW + 1.5;
    const w = Math.max(1, barW - 3);
    let base = 0;
    for (const [value, colour] of [[p.computed, STATE_COLOURS.COMPUTED], [p.failed, STATE_COLOURS.FAILED], [p.other, STATE_COLOURS.SKIPPED]]) {
      if (!value) continue;
      const y0 = y(base), y1 = y(base + value);
      bars += `<rect x="${x.toFixed(1)}" y="${y1.toFixed(1)}" width="${w.toFixed(1)}" height="${Math.max(1, y0 - y1).toFixed(1)}" rx="2" fill="${colour}" opacity="0.85"><title>${new Date(p.minute).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}: ${p.computed} computed, ${p.failed} failed, ${p.other} given back (${((p.computed + p.failed + p.other) / 60).toFixed(2)}/s)</title></rect>`;
      base += value;
    }
  });
  let grid = "";
  for (const f of [0, 0.5, 1]) {
    const v = scale * f;
    grid += `<line class="gridline" x1="${left}" x2="${width}" y1="${y(v)}" y2="${y(v)}"/><text class="axis" x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${num(Math.round(v))}</text>`;
  }
  const labels = [0, Math.floor(points.length / 2), points.length - 1]
    .map((i) => `<text class="axis" x="${left + i * barW + barW / 2}" y="${height - 6}" text-anchor="middle">${new Date(points[i].minute).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}</text>`)
    .join("");
  return `<svg viewBox="0 0 ${width} ${height}" preserveAspectRatio="none" role="img" aria-label="Task attempts per minute">${grid}${bars}${labels}<text class="axis" x="${width}" y="${top + 4}" text-anchor="end">per minute</text></svg>`;
}

function niceMax(value) {
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
  return value;
}

function queueTable(queues, withCluster) {
  if (!queues.length) return `<div class="empty"><div class="big">All queues are empty</div>No task is waiting for a runner or running.</div>`;
  const max = Math.max(1, ...queues.map((q) => q.ready));
  const cols = `<colgroup>${withCluster ? `<col class="c-cluster">` : ""}<col class="c-task"><col class="c-version"><col class="c-ready"><col class="c-running"><col class="c-consumers"></colgroup>`;
  return `<table class="data queues">${cols}<thead><tr>${withCluster ? "<th>Cluster</th>" : ""}<th>Task</th><th>Version</th><th class="num">Ready</th><th class="num">Running</th><th class="num">Consumers</th></tr></thead><tbody>
    ${queues.map((q) => `<tr>
      ${withCluster ? `<td>${esc(q.cluster)}</td>` : ""}
      <td class="name">${esc(q.identifier.name)}</td><td><span class="tag">${esc(q.identifier.version)}</span></td>
      <td class="num"><div class="depth"><span>${num(q.ready)}</span><div class="track"><span style="width:${(100 * q.ready) / max}%"></span></div></div></td>
      <td class="num">${num(q.running)}</td>
      <td class="num">${q.consumers ? num(q.consumers) : q.ready ? `<span class="warn-text" title="No online runner of this cluster registered a compatible version">none</span>` : "0"}</td></tr>`).join("")}
  </tbody></table>`;
}

// -- jobs list ---------------------------------------------------------------------------------
const TIME_RANGES = [["", "Any time"], ["1", "Last hour"], ["24", "Last 24 hours"], ["168", "Last 7 days"], ["720", "Last 30 days"]];

function jobsPage() {
  let main;
  const params = new URLSearchParams(location.search);
  const filters = {
    states: new Set(params.getAll("state")),
    q: params.get("q") || "",
    cluster: params.get("cluster") || "",
    hours: params.get("hours") || "",
  };
  let rows = [];
  let next = null;
  let extraPages = false;

  function query(before) {
    const p = new URLSearchParams();
    filters.states.forEach((s) => p.append("state", s));
    if (filters.q.trim()) p.set("q", filters.q.trim());
    if (filters.cluster) p.set("cluster", filters.cluster);
    if (filters.hours) p.set("since", new Date(Date.now() - Number(filters.hours) * 3600e3).toISOString());
    p.set("limit", "50");
    if (before) p.set("before", before);
    return p;
  }

  function syncUrl() {
    const p = new URLSearchParams();
    filters.states.forEach((s) => p.append("state", s));
    if (filters.q.trim()) p.set("q", filters.q.trim());
    if (filters.cluster) p.set("cluster", filters.cluster);
    if (filters.hours) p.set("hours", filters.hours);
    history.replaceState(null, "", `/jobs${p.toString() ? `?${p}` : ""}`);
  }

  function render() {
    const body = $("#jobs-body", main);
    if (!rows.length) {
      body.innerHTML = `<div class="empty"><div class="big">No jobs match</div>${filters.states.size || filters.q || filters.cluster || filters.hours ? "Try fewer filters." : "Submit a job and it shows up here."}</div>`;
      return;
    }
    body.innerHTML = `<table class="data"><thead><tr><th>State</th><th>Job</th><th style="width:28%">Tasks</th><th>Cluster</th><th class="num">Submitted</th><th class="num">Duration</th></tr></thead><tbody>
      ${rows.map((j) => {
        const order = TASK_STATES;
        const running = !TERMINAL_JOB_STATES.has(j.state);
        const dur = between(j.submitted_at, running ? null : j.updated_at);
        return `<tr class="link" data-href="/jobs/${j.id}">
          <td>${pill(j.state)}</td>
          <td><div class="name">${esc(truncate(j.name, 60))}</div><div class="id">${esc(j.id)}</div></td>
          <td><div class="row">${stackbar(j.tasks.by_state, order)}<span class="muted nowrap" style="font-size:12.5px;min-width:88px;text-align:right">${num(j.tasks.done)} / ${num(j.tasks.total)}</span></div></td>
          <td>${esc(j.cluster)}</td>
          <td class="num" title="${esc(when(j.submitted_at))}">${ago(j.submitted_at)}</td>
          <td class="num">${duration(dur)}</td></tr>`;
      }).join("")}</tbody></table>
      ${next ? `<div class="more-row"><button id="jobs-more">Load older jobs</button></div>` : ""}`;
    $$("tr.link", body).forEach((tr) => tr.addEventListener("click", () => navigate(tr.dataset.href)));
    const more = $("#jobs-more", body);
    if (more) more.addEventListener("click", loadMore);
  }

  async function loadMore() {
    const page = await api(`/api/jobs?${query(next)}`);
    rows = rows.concat(page.items);
    next = page.next_before;
    extraPages = true;
    render();
  }

  async function reload() {
    const page = await api(`/api/jobs?${query(null)}`);
    rows = page.items;
    next = page.next_before;
    extraPages = false;
    render();
  }

  return {
    async mount(el) {
      main = el;
      const clusters = await api("/api/clusters");
      main.innerHTML = `
        <div class="page-head"><h1>Jobs</h1><span class="grow"></span></div>
        <div class="card">
          <div class="filters">
            <input type="search" id="jobs-q" placeholder="Search by name, job id or task id" value="${esc(filters.q)}" aria-label="Search jobs">
            <div class="chips" id="jobs-states">${JOB_STATES.map((s) => `<button type="button" class="chip${filters.states.has(s) ? " on" : ""}" data-state="${s}">${s.toLowerCase()}</button>`).join("")}</div>
            <span class="grow" style="flex:1"></span>
            <select id="jobs-cluster" aria-label="Cluster"><option value="">All clusters</option>${clusters.map((c) => `<option value="${esc(c.slug)}"${c.slug === filters.cluster ? " selected" : ""}>${esc(c.name)}</option>`).join("")}</select>
            <select id="jobs-time" aria-label="Submitted">${TIME_RANGES.map(([v, l]) => `<option value="${v}"${v === filters.hours ? " selected" : ""}>${l}</option>`).join("")}</select>
          </div>
          <div id="jobs-body"><div class="skeleton">Loading…</div></div>
        </div>`;
      let debounce = null;
      $("#jobs-q", main).addEventListener("input", (e) => {
        filters.q = e.target.value;
        clearTimeout(debounce);
        debounce = setTimeout(() => { syncUrl(); reload().catch((err) => toast(err.message, true)); }, 250);
      });
      $$("#jobs-states .chip", main).forEach((chip) => chip.addEventListener("click", () => {
        const s = chip.dataset.state;
        if (filters.states.has(s)) filters.states.delete(s);
        else filters.states.add(s);
        chip.classList.toggle("on");
        syncUrl();
        reload().catch((err) => toast(err.message, true));
      }));
      $("#jobs-cluster", main).addEventListener("change", (e) => { filters.cluster = e.target.value; syncUrl(); reload().catch((err) => toast(err.message, true)); });
      $("#jobs-time", main).addEventListener("change", (e) => { filters.hours = e.target.value; syncUrl(); reload().catch((err) => toast(err.message, true)); });
    },
    async refresh() {
      // Live updates for the first page; older pages stay as loaded (keyset pages do not move).
      if (extraPages) return;
      await reload();
    },
  };
}

// -- job page ----------------------------------------------------------------------------------
const NODE_W = 228, NODE_H = 60, GAP_Y = 14, GAP_X = 64, PAD = 16, INDENT = 26, DROP = 20, LABEL_H = 16;
const AUTO_EXPAND_NODES = 60, AUTO_EXPAND_DEPTH = 3;

function jobPage(jobId) {
  let main;
  let job = null;
  const levels = new Map(); // parent task id ("" for roots) → GraphLevel
  const expanded = new Set(); // task ids whose children are shown
  const loading = new Set();
  let selected = new URLSearchParams(location.search).get("task");
  let group = null; // {parent, identifier, state filter, items, next}
  let lastGraphRefresh = 0;
  let detailCache = null;

  async function loadLevel(parent) {
    const url = `/api/jobs/${jobId}/graph${parent ? `?parent=${parent}` : ""}`;
    levels.set(parent || "", await api(url));
  }

  function visibleNodes() {
    let count = 0;
    for (const [key, level] of levels) if (key === "" || expanded.has(key)) count += level.nodes.length;
    return count;
  }

  async function autoExpand() {
    let frontier = [["", 0]];
    while (frontier.length) {
      const nextFrontier = [];
      for (const [key, depth] of frontier) {
        const level = levels.get(key);
        if (!level || depth >= AUTO_EXPAND_DEPTH) continue;
        for (const node of level.nodes) {
          if (node.kind !== "task" || !node.children) continue;
          if (visibleNodes() >= AUTO_EXPAND_NODES) return;
          const id = node.task.id;
          if (!levels.has(id)) await loadLevel(id);
          expanded.add(id);
          nextFrontier.push([id, depth + 1]);
        }
      }
      frontier = nextFrontier;
    }
  }

  // ---- layout: each level is laid out in columns by dependency rank; expanded tasks hold
  // their children in a frame below them.
  function rankNodes(level) {
    const incoming = new Map(level.nodes.map((n) => [n.key, []]));
    for (const e of level.edges) if (incoming.has(e.target) && incoming.has(e.source)) incoming.get(e.target).push(e.source);
    const rank = new Map();
    const visiting = new Set();
    const visit = (key) => {
      if (rank.has(key)) return rank.get(key);
      if (visiting.has(key)) return 0; // a cycle through a group: break it
      visiting.add(key);
      let r = 0;
      for (const source of incoming.get(key) || []) r = Math.max(r, visit(source) + 1);
      visiting.delete(key);
      rank.set(key, r);
      return r;
    };
    level.nodes.forEach((n) => visit(n.key));
    return rank;
  }

  function layoutLevel(level) {
    const rank = rankNodes(level);
    const columns = [];
    for (const node of level.nodes) {
      const r = rank.get(node.key) || 0;
      (columns[r] ||= []).push({ node, block: layoutNode(node) });
    }
    const placed = [];
    let x = 0, height = 0;
    // Plain nodes first, expanded ones (tall blocks) last: dependency edges stay short.
    for (const column of columns.filter(Boolean)) {
      column.sort((a, b) => (a.block.child ? 1 : 0) - (b.block.child ? 1 : 0));
      let y = 0, width = NODE_W;
      for (const item of column) {
        placed.push({ ...item, x, y });
        y += item.block.h + GAP_Y;
        width = Math.max(width, item.block.w);
      }
      height = Math.max(height, y - GAP_Y);
      x += width + GAP_X;
    }
    return { w: Math.max(NODE_W, x - GAP_X), h: Math.max(NODE_H, height), placed, level };
  }

  function layoutNode(node) {
    if (node.kind !== "task" || !expanded.has(node.task.id) || !levels.has(node.task.id)) {
      return { w: NODE_W, h: NODE_H, child: null };
    }
    const child = layoutLevel(levels.get(node.task.id));
    const frameW = child.w + 2 * PAD, frameH = child.h + 2 * PAD + LABEL_H;
    return { w: Math.max(NODE_W, INDENT + frameW), h: NODE_H + DROP + frameH, child, frameW, frameH };
  }

  function drawLevel(layout, ox, oy, out) {
    const centers = new Map();
    for (const item of layout.placed) {
      const x = ox + item.x, y = oy + item.y;
      centers.set(item.node.key, { x, y });
      if (item.block.child) {
        const fx = x + INDENT, fy = y + NODE_H + DROP;
        out.frames.push(`<rect class="frame" x="${fx}" y="${fy}" width="${item.block.frameW}" height="${item.block.frameH}" rx="12"/>
          <text class="frame-label" x="${fx + PAD}" y="${fy + 16}">${num(item.block.child.level.total)} subtask${item.block.child.level.total === 1 ? "" : "s"}</text>
          <path class="tree-edge" d="M${x + 14},${y + NODE_H} V${fy + 26} H${fx}"/>`);
        drawLevel(item.block.child, fx + PAD, fy + PAD + LABEL_H, out);
      }
      out.nodes.push(drawNode(item.node, x, y));
    }
    for (const e of layout.level.edges) {
      const s = centers.get(e.source), t = centers.get(e.target);
      if (!s || !t) continue;
      const sx = s.x + NODE_W, sy = s.y + NODE_H / 2, tx = t.x - 2, ty = t.y + NODE_H / 2;
      const bend = Math.max(24, (tx - sx) / 2);
      const d = tx > sx
        ? `M${sx},${sy} C${sx + bend},${sy} ${tx - bend},${ty} ${tx},${ty}`
        : `M${s.x + NODE_W / 2},${s.y + NODE_H} C${s.x + NODE_W / 2},${s.y + NODE_H + 30} ${t.x - 40},${ty} ${tx},${ty}`;
      out.edges.push(`<path class="dep-edge" d="${d}" marker-end="url(#arrow)"><title>depends on</title></path>`);
    }
  }

  function drawNode(node, x, y) {
    if (node.kind === "group") {
      const order = TASK_STATES;
      const total = node.count;
      let bx = x + 14;
      const bw = NODE_W - 28;
      let bar = "";
      for (const s of order) {
        const n = node.states[s] || 0;
        if (!n) continue;
        const w = (bw * n) / total;
        bar += `<rect x="${bx.toFixed(1)}" y="${y + 44}" width="${Math.max(1, w).toFixed(1)}" height="6" fill="${STATE_COLOURS[s]}"/>`;
        bx += w;
      }
      const done = node.states.COMPUTED || 0, failed = (node.states.FAILED || 0) + (node.states.FAILED_OPTIONAL || 0);
      const run = node.states.RUNNING || 0;
      const summary = [done && `${num(done)} done`, run && `${num(run)} running`, failed && `${num(failed)} failed`].filter(Boolean).join(" · ") || `${num(node.states.QUEUED || 0)} queued`;
      return `<g class="node group" data-group="${esc(node.key)}">
        <rect x="${x + 6}" y="${y - 6}" width="${NODE_W - 12}" height="${NODE_H}" rx="10" fill="#fff" stroke="#e3e6eb"/>
        <rect x="${x + 3}" y="${y - 3}" width="${NODE_W - 6}" height="${NODE_H}" rx="10" fill="#fff" stroke="#dde1e7"/>
        <rect class="box" x="${x}" y="${y}" width="${NODE_W}" height="${NODE_H}" rx="10"/>
        <text class="title" x="${x + 14}" y="${y + 20}">${esc(truncate(`${num(total)} × ${node.identifier.name}`, 26))}</text>
        <text class="sub" x="${x + 14}" y="${y + 36}">${esc(truncate(summary, 34))}</text>
        <clipPath id="c${esc(node.key.replace(/[^a-zA-Z0-9]/g, ""))}${x}${y}"><rect x="${x + 14}" y="${y + 44}" width="${bw}" height="6" rx="3"/></clipPath>
        <g clip-path="url(#c${esc(node.key.replace(/[^a-zA-Z0-9]/g, ""))}${x}${y})"><rect x="${x + 14}" y="${y + 44}" width="${bw}" height="6" fill="#eef0f3"/>${bar}</g>
        <title>${esc(`${num(total)} ${node.identifier.name} tasks (${node.identifier.version}) — click to list them`)}</title></g>`;
    }
    const t = node.task;
    const state = t.state === "QUEUED" && !t.ready ? "WAITING" : t.state;
    const colour = STATE_COLOURS[state];
    const label = t.state === "QUEUED" ? (t.ready ? "ready" : "waiting") : t.state.toLowerCase().replace("_", " ");
    const took = t.started_at && t.state !== "QUEUED" ? ` · ${duration(between(t.started_at, t.state === "RUNNING" ? null : t.stopped_at))}` : "";
    const badges = [t.retry_count && `↻${t.retry_count}`, t.crash_count && `⚡${t.crash_count}`].filter(Boolean).join(" ");
    let toggle = "";
    if (node.children) {
      const open = expanded.has(t.id);
      const text = `${open ? "▾" : "▸"} ${num(node.children)}`;
      const w = 16 + text.length * 6.6;
      toggle = `<g class="toggle" data-toggle="${t.id}"><rect x="${x + NODE_W - w - 8}" y="${y + NODE_H - 24}" width="${w}" height="18" rx="9"/><text x="${x + NODE_W - w / 2 - 8}" y="${y + NODE_H - 11}" text-anchor="middle">${text}</text><title>${open ? "Hide" : "Show"} ${num(node.children)} subtasks</title></g>`;
    }
    return `<g class="node ${esc(t.state)}${selected === t.id ? " selected" : ""}" data-task="${t.id}">
      <rect class="box" x="${x}" y="${y}" width="${NODE_W}" height="${NODE_H}" rx="10"/>
      <rect x="${x}" y="${y}" width="5" height="${NODE_H}" rx="2.5" fill="${colour}"/>
      <text class="title" x="${x + 16}" y="${y + 22}">${esc(truncate(firstLine(t.display), 27))}</text>
      <text class="state" x="${x + 16}" y="${y + 42}" fill="${colour}">${esc(label)}<tspan class="sub" fill="#6b7280">${esc(took)}${badges ? `  ${esc(badges)}` : ""}</tspan></text>
      ${t.state === "RUNNING" ? `<circle cx="${x + NODE_W - 14}" cy="${y + 14}" r="4" fill="${colour}"><animate attributeName="opacity" values="1;0.3;1" dur="1.4s" repeatCount="indefinite"/></circle>` : ""}
      ${toggle}
      <title>${esc(`${firstLine(t.display)} — ${t.identifier.name} ${t.identifier.version}, ${t.state}`)}</title></g>`;
  }

  function renderGraph() {
    const wrap = $("#graph", main);
    const roots = levels.get("");
    if (!roots) return;
    if (!roots.nodes.length) {
      wrap.innerHTML = `<div class="empty">This job has no tasks.</div>`;
      return;
    }
    const layout = layoutLevel(roots);
    const out = { frames: [], nodes: [], edges: [] };
    drawLevel(layout, 24, 24, out);
    const width = layout.w + 48, height = layout.h + 48;
    wrap.innerHTML = `<svg width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="Task graph">
      <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#8b93a3"/></marker></defs>
      ${out.frames.join("")}${out.edges.join("")}${out.nodes.join("")}</svg>`;
    $("#graph-count", main).textContent = `${num(visibleNodes())} nodes shown`;
  }

  async function toggle(id) {
    if (expanded.has(id)) {
      expanded.delete(id);
    } else {
      if (loading.has(id)) return;
      loading.add(id);
      try {
        if (!levels.has(id)) await loadLevel(id);
        expanded.add(id);
      } finally {
        loading.delete(id);
      }
    }
    renderGraph();
  }

  function renderHeader() {
    const j = job;
    $("#job-head", main).innerHTML = `
      <div class="title">
        <div class="crumbs"><a href="/jobs" data-link>Jobs</a> / ${esc(truncate(j.name, 60))}</div>
        <h1>${esc(j.name)} ${pill(j.state)}</h1>
        <div class="meta"><span>id <b class="mono">${esc(j.id)}</b></span><span>cluster <b>${esc(j.cluster)}</b></span>
          <span>submitted <b title="${esc(when(j.submitted_at))}">${ago(j.submitted_at)}</b></span>
          <span>${num(j.root_count)} root task${j.root_count === 1 ? "" : "s"}</span></div>
      </div>
      <div class="actions">
        <button id="retry-button" class="primary" ${j.can_retry ? "" : "disabled"} title="Requeue the failed tasks and resume the job">↻ Retry</button>
        <button id="cancel-button" class="danger" ${j.can_cancel ? "" : "disabled"} title="Stop dispatching queued tasks">✕ Cancel</button>
      </div>`;
    $("#retry-button", main).addEventListener("click", retry);
    $("#cancel-button", main).addEventListener("click", cancel);
    const s = j.stats;
    const counts = j.tasks.by_state;
    $("#job-stats", main).innerHTML = `
      <div class="card stat" style="grid-column: span 2"><div class="label">Tasks</div><div class="value">${num(j.tasks.done)}<small>of ${num(j.tasks.total)} done</small></div>
        <div style="margin-top:10px">${stackbar(counts, TASK_STATES, true)}</div>
        <div class="legend">${TASK_STATES.filter((x) => counts[x]).map((x) => `<span class="item"><i class="dot-state bg-${x}"></i>${x.toLowerCase().replace("_", " ")} <b>${num(counts[x])}</b></span>`).join("")}</div></div>
      <div class="card stat"><div class="label">Elapsed</div><div class="value">${duration(s.elapsed_seconds)}</div><div class="hint">${s.first_task_started_at ? `first start ${ago(s.first_task_started_at)}` : "not started"}</div></div>
      <div class="card stat"><div class="label">Compute time</div><div class="value">${duration(s.compute_seconds)}</div><div class="hint">sum over every attempt</div></div>
      <div class="card stat"><div class="label">Parallelism</div><div class="value">${s.parallelism.toFixed(1)}<small>×</small></div><div class="hint">compute time / elapsed</div></div>`;
    const progress = $("#job-progress", main);
    progress.hidden = !j.progress.length;
    $(".card-body", progress).innerHTML = j.progress.map((p) => {
      const pct = p.total ? Math.min(100, (100 * p.done) / p.total) : 0;
      return `<div class="progress"><span class="name">${esc(p.label ?? "progress")}</span><div class="track"><div class="fill${p.total && p.done >= p.total ? " done" : ""}" style="width:${pct}%"></div></div><span class="num">${num(p.done)} / ${num(p.total)} · ${pct.toFixed(0)}%</span></div>`;
    }).join("");
  }

  async function renderFailures() {
    const card = $("#job-failures", main);
    const failedCount = (job.tasks.by_state.FAILED || 0) + (job.tasks.by_state.FAILED_OPTIONAL || 0);
    if (!failedCount) {
      card.hidden = true;
      return;
    }
    const page = await api(`/api/jobs/${jobId}/tasks?state=FAILED&state=FAILED_OPTIONAL&limit=20`);
    card.hidden = false;
    $("#failures-title", main).textContent = `Failed tasks (${num(failedCount)})`;
    $(".card-body", card).innerHTML = `<ul class="failures">${page.items.map((t) => `
      <li data-task="${t.id}"><span class="dot-state bg-${t.state}" style="margin-top:6px"></span>
        <div class="what"><div><b>${esc(truncate(firstLine(t.display), 60))}</b> <span class="muted">${esc(t.identifier.name)} ${esc(t.identifier.version)}${t.retry_count ? ` · ${t.retry_count} retries` : ""}${t.crash_count ? ` · ${t.crash_count} crashes` : ""}</span></div>
        <div class="err">${esc(t.error ? `${t.error.type}: ${t.error.message}` : t.state)}</div></div>
        <span class="when">${ago(t.stopped_at)}</span></li>`).join("")}</ul>`;
    $$("li", card).forEach((li) => li.addEventListener("click", () => select(li.dataset.task)));
  }

  function select(taskId) {
    selected = taskId;
    group = null;
    const url = new URL(location.href);
    url.searchParams.set("task", taskId);
    history.replaceState(null, "", url);
    renderGraph();
    renderPanel().catch((err) => toast(err.message, true));
  }

  function closePanel() {
    selected = null;
    group = null;
    detailCache = null;
    const url = new URL(location.href);
    url.searchParams.delete("task");
    history.replaceState(null, "", url);
    $("#job-layout", main).classList.remove("with-panel");
    $("#panel", main).innerHTML = "";
    renderGraph();
  }

  async function renderPanel() {
    const panel = $("#panel", main);
    if (group) return renderGroupPanel();
    if (!selected) return;
    const t = await api(`/api/tasks/${selected}`);
    if (t.id !== selected) return;
    detailCache = t;
    $("#job-layout", main).classList.add("with-panel");
    const state = t.state === "QUEUED" ? `${t.state} (${t.ready ? "ready" : "waiting"})` : t.state;
    const input = t.input !== null && t.input !== undefined
      ? `<pre class="code">${prettyJson(t.input)}</pre>`
      : t.input_text != null ? `<pre class="code">${esc(t.input_text)}${t.input_truncated ? "\n… (truncated)" : ""}</pre>` : `<div class="muted">none</div>`;
    const error = t.error
      ? `<div class="section-title">Error</div><div class="error-box"><b>${esc(t.error.type)}</b>: ${esc(t.error.message)}</div>
         ${t.error.traceback ? `<pre class="code error" id="traceback">${esc(t.error.traceback)}</pre>` : ""}`
      : "";
    panel.innerHTML = `<div class="card">
      <div class="card-head"><h2 title="${esc(t.display)}">${esc(firstLine(t.display))}</h2><button class="link" id="panel-close" title="Close">✕</button></div>
      <div class="card-body">
        <div class="row" style="margin-bottom:12px">${pill(t.state, state)}${t.optional ? `<span class="tag">optional</span>` : ""}</div>
        <dl class="kv">
          <dt>Task</dt><dd><b>${esc(t.identifier.name)}</b> <span class="tag">${esc(t.identifier.version)}</span></dd>
          <dt>Id</dt><dd class="mono">${esc(t.id)}</dd>
          ${t.parent_id ? `<dt>Parent</dt><dd class="mono"><a href="#" data-select="${t.parent_id}">${esc(t.parent_id)}</a></dd>` : ""}
          <dt>Runner</dt><dd>${t.runner ? `<span class="mono">${esc(t.runner)}</span>` : "–"}</dd>
          <dt>Attempts</dt><dd>${num(t.attempt)} · retries ${t.retry_count}/${t.max_retries} · crashes ${t.crash_count}</dd>
          <dt>Started</dt><dd>${t.started_at ? `${esc(when(t.started_at))} <span class="muted">(${ago(t.started_at)})</span>` : "–"}</dd>
          <dt>Took</dt><dd>${t.started_at && t.state !== "QUEUED" ? duration(between(t.started_at, t.state === "RUNNING" ? null : t.stopped_at)) : "–"}${t.timeout ? ` <span class="muted">(timeout ${duration(t.timeout)})</span>` : ""}</dd>
          <dt>Dependencies</dt><dd>${t.depends_on_count ? `${num(t.depends_on_count)} task${t.depends_on_count === 1 ? "" : "s"}` : "none"}</dd>
          <dt>Subtasks</dt><dd>${t.children_total ? `${num(t.children_total)} ${stackbar(Object.fromEntries(TASK_STATES.map((s) => [s, t.children.filter((c) => c.state === s).reduce((a, c) => a + c.count, 0)])), TASK_STATES)}` : "none"}</dd>
        </dl>
        ${error}
        <div class="section-title">Input <span class="faint">(${num(t.input_bytes)} bytes)</span></div>${input}
        ${t.display.includes("\n") ? `<div class="section-title">Display</div><pre class="code">${esc(t.display)}</pre>` : ""}
        <div class="section-title">Attempt history</div>
        ${t.attempts.length ? `<table class="attempts"><thead><tr><th>#</th><th>Outcome</th><th>Runner</th><th>Started</th><th>Took</th></tr></thead><tbody>
          ${t.attempts.slice().reverse().map((a) => `<tr><td>${a.attempt}</td><td><span class="outcome ${esc(a.outcome)}">${esc(a.outcome.replace("_", " "))}</span>${a.error ? `<div class="muted" title="${esc(a.error.message)}">${esc(truncate(`${a.error.type}: ${a.error.message}`, 60))}</div>` : ""}</td>
            <td class="mono" title="${esc(a.runner)}">${esc(truncate(a.runner, 18))}</td><td class="nowrap">${esc(new Date(a.started_at).toLocaleTimeString())}</td><td class="nowrap">${duration(a.seconds ?? between(a.started_at, null))}</td></tr>`).join("")}
          </tbody></table>` : `<div class="muted">Not run yet.</div>`}
      </div></div>`;
    $("#panel-close", panel).addEventListener("click", closePanel);
    $$("[data-select]", panel).forEach((a) => a.addEventListener("click", (e) => { e.preventDefault(); select(a.dataset.select); }));
  }

  async function openGroup(key, parent) {
    const [name, version] = key.slice(2).split(/@(?=v\d+\.\d+$)/);
    selected = null;
    group = { key, parent, name, version, states: new Set(), items: [], next: null };
    await loadGroup(false);
    renderGraph();
  }

  async function loadGroup(more) {
    const g = group;
    const p = new URLSearchParams({ name: g.name, version: g.version, limit: "50" });
    if (g.parent) p.set("parent", g.parent);
    else p.set("roots", "true");
    g.states.forEach((s) => p.append("state", s));
    if (more && g.next) p.set("after", g.next);
    const page = await api(`/api/jobs/${jobId}/tasks?${p}`);
    if (group !== g) return;
    g.items = more ? g.items.concat(page.items) : page.items;
    g.next = page.next_after;
    renderGroupPanel();
  }

  function renderGroupPanel() {
    const g = group;
    const panel = $("#panel", main);
    $("#job-layout", main).classList.add("with-panel");
    const level = levels.get(g.parent || "");
    const node = level && level.nodes.find((n) => n.key === g.key);
    const counts = node ? node.states : {};
    panel.innerHTML = `<div class="card">
      <div class="card-head"><h2>${num(node ? node.count : g.items.length)} × ${esc(g.name)} <span class="tag">${esc(g.version)}</span></h2><button class="link" id="panel-close" title="Close">✕</button></div>
      <div class="card-body">
        ${stackbar(counts, TASK_STATES, true)}
        <div class="chips" style="margin:12px 0">${TASK_STATES.filter((s) => counts[s]).map((s) => `<button type="button" class="chip${g.states.has(s) ? " on" : ""}" data-state="${s}">${s.toLowerCase().replace("_", " ")} ${num(counts[s])}</button>`).join("")}</div>
        ${g.items.length ? `<table class="data"><tbody>${g.items.map((t) => `<tr class="link" data-task="${t.id}"><td>${pill(t.state, t.state === "QUEUED" ? (t.ready ? "ready" : "waiting") : t.state)}</td><td><div class="name">${esc(truncate(firstLine(t.display), 40))}</div>${t.error ? `<div class="muted" style="font-size:12px">${esc(truncate(`${t.error.type}: ${t.error.message}`, 60))}</div>` : ""}</td><td class="num muted">${t.started_at && t.state !== "QUEUED" ? duration(between(t.started_at, t.state === "RUNNING" ? null : t.stopped_at)) : ""}</td></tr>`).join("")}</tbody></table>` : `<div class="empty">No tasks.</div>`}
        ${g.next ? `<div class="more-row"><button id="group-more">Load more</button></div>` : ""}
      </div></div>`;
    $("#panel-close", panel).addEventListener("click", closePanel);
    $$("tr.link", panel).forEach((tr) => tr.addEventListener("click", () => select(tr.dataset.task)));
    $$(".chip", panel).forEach((chip) => chip.addEventListener("click", () => {
      const s = chip.dataset.state;
      if (g.states.has(s)) g.states.delete(s);
      else g.states.add(s);
      loadGroup(false).catch((err) => toast(err.message, true));
    }));
    const more = $("#group-more", panel);
    if (more) more.addEventListener("click", () => loadGroup(true).catch((err) => toast(err.message, true)));
  }

  async function retry() {
    const failed = job.tasks.by_state.FAILED || 0;
    const ok = await confirmDialog(
      "Retry this job?",
      `${failed ? `${num(failed)} failed task${failed === 1 ? "" : "s"} will be queued again` : "The job resumes"} and the job goes on where it stopped.`,
      "Retry job",
    );
    if (!ok) return;
    try {
      const result = await action(`/api/jobs/${jobId}/retry`);
      toast(result.message);
      lastGraphRefresh = 0;
      await refresh(true);
    } catch (error) {
      toast(error.message, true);
    }
  }

  async function cancel() {
    const ok = await confirmDialog(
      "Cancel this job?",
      "Queued tasks will not be dispatched any more; running tasks finish. A canceled job can be resumed with Retry.",
      "Cancel job",
      true,
    );
    if (!ok) return;
    try {
      const result = await action(`/api/jobs/${jobId}/cancel`);
      toast(result.message);
      await refresh(true);
    } catch (error) {
      toast(error.message, true);
    }
  }

  async function refresh(force = false) {
    const previous = job ? job.state : null;
    job = await api(`/api/jobs/${jobId}`);
    document.title = `${job.name} · conveyor`;
    renderHeader();
    const active = !TERMINAL_JOB_STATES.has(job.state) || previous !== job.state;
    if (force || active || Date.now() - lastGraphRefresh > 30000) {
      const keys = ["", ...expanded];
      await Promise.all(keys.map((k) => loadLevel(k || null).catch(() => levels.delete(k))));
      lastGraphRefresh = Date.now();
      renderGraph();
      await renderFailures();
      if (selected && (force || active)) await renderPanel();
      else if (group && (force || active)) await loadGroup(false);
    }
  }

  return {
    async mount(el) {
      main = el;
      job = await api(`/api/jobs/${jobId}`);
      main.innerHTML = `
        <div class="card job-head" id="job-head"></div>
        <div class="grid cols-5 mt" id="job-stats"></div>
        <div class="card mt" id="job-progress" hidden><div class="card-head"><h2>Progress</h2></div><div class="card-body"></div></div>
        <div class="card mt" id="job-failures" hidden><div class="card-head"><h2 id="failures-title">Failed tasks</h2><span class="grow"></span><span class="muted">click one for its traceback</span></div><div class="card-body flush"></div></div>
        <div class="job-layout mt" id="job-layout">
          <div class="card">
            <div class="card-head"><h2>Task graph</h2><span class="muted" id="graph-count"></span><span class="grow"></span>
              <button class="small" id="collapse-all" title="Show only the root tasks">Collapse all</button></div>
            <div class="graph-legend legend-row">${["WAITING", "QUEUED", "RUNNING", "COMPUTED", "FAILED", "SKIPPED", "FAILED_OPTIONAL"].map((s) => `<span><i class="dot-state bg-${s}"></i>${s === "QUEUED" ? "ready" : s.toLowerCase().replace("_", " ")}</span>`).join("")}<span class="faint">· click a task for details, a group to list its tasks, ▸ to show subtasks</span></div>
            <div class="card-body flush" style="padding-bottom:0"><div class="graph-wrap" id="graph"><div class="skeleton">Loading the task graph…</div></div></div>
          </div>
          <div class="panel" id="panel"></div>
        </div>`;
      renderHeader();
      await loadLevel(null);
      await autoExpand();
      lastGraphRefresh = Date.now();
      renderGraph();
      await renderFailures();
      if (selected) await renderPanel();
      $("#graph", main).addEventListener("click", (event) => {
        const t = event.target.closest("[data-toggle]");
        if (t) return void toggle(t.dataset.toggle).catch((err) => toast(err.message, true));
        const g = event.target.closest("[data-group]");
        if (g) {
          const parentEl = findParentOf(g.dataset.group, g);
          return void openGroup(g.dataset.group, parentEl).catch((err) => toast(err.message, true));
        }
        const n = event.target.closest("[data-task]");
        if (n) select(n.dataset.task);
      });
      $("#collapse-all", main).addEventListener("click", () => { expanded.clear(); renderGraph(); });
    },
    refresh: () => refresh(false),
  };

  // The parent task of a group node: the level whose nodes contain it (first match).
  function findParentOf(key) {
    for (const [parent, level] of levels) {
      if ((parent === "" || expanded.has(parent)) && level.nodes.some((n) => n.key === key)) return parent || null;
    }
    return null;
  }
}

function taskRedirect(taskId) {
  return {
    async mount() {
      const task = await api(`/api/tasks/${taskId}`);
      navigate(`/jobs/${task.job_id}?task=${task.id}`, true);
    },
    async refresh() {},
  };
}

// -- runners ------------------------------------------------------------------------------------
function runnersPage() {
  let main;
  let showAll = new URLSearchParams(location.search).get("all") === "true";
  return {
    async mount(el) {
      main = el;
      main.innerHTML = `
        <div class="page-head"><h1>Runners</h1><span class="sub" id="runners-sub"></span><span class="grow"></span>
          <label class="row muted"><input type="checkbox" id="runners-all" ${showAll ? "checked" : ""}> Show stopped and gone runners</label></div>
        <div class="card"><div id="runners-body"><div class="skeleton">Loading…</div></div></div>`;
      $("#runners-all", main).addEventListener("change", (e) => {
        showAll = e.target.checked;
        history.replaceState(null, "", showAll ? "/runners?all=true" : "/runners");
        tick();
      });
    },
    async refresh() {
      const runners = await api(`/api/runners${showAll ? "?all=true" : ""}`);
      const online = runners.filter((r) => r.state === "online").length;
      $("#runners-sub", main).textContent = `${online} online`;
      const body = $("#runners-body", main);
      if (!runners.length) {
        body.innerHTML = `<div class="empty"><div class="big">No runner is online</div>Start one with <code>conveyor worker myflows.tasks</code>.</div>`;
        return;
      }
      body.innerHTML = `<table class="data"><thead><tr><th>State</th><th>Runner</th><th>Cluster</th><th>Registered tasks</th><th>Current task</th><th class="num">Done</th><th class="num">Failed</th><th class="num">Last heartbeat</th><th class="num">Up</th></tr></thead><tbody>
        ${runners.map((r) => `<tr class="${r.state === "online" ? "" : "dim"}">
          <td>${pill(r.state)}</td>
          <td><div class="name mono">${esc(r.id)}</div><div class="id">${esc(r.host)} · pid ${r.pid}</div></td>
          <td>${esc(r.cluster)}</td>
          <td>${r.identifiers.slice(0, 3).map((i) => `<span class="tag">${esc(i.name)} ${esc(i.version)}</span>`).join("")}${r.identifiers.length > 3 ? `<span class="muted nowrap" title="${esc(r.identifiers.slice(3).map((i) => `${i.name} ${i.version}`).join(", "))}">+${r.identifiers.length - 3} more</span>` : ""}</td>
          <td>${r.current_task ? `<a class="mono" href="/tasks/${r.current_task}" data-link>${short(r.current_task)}…</a>` : `<span class="faint">idle</span>`}</td>
          <td class="num">${num(r.tasks_computed)}</td>
          <td class="num">${r.tasks_failed ? `<span class="warn-text">${num(r.tasks_failed)}</span>` : "0"}</td>
          <td class="num nowrap" title="${esc(when(r.last_seen))}">${ago(r.last_seen)}</td>
          <td class="num nowrap">${duration(Math.round(between(r.started_at, r.state === "online" ? null : r.last_seen)))}</td></tr>`).join("")}
      </tbody></table>`;
    },
  };
}

// -- clusters -----------------------------------------------------------------------------------
function clustersPage() {
  let main;
  return {
    async mount(el) {
      main = el;
      main.innerHTML = `<div class="page-head"><h1>Clusters &amp; queues</h1><span class="sub">tasks waiting per task name and version, and the runners that can take them</span></div><div class="stack" id="clusters-body"></div>`;
    },
    async refresh() {
      const clusters = await api("/api/clusters");
      $("#clusters-body", main).innerHTML = clusters.map((c) => `
        <div class="card cluster-card">
          <div class="card-head"><h2>${esc(c.name)}</h2><span class="tag">${esc(c.slug)}</span><span class="grow"></span>
            <div class="figures"><span><b>${num(c.runners_online)}</b> runners online</span><span><b>${num(c.ready)}</b> ready</span><span><b>${num(c.running)}</b> running</span></div></div>
          <div class="card-body flush">${queueTable(c.queues, false)}</div>
          <div class="card-body" style="padding-top:4px"><span class="muted" style="font-size:12.5px;margin-right:6px">Registered by online runners:</span>${c.identifiers.length ? c.identifiers.map((i) => `<span class="tag">${esc(i.name)} ${esc(i.version)}</span>`).join("") : `<span class="faint">none</span>`}</div>
        </div>`).join("");
    },
  };
}

// -- start --------------------------------------------------------------------------------------
async function start() {
  try {
    auth.required = (await api("/api/auth")).token_required;
  } catch {
    auth.required = false;
  }
  updateTokenButton();
  $("#token-button").addEventListener("click", () => askToken());
  await route();
  live.timer = setInterval(tick, POLL_MS);
}

start();
