// Small DOM helpers: queries, toasts and the confirmation dialog.

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

export function toast(message, error = false) {
  const el = document.createElement("div");
  el.className = `toast${error ? " error" : ""}`;
  el.textContent = message;
  $("#toast").append(el);
  setTimeout(() => el.remove(), error ? 6000 : 3500);
}

export const toastError = (error) => toast(error.message, true);

export function confirmDialog(title, text, yes, danger = false) {
  const dialog = $("#confirm-dialog");
  $("#confirm-title").textContent = title;
  $("#confirm-text").textContent = text;
  const button = $("#confirm-yes");
  button.textContent = yes;
  button.className = danger ? "danger solid" : "primary";
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}
