// /tasks/{id}: a task's page is its job's page with the task selected.

import { api } from "./api.js";
import { navigate } from "./router.js";

export function taskRedirect(taskId) {
  return {
    async mount() {
      const task = await api(`/api/tasks/${taskId}`);
      navigate(`/jobs/${task.job_id}?task=${task.id}`, true);
    },
    async refresh() {},
  };
}
