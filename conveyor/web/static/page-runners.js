// Runners: who is online, what they registered, what they run.

import { api } from "./api.js";
import { $ } from "./dom.js";
import { ago, between, duration, num, short, when } from "./format.js";
import { html, render } from "./html.js";
import { tick } from "./live.js";
import { pill } from "./widgets.js";

function row(r) {
  const more = r.identifiers.slice(3).map((i) => `${i.name} ${i.version}`).join(", ");
  return html`<tr class="${r.state === "online" ? "" : "dim"}">
    <td>${pill(r.state)}</td>
    <td><div class="name mono">${r.id}</div><div class="id">${r.host} · pid ${r.pid}</div></td>
    <td>${r.cluster}</td>
    <td>${r.identifiers.slice(0, 3).map((i) => html`<span class="tag">${i.name} ${i.version}</span>`)}${r.identifiers.length > 3 && html`<span class="muted nowrap" title="${more}">+${r.identifiers.length - 3} more</span>`}</td>
    <td>${r.current_task ? html`<a class="mono" href="/tasks/${r.current_task}" data-link>${short(r.current_task)}…</a>` : html`<span class="faint">idle</span>`}</td>
    <td class="num">${num(r.tasks_computed)}</td>
    <td class="num">${r.tasks_failed ? html`<span class="warn-text">${num(r.tasks_failed)}</span>` : "0"}</td>
    <td class="num nowrap" title="${when(r.last_seen)}">${ago(r.last_seen)}</td>
    <td class="num nowrap">${duration(Math.round(between(r.started_at, r.state === "online" ? null : r.last_seen)))}</td></tr>`;
}

export function runnersPage() {
  let main;
  let showAll = new URLSearchParams(location.search).get("all") === "true";
  return {
    async mount(el) {
      main = el;
      render(main, html`
        <div class="page-head"><h1>Runners</h1><span class="sub" id="runners-sub"></span><span class="grow"></span>
          <label class="row muted"><input type="checkbox" id="runners-all" ${showAll ? html`checked` : ""}> Show stopped and gone runners</label></div>
        <div class="card"><div id="runners-body"><div class="skeleton">Loading…</div></div></div>`);
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
        render(body, html`<div class="empty"><div class="big">No runner is online</div>Start one with <code>conveyor worker myflows.tasks</code>.</div>`);
        return;
      }
      render(body, html`<table class="data"><thead><tr><th>State</th><th>Runner</th><th>Cluster</th><th>Registered tasks</th><th>Current task</th><th class="num">Done</th><th class="num">Failed</th><th class="num">Last heartbeat</th><th class="num">Up</th></tr></thead><tbody>
        ${runners.map(row)}
      </tbody></table>`);
    },
  };
}
