// The interface language: German by default, English selectable and remembered.
import de, { languageAliases as deAliases } from "../i18n/de.js";
import en, { languageAliases as enAliases } from "../i18n/en.js";

const CATALOGUES = { de: { messages: de, aliases: deAliases }, en: { messages: en, aliases: enAliases } };
const STORAGE_KEY = "tolk.locale";
export const LOCALES = ["de", "en"];

let current = readStoredLocale();
const listeners = new Set();

function readStoredLocale() {
  try {
    const stored = localStorage.getItem(STORAGE_KEY);
    return stored in CATALOGUES ? stored : "de";
  } catch {
    return "de";
  }
}

export function locale() {
  return current;
}

/** The message `key` in the current language, with `{name}` placeholders filled in. */
export function t(key, params = {}) {
  return tIn(current, key, params);
}

/** The message `key` in the interface language `loc` (German when it has none). */
export function tIn(loc, key, params = {}) {
  const text = CATALOGUES[loc]?.messages[key] ?? CATALOGUES.de.messages[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
}

/** True when the catalogue has a message for `key`. */
export function has(key) {
  return key in CATALOGUES[current].messages || key in CATALOGUES.de.messages;
}

const displayNames = new Map();
function namesFor(loc) {
  if (!displayNames.has(loc)) displayNames.set(loc, new Intl.DisplayNames([loc], { type: "language" }));
  return displayNames.get(loc);
}

/** A language tag's name in `loc` (default: the interface language), with the staff's aliases. */
export function languageName(tag, loc = current) {
  let name = tag;
  try {
    name = namesFor(loc).of(tag) ?? tag;
  } catch {
    /* an invalid tag shows as itself */
  }
  const alias = CATALOGUES[loc]?.aliases[tag];
  return alias ? alias(name) : name;
}

/** The name of a language in itself (endonym), for search. */
export function nativeName(tag) {
  try {
    return new Intl.DisplayNames([tag], { type: "language" }).of(tag) ?? tag;
  } catch {
    return tag;
  }
}

/** Put the current language's text into every `data-i18n*` element below `root`. */
export function translate(root = document) {
  document.documentElement.lang = current;
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const [attr, data] of [
    ["aria-label", "i18nLabel"],
    ["placeholder", "i18nPlaceholder"],
    ["title", "i18nTitle"],
  ]) {
    const selector = `[data-${data.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())}]`;
    for (const el of root.querySelectorAll(selector)) el.setAttribute(attr, t(el.dataset[data]));
  }
  const title = document.querySelector("title[data-i18n-doc]");
  if (title) document.title = `${t(title.dataset.i18nDoc)} – Tolk`;
}

/** Switch the interface language, remember it (unless `remember` is false: a terminal
 * keeps nothing of the person before it), and let the page re-render. */
export function setLocale(loc, { remember = true } = {}) {
  if (!(loc in CATALOGUES) || loc === current) return;
  current = loc;
  try {
    if (remember) localStorage.setItem(STORAGE_KEY, loc);
  } catch {
    /* private mode: the choice lasts for this page only */
  }
  translate();
  for (const fn of listeners) fn(loc);
}

/** Let a page's language switch (its `<select id="locale">`) show the interface language and
 * change it. */
export function bindLocaleSwitch(select) {
  if (!select) return;
  select.value = current;
  select.addEventListener("change", () => setLocale(select.value));
}

export function onLocaleChange(fn) {
  listeners.add(fn);
}

/** Numbers, minutes and money in the interface language. */
export function formatNumber(n, options) {
  return new Intl.NumberFormat(current, options).format(n);
}

/** A message with singular and plural forms: `${key}.one` / `${key}.other`, with {n}. */
export function plural(key, n) {
  const form = new Intl.PluralRules(current).select(n) === "one" ? "one" : "other";
  return t(`${key}.${form}`, { n: formatNumber(n) });
}

export function formatMoney(cents, currency = "EUR") {
  return new Intl.NumberFormat(current, { style: "currency", currency }).format(cents / 100);
}

export function formatDateTime(iso) {
  return new Intl.DateTimeFormat(current, { dateStyle: "short", timeStyle: "short" }).format(new Date(iso));
}

export function formatEta(seconds) {
  if (seconds == null) return t("eta.unknown");
  if (seconds < 60) return t("eta.soon");
  return t("eta.minutes", { n: Math.round(seconds / 60) });
}

export function formatClock(totalSeconds) {
  const s = Math.max(0, Math.floor(totalSeconds));
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}
