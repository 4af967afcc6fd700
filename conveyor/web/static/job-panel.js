// The job page's side panel: one task's details, or the paged list of a group's tasks.

import { enums } from "./enums.js";
import { ago, between, duration, firstLine, num, stateLabel, took, truncate, when } from "./format.js";
import { html, prettyJson } from "./html.js";
import { pill, stackbar } from "./widgets.js";

const close = html`<button class="link" id="panel-close" title="Close">✕</button>`;

function input(t) {
  if (t.input !== null && t.input !== undefined) return html`<pre class="code">${prettyJson(t.input)}</pre>`;
  if (t.input_text != null) return html`<pre class="code">${t.input_text}${t.input_truncated ? "\n… (truncated)" : ""}</pre>`;
  return html`<div class="muted">none</div>`;
}

function error(t) {
  if (!t.error) return "";
  return html`<div class="section-title">Error</div><div class="error-box"><b>${t.error.type}</b>: ${t.error.message}</div>
    ${t.error.traceback && html`<pre class="code error" id="traceback">${t.error.traceback}</pre>`}`;
}

function attempts(t) {
  if (!t.attempts.length) return html`<div class="muted">Not run yet.</div>`;
  return html`<table class="attempts"><thead><tr><th>#</th><th>Outcome</th><th>Runner</th><th>Started</th><th>Took</th></tr></thead><tbody>
    ${t.attempts.slice().reverse().map((a) => html`<tr><td>${a.attempt}</td><td><span class="outcome ${a.outcome}">${a.outcome.replace("_", " ")}</span>${a.error && html`<div class="muted" title="${a.error.message}">${truncate(`${a.error.type}: ${a.error.message}`, 60)}</div>`}</td>
      <td class="mono" title="${a.runner}">${truncate(a.runner, 18)}</td><td class="nowrap">${new Date(a.started_at).toLocaleTimeString()}</td><td class="nowrap">${duration(a.seconds ?? between(a.started_at, null))}</td></tr>`)}
    </tbody></table>`;
}

function subtasks(t) {
  if (!t.children_total) return "none";
  const states = enums.taskStates;
  const counts = Object.fromEntries(states.map((s) => [s, t.children.filter((c) => c.state === s).reduce((a, c) => a + c.count, 0)]));
  return html`${num(t.children_total)} ${stackbar(counts, states)}`;
}

export function taskPanel(t) {
  const state = t.state === "QUEUED" ? `${t.state} (${t.ready ? "ready" : "waiting"})` : t.state;
  const seconds = took(t);
  return html`<div class="card">
    <div class="card-head"><h2 title="${t.display}">${firstLine(t.display)}</h2>${close}</div>
    <div class="card-body">
      <div class="row" style="margin-bottom:12px">${pill(t.state, state)}${t.optional && html`<span class="tag">optional</span>`}</div>
      <dl class="kv">
        <dt>Task</dt><dd><b>${t.identifier.name}</b> <span class="tag">${t.identifier.version}</span></dd>
        <dt>Id</dt><dd class="mono">${t.id}</dd>
        ${t.parent_id && html`<dt>Parent</dt><dd class="mono"><a href="#" data-select="${t.parent_id}">${t.parent_id}</a></dd>`}
        <dt>Runner</dt><dd>${t.runner ? html`<span class="mono">${t.runner}</span>` : "–"}</dd>
        <dt>Attempts</dt><dd>${num(t.attempt)} · retries ${t.retry_count}/${t.max_retries} · crashes ${t.crash_count}</dd>
        <dt>Started</dt><dd>${t.started_at ? html`${when(t.started_at)} <span class="muted">(${ago(t.started_at)})</span>` : "–"}</dd>
        <dt>Took</dt><dd>${seconds === null ? "–" : duration(seconds)}${t.timeout ? html` <span class="muted">(timeout ${duration(t.timeout)})</span>` : ""}</dd>
        <dt>Dependencies</dt><dd>${t.depends_on_count ? `${num(t.depends_on_count)} task${t.depends_on_count === 1 ? "" : "s"}` : "none"}</dd>
        <dt>Subtasks</dt><dd>${subtasks(t)}</dd>
      </dl>
      ${error(t)}
      <div class="section-title">Input <span class="faint">(${num(t.input_bytes)} bytes)</span></div>${input(t)}
      ${t.display.includes("\n") && html`<div class="section-title">Display</div><pre class="code">${t.display}</pre>`}
      <div class="section-title">Attempt history</div>
      ${attempts(t)}
    </div></div>`;
}

// group = {name, version, states (filter), items, next}; node = the group's graph node.
export function groupPanel(group, node) {
  const counts = node ? node.states : {};
  const states = enums.taskStates;
  const row = (t) => {
    const seconds = took(t);
    return html`<tr class="link" data-task="${t.id}"><td>${pill(t.state, t.state === "QUEUED" ? (t.ready ? "ready" : "waiting") : t.state)}</td><td><div class="name">${truncate(firstLine(t.display), 40)}</div>${t.error && html`<div class="muted" style="font-size:12px">${truncate(`${t.error.type}: ${t.error.message}`, 60)}</div>`}</td><td class="num muted">${seconds === null ? "" : duration(seconds)}</td></tr>`;
  };
  return html`<div class="card">
    <div class="card-head"><h2>${num(node ? node.count : group.items.length)} × ${group.name} <span class="tag">${group.version}</span></h2>${close}</div>
    <div class="card-body">
      ${stackbar(counts, states, true)}
      <div class="chips" style="margin:12px 0">${states.filter((s) => counts[s]).map((s) => html`<button type="button" class="chip${group.states.has(s) ? " on" : ""}" data-state="${s}">${stateLabel(s)} ${num(counts[s])}</button>`)}</div>
      ${group.items.length ? html`<table class="data"><tbody>${group.items.map(row)}</tbody></table>` : html`<div class="empty">No tasks.</div>`}
      ${group.next && html`<div class="more-row"><button id="group-more">Load more</button></div>`}
    </div></div>`;
}
