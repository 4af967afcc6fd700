// The task graph's layout, pure (no DOM): tested with `node --test` (tests/js).
//
// The API serves one level of the graph at a time (a parent's children, identifiers with many
// tasks collapsed into group nodes). Each level is laid out in columns by dependency rank;
// an expanded task holds its children's level in a frame below it.

export const NODE_W = 228, NODE_H = 60, GAP_Y = 14, GAP_X = 64, PAD = 16, INDENT = 26, DROP = 20, LABEL_H = 16;

// Column of each node: 0 for nodes without dependencies in the level, else one more than the
// highest of their sources. A cycle (possible through a group node) is broken at 0.
export function rankNodes(level) {
  const incoming = new Map(level.nodes.map((n) => [n.key, []]));
  for (const e of level.edges) if (incoming.has(e.target) && incoming.has(e.source)) incoming.get(e.target).push(e.source);
  const rank = new Map();
  const visiting = new Set();
  const visit = (key) => {
    if (rank.has(key)) return rank.get(key);
    if (visiting.has(key)) return 0;
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

// The level shown inside an expanded task, or null: what layoutLevel needs from the page.
export function childLevels(levels, expanded) {
  return (node) => (node.kind === "task" && expanded.has(node.task.id) && levels.has(node.task.id) ? levels.get(node.task.id) : null);
}

function layoutNode(node, childOf) {
  const level = childOf(node);
  if (!level) return { w: NODE_W, h: NODE_H, child: null };
  const child = layoutLevel(level, childOf);
  const frameW = child.w + 2 * PAD, frameH = child.h + 2 * PAD + LABEL_H;
  return { w: Math.max(NODE_W, INDENT + frameW), h: NODE_H + DROP + frameH, child, frameW, frameH };
}

// {w, h, placed: [{node, block, x, y}], level}: positions relative to the level's corner.
export function layoutLevel(level, childOf = () => null) {
  const rank = rankNodes(level);
  const columns = [];
  for (const node of level.nodes) {
    const r = rank.get(node.key) || 0;
    (columns[r] ||= []).push({ node, block: layoutNode(node, childOf) });
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

// SVG path of a dependency edge between two node corners: a curve from the source's right
// side to the target's left, or around from below when the target is not to the right.
export function edgePath(s, t) {
  const sx = s.x + NODE_W, sy = s.y + NODE_H / 2, tx = t.x - 2, ty = t.y + NODE_H / 2;
  const bend = Math.max(24, (tx - sx) / 2);
  return tx > sx
    ? `M${sx},${sy} C${sx + bend},${sy} ${tx - bend},${ty} ${tx},${ty}`
    : `M${s.x + NODE_W / 2},${s.y + NODE_H} C${s.x + NODE_W / 2},${s.y + NODE_H + 30} ${t.x - 40},${ty} ${tx},${ty}`;
}

// Nodes on screen: the roots' level and every expanded task's level.
export function visibleNodes(levels, expanded) {
  let count = 0;
  for (const [key, level] of levels) if (key === "" || expanded.has(key)) count += level.nodes.length;
  return count;
}

// The parent task of a node key: the first shown level whose nodes contain it (null: roots).
export function parentOf(levels, expanded, key) {
  for (const [parent, level] of levels) {
    if ((parent === "" || expanded.has(parent)) && level.nodes.some((n) => n.key === key)) return parent || null;
  }
  return null;
}

// "g:Name@v1.2" → {name, version}; a name may itself contain "@".
export function parseGroupKey(key) {
  const [name, version] = key.slice(2).split(/@(?=v\d+\.\d+$)/);
  return { name, version };
}

// Which tasks to open at first: breadth first, up to `depth` levels deep, while fewer than
// `limit` nodes are shown. `load(id)` fetches a level (returns a promise).
export async function autoExpand(levels, expanded, load, limit = 60, depth = 3) {
  let frontier = [["", 0]];
  while (frontier.length) {
    const nextFrontier = [];
    for (const [key, d] of frontier) {
      const level = levels.get(key);
      if (!level || d >= depth) continue;
      for (const node of level.nodes) {
        if (node.kind !== "task" || !node.children) continue;
        if (visibleNodes(levels, expanded) >= limit) return;
        const id = node.task.id;
        if (!levels.has(id)) await load(id);
        expanded.add(id);
        nextFrontier.push([id, d + 1]);
      }
    }
    frontier = nextFrontier;
  }
}
