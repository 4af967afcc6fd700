// Pieces several pages draw: state pills, stacked bars, the queue table, the throughput chart.

import { STATE_COLOURS } from "./enums.js";
import { clock, num } from "./format.js";
import { html } from "./html.js";

export const pill = (state, label) => html`<span class="pill ${state}">${label ?? state}</span>`;

export function stackbar(counts, order, tall = false) {
  const total = order.reduce((sum, s) => sum + (counts[s] || 0), 0);
  const cls = `stackbar${tall ? " tall" : ""}`;
  if (!total) return html`<div class="${cls}"></div>`;
  const parts = order
    .filter((s) => counts[s])
    .map((s) => html`<span class="bg-${s}" style="width:${(100 * counts[s]) / total}%" title="${s}: ${num(counts[s])}"></span>`);
  return html`<div class="${cls}">${parts}</div>`;
}

export function queueTable(queues, withCluster) {
  if (!queues.length) return html`<div class="empty"><div class="big">All queues are empty</div>No task is waiting for a runner or running.</div>`;
  const max = Math.max(1, ...queues.map((q) => q.ready));
  const cols = html`<colgroup>${withCluster && html`<col class="c-cluster">`}<col class="c-task"><col class="c-version"><col class="c-ready"><col class="c-running"><col class="c-consumers"></colgroup>`;
  const consumers = (q) => {
    if (q.consumers) return num(q.consumers);
    return q.ready ? html`<span class="warn-text" title="No online runner of this cluster registered a compatible version">none</span>` : "0";
  };
  return html`<table class="data queues">${cols}<thead><tr>${withCluster && html`<th>Cluster</th>`}<th>Task</th><th>Version</th><th class="num">Ready</th><th class="num">Running</th><th class="num">Consumers</th></tr></thead><tbody>
    ${queues.map((q) => html`<tr>
      ${withCluster && html`<td>${q.cluster}</td>`}
      <td class="name">${q.identifier.name}</td><td><span class="tag">${q.identifier.version}</span></td>
      <td class="num"><div class="depth"><span>${num(q.ready)}</span><div class="track"><span style="width:${(100 * q.ready) / max}%"></span></div></div></td>
      <td class="num">${num(q.running)}</td>
      <td class="num">${consumers(q)}</td></tr>`)}
  </tbody></table>`;
}

function niceMax(value) {
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
  return value;
}

export function throughputChart(points) {
  const width = 640, height = 250, left = 46, bottom = 22, top = 8;
  const max = Math.max(1, ...points.map((p) => p.computed + p.failed + p.other));
  const scale = niceMax(max);
  const barW = (width - left) / points.length;
  const y = (v) => height - bottom - ((height - bottom - top) * v) / scale;
  const bars = [];
  points.forEach((p, i) => {
    const x = left + i * barW + 1.5;
    const w = Math.max(1, barW - 3);
    let base = 0;
    for (const [value, colour] of [[p.computed, STATE_COLOURS.COMPUTED], [p.failed, STATE_COLOURS.FAILED], [p.other, STATE_COLOURS.SKIPPED]]) {
      if (!value) continue;
      const y0 = y(base), y1 = y(base + value);
      const title = `${clock(p.minute)}: ${p.computed} computed, ${p.failed} failed, ${p.other} given back (${((p.computed + p.failed + p.other) / 60).toFixed(2)}/s)`;
      bars.push(html`<rect x="${x.toFixed(1)}" y="${y1.toFixed(1)}" width="${w.toFixed(1)}" height="${Math.max(1, y0 - y1).toFixed(1)}" rx="2" fill="${colour}" opacity="0.85"><title>${title}</title></rect>`);
      base += value;
    }
  });
  const grid = [0, 0.5, 1].map((f) => {
    const v = scale * f;
    return html`<line class="gridline" x1="${left}" x2="${width}" y1="${y(v)}" y2="${y(v)}"/><text class="axis" x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${num(Math.round(v))}</text>`;
  });
  const labels = [0, Math.floor(points.length / 2), points.length - 1]
    .map((i) => html`<text class="axis" x="${left + i * barW + barW / 2}" y="${height - 6}" text-anchor="middle">${clock(points[i].minute)}</text>`);
  return html`<svg viewBox="0 0 ${width} ${height}" preserveAspectRatio="none" role="img" aria-label="Task attempts per minute">${grid}${bars}${labels}<text class="axis" x="${width}" y="${top + 4}" text-anchor="end">per minute</text></svg>`;
}
