// The finance page: usage of a period, filters, a summary chart, and the exports.
import { $, fill, h, svg } from "./dom.js";
import { formatDateTime, formatMoney, formatNumber, languageName, onLocaleChange, t } from "./i18n.js";
import { api } from "./protocol.js";
import { errorText, notify, startPage } from "./shell.js";

const form = $("#filters");
const from = $("#from");
const to = $("#to");
const orgSelect = $("#organization");
const langSelect = $("#language");
let records = [];
let periodRecords = [];
let summaries = { organization: [], language: [] };

await startPage({ socket: false });

function isoDate(d) {
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

// Default period: this month, [1st, 1st of next month).
const now = new Date();
from.value = isoDate(new Date(now.getFullYear(), now.getMonth(), 1));
to.value = isoDate(new Date(now.getFullYear(), now.getMonth() + 1, 1));

function query(extra = {}) {
  const params = new URLSearchParams({ from: from.value, to: to.value });
  if (orgSelect.value) params.set("organization", orgSelect.value);
  if (langSelect.value) params.set("language", langSelect.value);
  for (const [k, v] of Object.entries(extra)) params.set(k, v);
  return params;
}

/** The usage endpoint streams; accept a JSON array, {usage: [...]}, or JSON lines. */
function parseUsage(text) {
  if (!text) return [];
  try {
    const data = JSON.parse(text);
    if (Array.isArray(data)) return data;
    return data.usage ?? data.records ?? data.items ?? [];
  } catch {
    return text.split("\n").filter((line) => line.trim()).map((line) => JSON.parse(line));
  }
}

function updateDownloads() {
  $("#dl-csv").href = `/api/usage?${query({ format: "csv" })}`;
  $("#dl-csv-de").href = `/api/usage?${query({ format: "csv", dialect: "de" })}`;
  $("#dl-xlsx").href = `/api/usage?${query({ format: "xlsx" })}`;
}

function fillOptions(select, pairs) {
  const keep = select.value;
  fill(
    select,
    h("option", { value: "" }, t("finance.all")),
    pairs.map(([value, label]) => h("option", { value }, label)),
  );
  select.value = pairs.some(([v]) => v === keep) ? keep : "";
}

function renderOptions() {
  const orgs = new Map(periodRecords.map((r) => [r.organization_id, r.organization]));
  if (orgSelect.value && !orgs.has(orgSelect.value)) orgs.set(orgSelect.value, orgSelect.value);
  fillOptions(orgSelect, [...orgs].sort((a, b) => String(a[1]).localeCompare(String(b[1]))));
  const langs = new Set(periodRecords.map((r) => r.language));
  fillOptions(langSelect, [...langs].map((tag) => [tag, languageName(tag)]).sort((a, b) => a[1].localeCompare(b[1])));
}

async function load() {
  updateDownloads();
  $("#status").textContent = t("loading");
  notify($("#notice"), "");
  try {
    const period = new URLSearchParams({ from: from.value, to: to.value, format: "json" });
    const [all, filtered, byOrg, byLang] = await Promise.all([
      api("GET", `/api/usage?${period}`, undefined, { raw: true }),
      api("GET", `/api/usage?${query({ format: "json" })}`, undefined, { raw: true }),
      api("GET", `/api/usage/summary?${query({ group_by: "organization" })}`),
      api("GET", `/api/usage/summary?${query({ group_by: "language" })}`),
    ]);
    periodRecords = parseUsage(all);
    records = parseUsage(filtered);
    summaries = { organization: asList(byOrg), language: asList(byLang) };
    render();
    $("#status").textContent = t("finance.loaded", { n: records.length });
  } catch (err) {
    $("#status").textContent = "";
    notify($("#notice"), errorText(err), "bad");
  }
}

function asList(data) {
  return Array.isArray(data) ? data : (data?.summary ?? data?.groups ?? []);
}

function minutes(seconds) {
  return formatNumber((seconds ?? 0) / 60, { maximumFractionDigits: 1 });
}

function render() {
  renderOptions();
  const total = records.reduce((acc, r) => ({ s: acc.s + (r.billable_s ?? 0), c: acc.c + (r.amount_cents ?? 0) }), { s: 0, c: 0 });
  const currency = records[0]?.currency ?? "EUR";
  $("#totals").textContent = t("finance.count", { n: records.length, minutes: minutes(total.s), amount: formatMoney(total.c, currency) });
  const orgNames = new Map(periodRecords.map((r) => [r.organization_id, r.organization]));
  fill($("#chart-org"), barChart(summaries.organization.map((g) => [orgNames.get(g.key) ?? g.key, g.billable_s]), "finance.byOrganization"));
  fill($("#chart-lang"), barChart(summaries.language.map((g) => [languageName(g.key), g.billable_s]), "finance.byLanguage"));
  renderTable();
}

/** A horizontal bar chart of minutes, as inline SVG with a text alternative. */
function barChart(rows, titleKey) {
  if (!rows.length) return h("p", { class: "muted" }, t("finance.none"));
  const sorted = [...rows].sort((a, b) => (b[1] ?? 0) - (a[1] ?? 0));
  const max = Math.max(1, ...sorted.map(([, s]) => s ?? 0));
  const rowH = 28;
  const labelW = 190;
  const barW = 260;
  const width = labelW + barW + 70;
  const height = sorted.length * rowH + 8;
  const description = sorted.map(([label, s]) => `${label}: ${minutes(s)}`).join("; ");
  return svg(
    "svg",
    { class: "chart", viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": `${t(titleKey)}: ${description}` },
    svg("title", {}, `${t(titleKey)}: ${description}`),
    sorted.map(([label, s], i) => {
      const y = i * rowH + 4;
      const w = Math.max(2, Math.round(((s ?? 0) / max) * barW));
      return svg(
        "g",
        {},
        svg("text", { x: labelW - 8, y: y + 17, "text-anchor": "end" }, truncate(String(label), 26)),
        svg("rect", { class: "bar", x: labelW, y, width: w, height: rowH - 8, rx: 3 }),
        svg("text", { x: labelW + w + 6, y: y + 17 }, minutes(s)),
      );
    }),
  );
}

function truncate(text, n) {
  return text.length > n ? text.slice(0, n - 1) + "…" : text;
}

function renderTable() {
  if (!records.length) {
    fill($("#usage"), h("p", { class: "muted" }, t("finance.none")));
    return;
  }
  const cols = [
    ["col.start", (r) => formatDateTime(r.connected_at)],
    ["col.language", (r) => languageName(r.language)],
    ["col.organization", (r) => r.organization],
    ["col.costCenter", (r) => r.cost_center],
    ["col.interpreter", (r) => r.interpreter],
    ["col.billable", (r) => minutes(r.billable_s), true],
    ["col.amount", (r) => formatMoney(r.amount_cents ?? 0, r.currency ?? "EUR"), true],
    ["col.tariff", (r) => r.tariff],
    ["col.call", (r) => r.call_id],
  ];
  fill(
    $("#usage"),
    h(
      "table",
      {},
      h("caption", { class: "visually-hidden" }, t("finance.usage")),
      h("thead", {}, h("tr", {}, cols.map(([key, , num]) => h("th", { scope: "col", class: num ? "num" : null }, t(key))))),
      h("tbody", {}, records.map((r) => h("tr", { dataset: { callId: r.call_id } }, cols.map(([, get, num]) => h("td", { class: num ? "num" : null }, get(r) ?? ""))))),
    ),
  );
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  load();
});
for (const select of [orgSelect, langSelect]) select.addEventListener("change", load);
onLocaleChange(render);
fillOptions(orgSelect, []);
fillOptions(langSelect, []);
await load();
