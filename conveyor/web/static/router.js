// Client-side routing on the path: each route makes a page {mount(el), refresh(), unmount?}.

import { $, $$ } from "./dom.js";
import { html, render } from "./html.js";
import { live, tick } from "./live.js";

let routes = [];

// [pattern, (match) => page, nav key] triples, set once at start.
export function setRoutes(table) {
  routes = table;
}

export function navigate(url, replace = false) {
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  route();
}

const notFound = (message) => html`<div class="card empty"><div class="big">${message}</div><a href="/" data-link>Back to the dashboard</a></div>`;

export async function route() {
  if (live.page && live.page.unmount) live.page.unmount();
  live.page = null;
  const path = location.pathname;
  const main = $("#main");
  let found = null;
  for (const [pattern, make, nav] of routes) {
    const match = path.match(pattern);
    if (match) {
      found = [make(match), nav];
      break;
    }
  }
  $$(".topbar nav a").forEach((a) => a.classList.toggle("active", Boolean(found) && a.dataset.nav === found[1]));
  if (!found) {
    render(main, notFound("Page not found"));
    return;
  }
  const page = found[0];
  live.page = page;
  render(main, html`<div class="skeleton">Loading…</div>`);
  try {
    await page.mount(main);
    await tick();
  } catch (error) {
    render(main, notFound(error.message));
  }
}

export function listen() {
  document.addEventListener("click", (event) => {
    const a = event.target.closest("a[data-link]");
    if (!a || event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    navigate(a.getAttribute("href"));
  });
  window.addEventListener("popstate", route);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) tick(); });
}
