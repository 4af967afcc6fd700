// node --test: html`` escapes by default (conveyor/web/static/html.js).
import assert from "node:assert/strict";
import { test } from "node:test";

import { escape, html, isHtml, prettyJson, render } from "../../conveyor/web/static/html.js";

test("values are escaped, text and attributes alike", () => {
  const value = `<img src=x onerror="alert('x')">&`;
  assert.equal(String(html`<td title="${value}">${value}</td>`),
    "<td title=\"&lt;img src=x onerror=&quot;alert(&#39;x&#39;)&quot;&gt;&amp;\">&lt;img src=x onerror=&quot;alert(&#39;x&#39;)&quot;&gt;&amp;</td>");
});

test("fragments built by html`` are kept, arrays joined, nothing rendered for null and false", () => {
  const items = ["<a>", "b"].map((x) => html`<li>${x}</li>`);
  assert.equal(String(html`<ul>${items}</ul>`), "<ul><li>&lt;a&gt;</li><li>b</li></ul>");
  assert.equal(String(html`[${null}${undefined}${false}]`), "[]");
  assert.equal(String(html`${0} ${12.5}`), "0 12.5");
  assert.ok(isHtml(html``));
});

test("a plain string that looks like markup is still escaped", () => {
  const built = "<b>bold</b>";
  assert.equal(String(html`${built}`), "&lt;b&gt;bold&lt;/b&gt;");
  assert.equal(escape(null), "");
});

test("render() takes fragments only", () => {
  const element = { innerHTML: "" };
  render(element, html`<p>${"<x>"}</p>`);
  assert.equal(element.innerHTML, "<p>&lt;x&gt;</p>");
  assert.throws(() => render(element, "<p>raw</p>"), TypeError);
});

test("pretty JSON colours values it escaped first", () => {
  const out = String(prettyJson({ "<k>": "</pre><script>", n: 1, ok: true }));
  assert.ok(!out.includes("<script>") && out.includes("&lt;script&gt;"));
  assert.match(out, /<span class="k">&quot;&lt;k&gt;&quot;<\/span>:/);
  assert.match(out, /<span class="n">1<\/span>/);
  assert.match(out, /<span class="b">true<\/span>/);
});
