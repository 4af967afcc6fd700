// HTML built from tagged templates that escape by default.
//
//   html`<td>${value}</td>`   escapes `value` unless it is a fragment html`` built itself.
//
// Arrays are joined (each item escaped or kept as a fragment), null/undefined/false render as
// nothing. The DOM is only ever written through render(), which accepts fragments only, so
// no page can write a string it forgot to escape.

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escape(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

class Html {
  constructor(text) {
    this.text = text;
  }

  toString() {
    return this.text;
  }
}

function piece(value) {
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return value.map(piece).join("");
  if (value === null || value === undefined || value === false) return "";
  return escape(value);
}

export function html(strings, ...values) {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += piece(values[i]) + strings[i + 1];
  return new Html(out);
}

export const isHtml = (value) => value instanceof Html;

// Markup that is escaped here from data: JSON with light syntax colouring.
export function prettyJson(value) {
  const text = escape(JSON.stringify(value, null, 2));
  return new Html(text.replace(
    /(&quot;(?:\\.|[^&]|&(?!quot;))*?&quot;)(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g,
    (m, str, colon, lit, n) => {
      if (str) return colon ? `<span class="k">${str}</span>${colon}` : `<span class="s">${str}</span>`;
      if (lit) return `<span class="b">${lit}</span>`;
      return `<span class="n">${n}</span>`;
    },
  ));
}

// Replace the content of `element` with a fragment; a plain string is refused.
export function render(element, fragment) {
  if (!(fragment instanceof Html)) throw new TypeError("render() takes an html`` fragment");
  element.innerHTML = fragment.text;
}
