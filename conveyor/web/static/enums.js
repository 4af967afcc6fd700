// Job and task states as the server defines them (GET /api/enums, read once at start), and
// the colour of each state.

import { api } from "./api.js";

export const enums = { jobStates: [], taskStates: [], terminalJobStates: new Set() };

export async function loadEnums() {
  const body = await api("/api/enums");
  enums.jobStates = body.job_states;
  enums.taskStates = body.task_states;
  enums.terminalJobStates = new Set(body.terminal_job_states);
}

// WAITING is the UI's name for a QUEUED task whose dependencies are not complete yet.
export const STATE_COLOURS = {
  QUEUED: "#94a3b8", WAITING: "#cbd5e1", RUNNING: "#0ea5e9", COMPUTED: "#16a34a",
  FAILED: "#dc2626", SKIPPED: "#d97706", FAILED_OPTIONAL: "#c026d3",
  SUBMITTED: "#94a3b8", STARTED: "#6366f1", COMPLETED: "#16a34a", CANCELED: "#d97706",
};
