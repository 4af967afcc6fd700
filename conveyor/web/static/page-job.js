// The job page: header and figures, progress, failed tasks, the task graph (one level at a
// time, groups paged in the side panel) and the retry / cancel actions.

import { action, api } from "./api.js";
import { $, $$, confirmDialog, toast, toastError } from "./dom.js";
import { enums } from "./enums.js";
import { ago, duration, firstLine, num, stateLabel, truncate, when } from "./format.js";
import { autoExpand, childLevels, parentOf, parseGroupKey, visibleNodes } from "./graph-layout.js";
import { html, render } from "./html.js";
import { graphSvg } from "./job-graph.js";
import { groupPanel, taskPanel } from "./job-panel.js";
import { pill, stackbar } from "./widgets.js";

// WAITING (a queued task whose dependencies are not complete) first, then the stored states.
const graphLegend = () => ["WAITING", ...enums.taskStates];

const layout = () => html`
  <div class="card job-head" id="job-head"></div>
  <div class="grid cols-5 mt" id="job-stats"></div>
  <div class="card mt" id="job-progress" hidden><div class="card-head"><h2>Progress</h2></div><div class="card-body"></div></div>
  <div class="card mt" id="job-failures" hidden><div class="card-head"><h2 id="failures-title">Failed tasks</h2><span class="grow"></span><span class="muted">click one for its traceback</span></div><div class="card-body flush"></div></div>
  <div class="job-layout mt" id="job-layout">
    <div class="card">
      <div class="card-head"><h2>Task graph</h2><span class="muted" id="graph-count"></span><span class="grow"></span>
        <button class="small" id="collapse-all" title="Show only the root tasks">Collapse all</button></div>
      <div class="graph-legend legend-row">${graphLegend().map((s) => html`<span><i class="dot-state bg-${s}"></i>${s === "QUEUED" ? "ready" : stateLabel(s)}</span>`)}<span class="faint">· click a task for details, a group to list its tasks, ▸ to show subtasks</span></div>
      <div class="card-body flush" style="padding-bottom:0"><div class="graph-wrap" id="graph"><div class="skeleton">Loading the task graph…</div></div></div>
    </div>
    <div class="panel" id="panel"></div>
  </div>`;

function header(j) {
  return html`
    <div class="title">
      <div class="crumbs"><a href="/jobs" data-link>Jobs</a> / ${truncate(j.name, 60)}</div>
      <h1>${j.name} ${pill(j.state)}</h1>
      <div class="meta"><span>id <b class="mono">${j.id}</b></span><span>cluster <b>${j.cluster}</b></span>
        <span>submitted <b title="${when(j.submitted_at)}">${ago(j.submitted_at)}</b></span>
        <span>${num(j.root_count)} root task${j.root_count === 1 ? "" : "s"}</span></div>
    </div>
    <div class="actions">
      <button id="retry-button" class="primary" ${j.can_retry ? "" : html`disabled`} title="Requeue the failed tasks and resume the job">↻ Retry</button>
      <button id="cancel-button" class="danger" ${j.can_cancel ? "" : html`disabled`} title="Stop dispatching queued tasks">✕ Cancel</button>
    </div>`;
}

function figures(j) {
  const s = j.stats;
  const counts = j.tasks.by_state;
  const states = enums.taskStates;
  return html`
    <div class="card stat" style="grid-column: span 2"><div class="label">Tasks</div><div class="value">${num(j.tasks.done)}<small>of ${num(j.tasks.total)} done</small></div>
      <div style="margin-top:10px">${stackbar(counts, states, true)}</div>
      <div class="legend">${states.filter((x) => counts[x]).map((x) => html`<span class="item"><i class="dot-state bg-${x}"></i>${stateLabel(x)} <b>${num(counts[x])}</b></span>`)}</div></div>
    <div class="card stat"><div class="label">Elapsed</div><div class="value">${duration(s.elapsed_seconds)}</div><div class="hint">${s.first_task_started_at ? `first start ${ago(s.first_task_started_at)}` : "not started"}</div></div>
    <div class="card stat"><div class="label">Compute time</div><div class="value">${duration(s.compute_seconds)}</div><div class="hint">sum over every attempt</div></div>
    <div class="card stat"><div class="label">Parallelism</div><div class="value">${s.parallelism.toFixed(1)}<small>×</small></div><div class="hint">compute time / elapsed</div></div>`;
}

function progressBars(progress) {
  return html`${progress.map((p) => {
    const pct = p.total ? Math.min(100, (100 * p.done) / p.total) : 0;
    return html`<div class="progress"><span class="name">${p.label ?? "progress"}</span><div class="track"><div class="fill${p.total && p.done >= p.total ? " done" : ""}" style="width:${pct}%"></div></div><span class="num">${num(p.done)} / ${num(p.total)} · ${pct.toFixed(0)}%</span></div>`;
  })}`;
}

function failureList(items) {
  return html`<ul class="failures">${items.map((t) => html`
    <li data-task="${t.id}"><span class="dot-state bg-${t.state}" style="margin-top:6px"></span>
      <div class="what"><div><b>${truncate(firstLine(t.display), 60)}</b> <span class="muted">${t.identifier.name} ${t.identifier.version}${t.retry_count ? ` · ${t.retry_count} retries` : ""}${t.crash_count ? ` · ${t.crash_count} crashes` : ""}</span></div>
      <div class="err">${t.error ? `${t.error.type}: ${t.error.message}` : t.state}</div></div>
      <span class="when">${ago(t.stopped_at)}</span></li>`)}</ul>`;
}

export function jobPage(jobId) {
  let main;
  let job = null;
  const levels = new Map(); // parent task id ("" for roots) → GraphLevel
  const expanded = new Set(); // task ids whose children are shown
  const loading = new Set();
  let selected = new URLSearchParams(location.search).get("task");
  let group = null; // {key, parent, name, version, states (filter), items, next}
  let lastGraphRefresh = 0;

  async function loadLevel(parent) {
    const url = `/api/jobs/${jobId}/graph${parent ? `?parent=${parent}` : ""}`;
    levels.set(parent || "", await api(url));
  }

  function renderGraph() {
    const wrap = $("#graph", main);
    const roots = levels.get("");
    if (!roots) return;
    if (!roots.nodes.length) {
      render(wrap, html`<div class="empty">This job has no tasks.</div>`);
      return;
    }
    render(wrap, graphSvg(roots, { expanded, selected, childOf: childLevels(levels, expanded) }));
    $("#graph-count", main).textContent = `${num(visibleNodes(levels, expanded))} nodes shown`;
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
    render($("#job-head", main), header(j));
    $("#retry-button", main).addEventListener("click", retry);
    $("#cancel-button", main).addEventListener("click", cancel);
    render($("#job-stats", main), figures(j));
    const progress = $("#job-progress", main);
    progress.hidden = !j.progress.length;
    render($(".card-body", progress), progressBars(j.progress));
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
    render($(".card-body", card), failureList(page.items));
    $$("li", card).forEach((li) => li.addEventListener("click", () => select(li.dataset.task)));
  }

  function select(taskId) {
    selected = taskId;
    group = null;
    const url = new URL(location.href);
    url.searchParams.set("task", taskId);
    history.replaceState(null, "", url);
    renderGraph();
    renderPanel().catch(toastError);
  }

  function closePanel() {
    selected = null;
    group = null;
    const url = new URL(location.href);
    url.searchParams.delete("task");
    history.replaceState(null, "", url);
    $("#job-layout", main).classList.remove("with-panel");
    render($("#panel", main), html``);
    renderGraph();
  }

  async function renderPanel() {
    const panel = $("#panel", main);
    if (group) return renderGroupPanel();
    if (!selected) return;
    const t = await api(`/api/tasks/${selected}`);
    if (t.id !== selected) return;
    $("#job-layout", main).classList.add("with-panel");
    render(panel, taskPanel(t));
    $("#panel-close", panel).addEventListener("click", closePanel);
    $$("[data-select]", panel).forEach((a) => a.addEventListener("click", (e) => { e.preventDefault(); select(a.dataset.select); }));
  }

  async function openGroup(key, parent) {
    selected = null;
    group = { key, parent, ...parseGroupKey(key), states: new Set(), items: [], next: null };
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
    render(panel, groupPanel(g, node));
    $("#panel-close", panel).addEventListener("click", closePanel);
    $$("tr.link", panel).forEach((tr) => tr.addEventListener("click", () => select(tr.dataset.task)));
    $$(".chip", panel).forEach((chip) => chip.addEventListener("click", () => {
      const s = chip.dataset.state;
      if (g.states.has(s)) g.states.delete(s);
      else g.states.add(s);
      loadGroup(false).catch(toastError);
    }));
    const more = $("#group-more", panel);
    if (more) more.addEventListener("click", () => loadGroup(true).catch(toastError));
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
      toastError(error);
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
      toastError(error);
    }
  }

  async function refresh(force = false) {
    const previous = job ? job.state : null;
    job = await api(`/api/jobs/${jobId}`);
    document.title = `${job.name} · conveyor`;
    renderHeader();
    const active = !enums.terminalJobStates.has(job.state) || previous !== job.state;
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
      render(main, layout());
      renderHeader();
      await loadLevel(null);
      await autoExpand(levels, expanded, loadLevel);
      lastGraphRefresh = Date.now();
      renderGraph();
      await renderFailures();
      if (selected) await renderPanel();
      $("#graph", main).addEventListener("click", (event) => {
        const t = event.target.closest("[data-toggle]");
        if (t) return void toggle(t.dataset.toggle).catch(toastError);
        const g = event.target.closest("[data-group]");
        if (g) return void openGroup(g.dataset.group, parentOf(levels, expanded, g.dataset.group)).catch(toastError);
        const n = event.target.closest("[data-task]");
        if (n) select(n.dataset.task);
      });
      $("#collapse-all", main).addEventListener("click", () => { expanded.clear(); renderGraph(); });
    },
    refresh: () => refresh(false),
  };
}
