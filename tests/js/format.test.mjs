// node --test: numbers, durations and dates (conveyor/web/static/format.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import { ago, between, duration, firstLine, num, took, truncate } from "../../conveyor/web/static/format.js";

test("durations pick a unit by size", () => {
  assert.equal(duration(null), "–");
  assert.equal(duration(0.25), "250 ms");
  assert.equal(duration(3.14159), "3.14 s");
  assert.equal(duration(42), "42 s");
  assert.equal(duration(125), "2m 05s");
  assert.equal(duration(3 * 3600 + 7 * 60), "3h 07m");
  assert.equal(duration(50 * 3600), "2d 2h");
});

test("relative times and spans", () => {
  const now = Date.parse("2026-01-01T12:00:00Z");
  assert.equal(ago("2026-01-01T11:59:58Z", now), "just now");
  assert.equal(ago("2026-01-01T11:59:30Z", now), "30s ago");
  assert.equal(ago("2026-01-01T11:55:00Z", now), "5m ago");
  assert.equal(ago(null, now), "–");
  assert.equal(between("2026-01-01T11:00:00Z", "2026-01-01T11:00:10Z"), 10);
  assert.equal(between("2026-01-01T11:59:00Z", null, now), 60);
});

test("a task's running time: none while queued, up to now while running", () => {
  const now = Date.parse("2026-01-01T12:00:00Z");
  assert.equal(took({ state: "QUEUED", started_at: "2026-01-01T11:00:00Z" }, now), null);
  assert.equal(took({ state: "RUNNING", started_at: "2026-01-01T11:59:00Z" }, now), 60);
  assert.equal(took({ state: "COMPUTED", started_at: "2026-01-01T11:00:00Z", stopped_at: "2026-01-01T11:00:02Z" }, now), 2);
});

test("text helpers", () => {
  assert.equal(num(1234567), "1,234,567");
  assert.equal(num(undefined), "0");
  assert.equal(truncate("abcdef", 4), "abc…");
  assert.equal(truncate("abc", 4), "abc");
  assert.equal(firstLine("one\ntwo"), "one");
});
