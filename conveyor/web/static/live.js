// Live refresh: the current page's refresh() every few seconds, paused in hidden tabs.

import { $ } from "./dom.js";

export const POLL_MS = 2500;
export const live = { page: null, timer: null, busy: false, lastOk: null, failed: false };

function setLive(state, text) {
  const el = $("#live");
  el.classList.toggle("error", state === "error");
  el.classList.toggle("paused", state === "paused");
  $("#live-text").textContent = text;
}

export async function tick() {
  if (!live.page || live.busy) return;
  if (document.hidden) {
    setLive("paused", "paused");
    return;
  }
  live.busy = true;
  const page = live.page;
  try {
    await page.refresh();
    if (page === live.page) {
      live.lastOk = Date.now();
      live.failed = false;
      setLive("ok", "live");
    }
  } catch (error) {
    live.failed = true;
    setLive("error", error.status ? error.message : "server unreachable");
  } finally {
    live.busy = false;
  }
}
