// node --test: the task graph's layout (conveyor/web/static/graph-layout.js), no DOM.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  GAP_X, NODE_H, NODE_W, autoExpand, childLevels, edgePath, layoutLevel, parentOf,
  parseGroupKey, rankNodes, visibleNodes,
} from "../../conveyor/web/static/graph-layout.js";

const task = (id, children = 0) => ({ key: id, kind: "task", task: { id }, children });
const group = (name, version) => ({ key: `g:${name}@${version}`, kind: "group" });
const level = (nodes, edges = [], total = nodes.length) => ({ nodes, edges, total });

test("ranks follow dependencies: a chain gets one column per step", () => {
  const l = level([task("a"), task("b"), task("c")], [{ source: "a", target: "b" }, { source: "b", target: "c" }]);
  assert.deepEqual([...rankNodes(l)], [["a", 0], ["b", 1], ["c", 2]]);
});

test("a diamond puts the sink after its longest path", () => {
  const edges = [["a", "b"], ["a", "c"], ["b", "d"], ["c", "d"], ["a", "d"]].map(([source, target]) => ({ source, target }));
  const rank = rankNodes(level(["a", "b", "c", "d"].map((k) => task(k)), edges));
  assert.equal(rank.get("d"), 2);
  assert.equal(rank.get("b"), rank.get("c"));
});

test("a cycle through a group does not loop forever", () => {
  const l = level([task("a"), group("Chunk", "v1.0")], [
    { source: "a", target: "g:Chunk@v1.0" }, { source: "g:Chunk@v1.0", target: "a" },
  ]);
  const rank = rankNodes(l);
  assert.equal(rank.size, 2);
});

test("edges to nodes outside the level are ignored", () => {
  const rank = rankNodes(level([task("a")], [{ source: "elsewhere", target: "a" }]));
  assert.equal(rank.get("a"), 0);
});

test("columns are laid out left to right, nodes stacked in each", () => {
  const l = level([task("a"), task("b"), task("c")], [{ source: "a", target: "c" }]);
  const layout = layoutLevel(l);
  const at = Object.fromEntries(layout.placed.map((p) => [p.node.key, [p.x, p.y]]));
  assert.deepEqual(at.a, [0, 0]);
  assert.equal(at.b[0], 0);
  assert.ok(at.b[1] >= NODE_H);
  assert.deepEqual(at.c, [NODE_W + GAP_X, 0]);
  assert.equal(layout.w, 2 * NODE_W + GAP_X);
});

test("an expanded task holds its children in a frame below it, placed last in its column", () => {
  const levels = new Map([
    ["", level([task("parent", 2), task("plain")])],
    ["parent", level([task("x"), task("y")], [{ source: "x", target: "y" }])],
  ]);
  const expanded = new Set(["parent"]);
  const layout = layoutLevel(levels.get(""), childLevels(levels, expanded));
  const [first, second] = layout.placed;
  assert.equal(first.node.key, "plain");
  assert.equal(second.node.key, "parent");
  assert.ok(second.block.child);
  assert.ok(second.block.h > NODE_H && second.block.w > NODE_W);
  assert.equal(layout.h, second.y + second.block.h);
  // Collapsed, the same task is a plain node.
  const collapsed = layoutLevel(levels.get(""), childLevels(levels, new Set()));
  assert.ok(collapsed.placed.every((p) => p.block.child === null));
});

test("an empty level still has a node's size", () => {
  const layout = layoutLevel(level([]));
  assert.deepEqual([layout.w, layout.h, layout.placed.length], [NODE_W, NODE_H, 0]);
});

test("edge paths go right when they can, around from below when they cannot", () => {
  assert.match(edgePath({ x: 0, y: 0 }, { x: 400, y: 0 }), /^M228,30 C/);
  assert.match(edgePath({ x: 400, y: 0 }, { x: 0, y: 100 }), /^M514,60 C/);
});

test("visible nodes and parents count only shown levels", () => {
  const levels = new Map([
    ["", level([task("r", 1)])],
    ["r", level([group("Chunk", "v0.0")])],
  ]);
  assert.equal(visibleNodes(levels, new Set()), 1);
  assert.equal(visibleNodes(levels, new Set(["r"])), 2);
  assert.equal(parentOf(levels, new Set(["r"]), "g:Chunk@v0.0"), "r");
  assert.equal(parentOf(levels, new Set(["r"]), "r"), null);
});

test("group keys split at the version, even when the name has an @", () => {
  assert.deepEqual(parseGroupKey("g:Chunk@v0.0"), { name: "Chunk", version: "v0.0" });
  assert.deepEqual(parseGroupKey("g:user@host@v1.12"), { name: "user@host", version: "v1.12" });
});

test("auto-expansion opens levels breadth first and stops at the node limit", async () => {
  const children = (prefix, n) => level(Array.from({ length: n }, (_, i) => task(`${prefix}${i}`, 3)));
  const levels = new Map([["", children("r", 2)]]);
  const loaded = [];
  const load = async (id) => { loaded.push(id); levels.set(id, children(`${id}.`, 3)); };
  const expanded = new Set();
  await autoExpand(levels, expanded, load, 10, 3);
  assert.deepEqual(loaded.slice(0, 2), ["r0", "r1"]);
  assert.ok(visibleNodes(levels, expanded) >= 10);
  assert.ok(visibleNodes(levels, expanded) < 10 + 3);
});
