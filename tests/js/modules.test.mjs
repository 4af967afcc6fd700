// node --test: every UI module links (the names it imports exist), and only html.js writes
// markup into the DOM (render() takes html`` fragments, which escape by default).
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";

const STATIC = new URL("../../conveyor/web/static/", import.meta.url);
const modules = readdirSync(STATIC).filter((name) => name.endsWith(".js"));

test("the UI is split into small modules", () => {
  assert.ok(modules.length >= 10, modules.join(", "));
  for (const name of modules) {
    const lines = readFileSync(new URL(name, STATIC), "utf8").split("\n").length;
    assert.ok(lines < 400, `${name} has ${lines} lines`);
  }
});

test("every module but the entry point links in node", async () => {
  for (const name of modules.filter((m) => m !== "app.js")) {
    await import(new URL(name, STATIC));
  }
});

test("only html.js writes markup into the DOM", () => {
  for (const name of modules.filter((m) => m !== "html.js")) {
    const source = readFileSync(new URL(name, STATIC), "utf8");
    assert.doesNotMatch(source, /innerHTML|outerHTML|insertAdjacentHTML|document\.write/, name);
  }
});

test("no state list is copied from the server's enums", () => {
  for (const name of modules) {
    const source = readFileSync(new URL(name, STATIC), "utf8");
    assert.doesNotMatch(source, /\[\s*"QUEUED",\s*"RUNNING"|\[\s*"SUBMITTED",\s*"RUNNING"/, name);
  }
});
