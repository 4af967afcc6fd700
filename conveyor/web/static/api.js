// The JSON API: GETs, and POST actions that ask for the token when the UI has one.

import { $, toast } from "./dom.js";

const TOKEN_KEY = "conveyor.token";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  const response = await fetch(path, { ...options, headers });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const detail = body && typeof body.detail === "string" ? body.detail : `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, detail);
  }
  return body;
}

export const auth = { required: false };

export async function askToken() {
  const dialog = $("#token-dialog");
  const input = $("#token-input");
  input.value = sessionStorage.getItem(TOKEN_KEY) || "";
  dialog.returnValue = "";
  dialog.showModal();
  input.focus();
  await new Promise((resolve) => dialog.addEventListener("close", resolve, { once: true }));
  if (dialog.returnValue === "ok" && input.value.trim()) {
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    updateTokenButton();
    return true;
  }
  return false;
}

export function updateTokenButton() {
  const button = $("#token-button");
  button.hidden = !auth.required;
  button.textContent = sessionStorage.getItem(TOKEN_KEY) ? "Token ✓" : "Token";
}

// A POST action; asks for the token when needed (once per tab) and retries once.
export async function action(path) {
  for (let round = 0; round < 2; round++) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (auth.required && !token && !(await askToken())) throw new ApiError(401, "No token given");
    const headers = {};
    const current = sessionStorage.getItem(TOKEN_KEY);
    if (current) headers.Authorization = `Bearer ${current}`;
    try {
      return await api(path, { method: "POST", headers });
    } catch (error) {
      if ((error.status === 401 || error.status === 403) && auth.required && round === 0) {
        sessionStorage.removeItem(TOKEN_KEY);
        updateTokenButton();
        toast(error.message, true);
        if (!(await askToken())) throw error;
        continue;
      }
      throw error;
    }
  }
  throw new ApiError(403, "Refused");
}
