// conveyor web UI: a small single-page app on the JSON API (/api), written as native ES
// modules served as they are (no build step, no dependencies):
//
//   api.js        fetch helpers, the token for actions      format.js   numbers, dates, durations
//   html.js       html`` templates that escape by default   dom.js      queries, toasts, dialogs
//   enums.js      states served by GET /api/enums           live.js     the live refresh loop
//   router.js     path → page                               widgets.js  pieces pages share
//   graph-layout.js  the task graph's layout (pure, tested with node --test in tests/js)
//   page-*.js     one module per page (job-graph.js, job-panel.js: the job page's parts)

import { api, askToken, auth, updateTokenButton } from "./api.js";
import { $ } from "./dom.js";
import { loadEnums } from "./enums.js";
import { html, render } from "./html.js";
import { POLL_MS, live, tick } from "./live.js";
import { clustersPage } from "./page-clusters.js";
import { dashboardPage } from "./page-dashboard.js";
import { jobPage } from "./page-job.js";
import { jobsPage } from "./page-jobs.js";
import { runnersPage } from "./page-runners.js";
import { taskRedirect } from "./page-task.js";
import { listen, route, setRoutes } from "./router.js";

const ID = "([0-9a-fA-F-]{36})";

setRoutes([
  [/^\/$/, () => dashboardPage(), "dashboard"],
  [/^\/jobs\/?$/, () => jobsPage(), "jobs"],
  [new RegExp(`^/jobs/${ID}/?$`), (m) => jobPage(m[1]), "jobs"],
  [new RegExp(`^/tasks/${ID}/?$`), (m) => taskRedirect(m[1]), "jobs"],
  [/^\/runners\/?$/, () => runnersPage(), "runners"],
  [/^\/clusters\/?$/, () => clustersPage(), "clusters"],
]);

// The states come from the server: until it answers, the pages wait (and say so).
async function enumsLoaded() {
  for (;;) {
    try {
      return await loadEnums();
    } catch (error) {
      render($("#main"), html`<div class="card empty"><div class="big">${error.status ? error.message : "Server unreachable"}</div>retrying…</div>`);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }
}

async function start() {
  const [authInfo] = await Promise.all([api("/api/auth").catch(() => ({ token_required: false })), enumsLoaded()]);
  auth.required = authInfo.token_required;
  updateTokenButton();
  $("#token-button").addEventListener("click", () => askToken());
  listen();
  await route();
  live.timer = setInterval(tick, POLL_MS);
}

start();
