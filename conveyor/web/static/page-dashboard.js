// The dashboard: headline figures, throughput, jobs by state, queues and recent failures.

import { api } from "./api.js";
import { $, $$ } from "./dom.js";
import { enums } from "./enums.js";
import { ago, firstLine, num, truncate } from "./format.js";
import { html, render } from "./html.js";
import { navigate } from "./router.js";
import { pill, queueTable, stackbar, throughputChart } from "./widgets.js";

const LAYOUT = html`
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

const LEGEND = html`<span class="graph-legend"><span><i class="dot-state bg-COMPUTED"></i>computed</span><span><i class="dot-state bg-FAILED"></i>failed</span><span><i class="dot-state bg-SKIPPED"></i>given back</span></span>`;

function stats(d) {
  const ready = d.queues.reduce((s, q) => s + q.ready, 0);
  const running = d.queues.reduce((s, q) => s + q.running, 0);
  const by = d.jobs_by_state;
  const active = (by.RUNNING || 0) + (by.STARTED || 0) + (by.SUBMITTED || 0);
  const rate = d.throughput.tasks_per_second;
  const clusters = Object.entries(d.runners_by_cluster).map(([c, n]) => `${c}: ${n}`).join(" · ") || "none connected";
  return html`
    <a class="card stat" href="/jobs?state=RUNNING&state=STARTED&state=SUBMITTED" data-link><div class="label">Active jobs</div><div class="value">${num(active)}</div><div class="hint">${num(d.jobs_total)} jobs in total</div></a>
    <a class="card stat${by.FAILED ? " alert" : ""}" href="/jobs?state=FAILED" data-link><div class="label">Failed jobs</div><div class="value">${num(by.FAILED)}</div><div class="hint">retry them from the job page</div></a>
    <div class="card stat"><div class="label">Tasks per second</div><div class="value">${rate.toFixed(rate < 10 ? 2 : 1)}</div><div class="hint">attempts ended, last minute</div></div>
    <a class="card stat" href="/runners" data-link><div class="label">Runners online</div><div class="value">${num(d.runners_online)}</div><div class="hint">${clusters}</div></a>
    <a class="card stat" href="/clusters" data-link><div class="label">Tasks ready</div><div class="value">${num(ready)}<small>${num(running)} running</small></div><div class="hint">waiting for a runner</div></a>`;
}

function jobs(d, latest) {
  if (!d.jobs_total) return html`<div class="empty"><div class="big">No jobs yet</div>Submit one with <code>conveyor submit</code> or <code>client.jobs().submit(…)</code></div>`;
  const counts = d.jobs_by_state;
  return html`${stackbar(counts, enums.jobStates, true)}
    <div class="legend">${enums.jobStates.map((s) => html`<a class="item" href="/jobs?state=${s}" data-link><i class="dot-state bg-${s}"></i>${s.toLowerCase()} <b>${num(counts[s])}</b></a>`)}</div>
    <div class="latest">${latest.items.map((j) => html`<a href="/jobs/${j.id}" data-link>${pill(j.state)}<span class="n">${j.name}</span><span class="t">${num(j.tasks.done)} / ${num(j.tasks.total)} tasks · ${ago(j.submitted_at)}</span></a>`)}</div>`;
}

function failures(list) {
  if (!list.length) return html`<div class="empty"><div class="big">No failures</div>Every task that ran so far succeeded or is retrying.</div>`;
  return html`<ul class="failures">${list.map((f) => html`
    <li data-href="/jobs/${f.job_id}?task=${f.task_id}">
      <span class="dot-state bg-${f.state}" style="margin-top:6px"></span>
      <div class="what"><div><b>${truncate(firstLine(f.display), 48)}</b> <span class="muted">in</span> ${truncate(f.job_name, 40)}</div>
      <div class="err">${f.error ? `${f.error.type}: ${f.error.message}` : f.state}</div></div>
      <span class="when">${ago(f.stopped_at)}</span></li>`)}</ul>`;
}

export function dashboardPage() {
  let main;
  return {
    async mount(el) {
      main = el;
      render(main, LAYOUT);
    },
    async refresh() {
      const [d, latest] = await Promise.all([api("/api/dashboard"), api("/api/jobs?limit=6")]);
      render($("#dash-stats", main), stats(d));
      render($("#dash-chart", main), throughputChart(d.throughput.points));
      render($("#tp-legend", main), LEGEND);
      render($("#dash-jobs", main), jobs(d, latest));
      render($("#dash-queues", main), queueTable(d.queues, true));
      render($("#dash-failures", main), failures(d.failures));
      $$("#dash-failures li", main).forEach((li) => li.addEventListener("click", () => navigate(li.dataset.href)));
      $("#dash-now", main).textContent = `as of ${new Date(d.now).toLocaleTimeString()}`;
    },
  };
}
