// Clusters and their queues: tasks waiting per name and version, and who can take them.

import { api } from "./api.js";
import { $ } from "./dom.js";
import { num } from "./format.js";
import { html, render } from "./html.js";
import { queueTable } from "./widgets.js";

function card(c) {
  const registered = c.identifiers.length
    ? c.identifiers.map((i) => html`<span class="tag">${i.name} ${i.version}</span>`)
    : html`<span class="faint">none</span>`;
  return html`
    <div class="card cluster-card">
      <div class="card-head"><h2>${c.name}</h2><span class="tag">${c.slug}</span><span class="grow"></span>
        <div class="figures"><span><b>${num(c.runners_online)}</b> runners online</span><span><b>${num(c.ready)}</b> ready</span><span><b>${num(c.running)}</b> running</span></div></div>
      <div class="card-body flush">${queueTable(c.queues, false)}</div>
      <div class="card-body" style="padding-top:4px"><span class="muted" style="font-size:12.5px;margin-right:6px">Registered by online runners:</span>${registered}</div>
    </div>`;
}

export function clustersPage() {
  let main;
  return {
    async mount(el) {
      main = el;
      render(main, html`<div class="page-head"><h1>Clusters &amp; queues</h1><span class="sub">tasks waiting per task name and version, and the runners that can take them</span></div><div class="stack" id="clusters-body"></div>`);
    },
    async refresh() {
      const clusters = await api("/api/clusters");
      render($("#clusters-body", main), html`${clusters.map(card)}`);
    },
  };
}
