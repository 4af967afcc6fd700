// The job list: filters (state, text, cluster, time) kept in the URL, keyset pages.

import { api } from "./api.js";
import { $, $$, toastError } from "./dom.js";
import { enums } from "./enums.js";
import { ago, between, duration, num, truncate, when } from "./format.js";
import { html, render } from "./html.js";
import { navigate } from "./router.js";
import { pill, stackbar } from "./widgets.js";

const TIME_RANGES = [["", "Any time"], ["1", "Last hour"], ["24", "Last 24 hours"], ["168", "Last 7 days"], ["720", "Last 30 days"]];

function row(j) {
  const running = !enums.terminalJobStates.has(j.state);
  const dur = between(j.submitted_at, running ? null : j.updated_at);
  return html`<tr class="link" data-href="/jobs/${j.id}">
    <td>${pill(j.state)}</td>
    <td><div class="name">${truncate(j.name, 60)}</div><div class="id">${j.id}</div></td>
    <td><div class="row">${stackbar(j.tasks.by_state, enums.taskStates)}<span class="muted nowrap" style="font-size:12.5px;min-width:88px;text-align:right">${num(j.tasks.done)} / ${num(j.tasks.total)}</span></div></td>
    <td>${j.cluster}</td>
    <td class="num" title="${when(j.submitted_at)}">${ago(j.submitted_at)}</td>
    <td class="num">${duration(dur)}</td></tr>`;
}

export function jobsPage() {
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

  function draw() {
    const body = $("#jobs-body", main);
    if (!rows.length) {
      const filtered = filters.states.size || filters.q || filters.cluster || filters.hours;
      render(body, html`<div class="empty"><div class="big">No jobs match</div>${filtered ? "Try fewer filters." : "Submit a job and it shows up here."}</div>`);
      return;
    }
    render(body, html`<table class="data"><thead><tr><th>State</th><th>Job</th><th style="width:28%">Tasks</th><th>Cluster</th><th class="num">Submitted</th><th class="num">Duration</th></tr></thead><tbody>
      ${rows.map(row)}</tbody></table>
      ${next && html`<div class="more-row"><button id="jobs-more">Load older jobs</button></div>`}`);
    $$("tr.link", body).forEach((tr) => tr.addEventListener("click", () => navigate(tr.dataset.href)));
    const more = $("#jobs-more", body);
    if (more) more.addEventListener("click", () => loadMore().catch(toastError));
  }

  async function loadMore() {
    const page = await api(`/api/jobs?${query(next)}`);
    rows = rows.concat(page.items);
    next = page.next_before;
    extraPages = true;
    draw();
  }

  async function reload() {
    const page = await api(`/api/jobs?${query(null)}`);
    rows = page.items;
    next = page.next_before;
    extraPages = false;
    draw();
  }

  const changed = () => { syncUrl(); reload().catch(toastError); };

  return {
    async mount(el) {
      main = el;
      const clusters = await api("/api/clusters");
      render(main, html`
        <div class="page-head"><h1>Jobs</h1><span class="grow"></span></div>
        <div class="card">
          <div class="filters">
            <input type="search" id="jobs-q" placeholder="Search by name, job id or task id" value="${filters.q}" aria-label="Search jobs">
            <div class="chips" id="jobs-states">${enums.jobStates.map((s) => html`<button type="button" class="chip${filters.states.has(s) ? " on" : ""}" data-state="${s}">${s.toLowerCase()}</button>`)}</div>
            <span class="grow" style="flex:1"></span>
            <select id="jobs-cluster" aria-label="Cluster"><option value="">All clusters</option>${clusters.map((c) => html`<option value="${c.slug}"${c.slug === filters.cluster ? html` selected` : ""}>${c.name}</option>`)}</select>
            <select id="jobs-time" aria-label="Submitted">${TIME_RANGES.map(([v, l]) => html`<option value="${v}"${v === filters.hours ? html` selected` : ""}>${l}</option>`)}</select>
          </div>
          <div id="jobs-body"><div class="skeleton">Loading…</div></div>
        </div>`);
      let debounce = null;
      $("#jobs-q", main).addEventListener("input", (e) => {
        filters.q = e.target.value;
        clearTimeout(debounce);
        debounce = setTimeout(changed, 250);
      });
      $$("#jobs-states .chip", main).forEach((chip) => chip.addEventListener("click", () => {
        const s = chip.dataset.state;
        if (filters.states.has(s)) filters.states.delete(s);
        else filters.states.add(s);
        chip.classList.toggle("on");
        changed();
      }));
      $("#jobs-cluster", main).addEventListener("change", (e) => { filters.cluster = e.target.value; changed(); });
      $("#jobs-time", main).addEventListener("change", (e) => { filters.hours = e.target.value; changed(); });
    },
    async refresh() {
      // Live updates for the first page; older pages stay as loaded (keyset pages do not move).
      if (extraPages) return;
      await reload();
    },
  };
}
