// The task graph drawn as SVG from graph-layout.js's positions.

import { STATE_COLOURS, enums } from "./enums.js";
import { duration, firstLine, num, took, truncate } from "./format.js";
import { NODE_H, NODE_W, PAD, INDENT, DROP, LABEL_H, edgePath, layoutLevel } from "./graph-layout.js";
import { html } from "./html.js";

function groupNode(node, x, y) {
  const total = node.count;
  let bx = x + 14;
  const bw = NODE_W - 28;
  const bar = [];
  for (const s of enums.taskStates) {
    const n = node.states[s] || 0;
    if (!n) continue;
    const w = (bw * n) / total;
    bar.push(html`<rect x="${bx.toFixed(1)}" y="${y + 44}" width="${Math.max(1, w).toFixed(1)}" height="6" fill="${STATE_COLOURS[s]}"/>`);
    bx += w;
  }
  const done = node.states.COMPUTED || 0, failed = (node.states.FAILED || 0) + (node.states.FAILED_OPTIONAL || 0);
  const run = node.states.RUNNING || 0;
  const summary = [done && `${num(done)} done`, run && `${num(run)} running`, failed && `${num(failed)} failed`].filter(Boolean).join(" · ") || `${num(node.states.QUEUED || 0)} queued`;
  const clip = `c${node.key.replace(/[^a-zA-Z0-9]/g, "")}${x}${y}`;
  return html`<g class="node group" data-group="${node.key}">
    <rect x="${x + 6}" y="${y - 6}" width="${NODE_W - 12}" height="${NODE_H}" rx="10" fill="#fff" stroke="#e3e6eb"/>
    <rect x="${x + 3}" y="${y - 3}" width="${NODE_W - 6}" height="${NODE_H}" rx="10" fill="#fff" stroke="#dde1e7"/>
    <rect class="box" x="${x}" y="${y}" width="${NODE_W}" height="${NODE_H}" rx="10"/>
    <text class="title" x="${x + 14}" y="${y + 20}">${truncate(`${num(total)} × ${node.identifier.name}`, 26)}</text>
    <text class="sub" x="${x + 14}" y="${y + 36}">${truncate(summary, 34)}</text>
    <clipPath id="${clip}"><rect x="${x + 14}" y="${y + 44}" width="${bw}" height="6" rx="3"/></clipPath>
    <g clip-path="url(#${clip})"><rect x="${x + 14}" y="${y + 44}" width="${bw}" height="6" fill="#eef0f3"/>${bar}</g>
    <title>${`${num(total)} ${node.identifier.name} tasks (${node.identifier.version}) — click to list them`}</title></g>`;
}

function taskNode(node, x, y, view) {
  const t = node.task;
  const state = t.state === "QUEUED" && !t.ready ? "WAITING" : t.state;
  const colour = STATE_COLOURS[state];
  const label = t.state === "QUEUED" ? (t.ready ? "ready" : "waiting") : t.state.toLowerCase().replace("_", " ");
  const seconds = took(t);
  const tookText = seconds === null ? "" : ` · ${duration(seconds)}`;
  const badges = [t.retry_count && `↻${t.retry_count}`, t.crash_count && `⚡${t.crash_count}`].filter(Boolean).join(" ");
  let toggle = "";
  if (node.children) {
    const open = view.expanded.has(t.id);
    const text = `${open ? "▾" : "▸"} ${num(node.children)}`;
    const w = 16 + text.length * 6.6;
    toggle = html`<g class="toggle" data-toggle="${t.id}"><rect x="${x + NODE_W - w - 8}" y="${y + NODE_H - 24}" width="${w}" height="18" rx="9"/><text x="${x + NODE_W - w / 2 - 8}" y="${y + NODE_H - 11}" text-anchor="middle">${text}</text><title>${open ? "Hide" : "Show"} ${num(node.children)} subtasks</title></g>`;
  }
  return html`<g class="node ${t.state}${view.selected === t.id ? " selected" : ""}" data-task="${t.id}">
    <rect class="box" x="${x}" y="${y}" width="${NODE_W}" height="${NODE_H}" rx="10"/>
    <rect x="${x}" y="${y}" width="5" height="${NODE_H}" rx="2.5" fill="${colour}"/>
    <text class="title" x="${x + 16}" y="${y + 22}">${truncate(firstLine(t.display), 27)}</text>
    <text class="state" x="${x + 16}" y="${y + 42}" fill="${colour}">${label}<tspan class="sub" fill="#6b7280">${tookText}${badges ? `  ${badges}` : ""}</tspan></text>
    ${t.state === "RUNNING" && html`<circle cx="${x + NODE_W - 14}" cy="${y + 14}" r="4" fill="${colour}"><animate attributeName="opacity" values="1;0.3;1" dur="1.4s" repeatCount="indefinite"/></circle>`}
    ${toggle}
    <title>${`${firstLine(t.display)} — ${t.identifier.name} ${t.identifier.version}, ${t.state}`}</title></g>`;
}

function drawLevel(layout, ox, oy, out, view) {
  const corners = new Map();
  for (const item of layout.placed) {
    const x = ox + item.x, y = oy + item.y;
    corners.set(item.node.key, { x, y });
    if (item.block.child) {
      const fx = x + INDENT, fy = y + NODE_H + DROP;
      const total = item.block.child.level.total;
      out.frames.push(html`<rect class="frame" x="${fx}" y="${fy}" width="${item.block.frameW}" height="${item.block.frameH}" rx="12"/>
        <text class="frame-label" x="${fx + PAD}" y="${fy + 16}">${num(total)} subtask${total === 1 ? "" : "s"}</text>
        <path class="tree-edge" d="M${x + 14},${y + NODE_H} V${fy + 26} H${fx}"/>`);
      drawLevel(item.block.child, fx + PAD, fy + PAD + LABEL_H, out, view);
    }
    out.nodes.push(item.node.kind === "group" ? groupNode(item.node, x, y) : taskNode(item.node, x, y, view));
  }
  for (const e of layout.level.edges) {
    const s = corners.get(e.source), t = corners.get(e.target);
    if (!s || !t) continue;
    out.edges.push(html`<path class="dep-edge" d="${edgePath(s, t)}" marker-end="url(#arrow)"><title>depends on</title></path>`);
  }
}

// The whole graph from the roots' level; view = {expanded, selected, childOf}.
export function graphSvg(roots, view) {
  const layout = layoutLevel(roots, view.childOf);
  const out = { frames: [], nodes: [], edges: [] };
  drawLevel(layout, 24, 24, out, view);
  const width = layout.w + 48, height = layout.h + 48;
  return html`<svg width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="Task graph">
    <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#8b93a3"/></marker></defs>
    ${out.frames}${out.edges}${out.nodes}</svg>`;
}
