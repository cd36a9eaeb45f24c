// A tiny DOM builder: no innerHTML anywhere, so user data can never become markup.
import { t } from "./i18n.js";

/** h("button", {class: "x", onclick: fn, "aria-pressed": "false"}, "text", child, ...) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value == null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child == null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Replace all children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A table of `rows`; each column is [i18n key of its heading, value of a row, numeric?].
 * `caption`: the i18n key of a caption for screen readers; `rowHeads`: the first column
 * names its row; `rowAttrs(row)`: the attributes of a row. */
export function table(columns, rows, { caption = null, rowHeads = false, rowAttrs = () => ({}) } = {}) {
  const numeric = (num) => ({ class: num ? "num" : null });
  const cell = (value, num, i) =>
    rowHeads && i === 0 ? h("th", { scope: "row" }, value) : h("td", numeric(num), value);
  return h(
    "table",
    {},
    caption && h("caption", { class: "visually-hidden" }, t(caption)),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        columns.map(([key, , num]) => h("th", { scope: "col", ...numeric(num) }, t(key))),
      ),
    ),
    h(
      "tbody",
      {},
      rows.map((r) =>
        h(
          "tr",
          rowAttrs(r),
          columns.map(([, get, num], i) => cell(get(r) ?? "", num, i)),
        ),
      ),
    ),
  );
}

/** A local day as a date input holds it: `2026-01-31`. */
export function isoDate(d) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

export const $ = (selector, root = document) => root.querySelector(selector);

const SVG_NS = "http://www.w3.org/2000/svg";
/** An SVG element with attributes. */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) if (value != null) el.setAttribute(key, String(value));
  append(el, children);
  return el;
}
