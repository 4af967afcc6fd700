// Numbers, durations and dates as the pages show them (pure: no DOM).

const nf = new Intl.NumberFormat("en");

export const num = (n) => nf.format(n ?? 0);

export function duration(seconds) {
  if (seconds == null || Number.isNaN(seconds)) return "–";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${Number.isInteger(seconds) ? seconds : seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  const m = Math.floor(seconds / 60), s = Math.floor(seconds % 60);
  if (m < 60) return `${m}m ${String(s).padStart(2, "0")}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${String(m % 60).padStart(2, "0")}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

export function ago(iso, now = Date.now()) {
  if (!iso) return "–";
  const seconds = Math.max(0, (now - Date.parse(iso)) / 1000);
  if (seconds < 5) return "just now";
  if (seconds < 60) return `${Math.floor(seconds)}s ago`;
  return `${duration(seconds).replace(/ \d+s$/, "")} ago`;
}

export function between(start, end, now = Date.now()) {
  if (!start) return null;
  const stop = end ? Date.parse(end) : now;
  return Math.max(0, (stop - Date.parse(start)) / 1000);
}

export function when(iso) {
  if (!iso) return "–";
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

export const clock = (iso) => new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
export const short = (id) => (id ? id.slice(0, 8) : "");
export const firstLine = (text) => String(text ?? "").split("\n", 1)[0];
export const stateLabel = (state) => state.toLowerCase().replace("_", " ");

export function truncate(text, max) {
  text = String(text ?? "");
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

// How long a task ran (or runs), "" when it has not started.
export function took(task, now = Date.now()) {
  if (!task.started_at || task.state === "QUEUED") return null;
  return between(task.started_at, task.state === "RUNNING" ? null : task.stopped_at, now);
}
