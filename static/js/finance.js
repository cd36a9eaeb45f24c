// The finance page: usage of a period, filters, a summary chart, and the exports.
import { $, fill, h, svg } from "./dom.js";
import { formatDateTime, formatMoney, formatNumber, languageName, onLocaleChange, t } from "./i18n.js";
import { api } from "./api.js";
import { errorText, notify, startPage } from "./shell.js";

const form = $("#filters");
const from = $("#from");
const to = $("#to");
const orgSelect = $("#organization");
const langSelect = $("#language");
let records = [];
let summaries = { organization: [], language: [] };
let choices = { organization: [], language: [] }; // the whole period's groups, for the filters
let scope = null; // whose usage this user may see: {all, organizations: [{id, name}]}

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
  const orgs = new Map(choices.organization.map((g) => [g.key, g.name ?? g.key]));
  if (orgSelect.value && !orgs.has(orgSelect.value)) orgs.set(orgSelect.value, orgSelect.value);
  fillOptions(
    orgSelect,
    [...orgs].sort((a, b) => String(a[1]).localeCompare(String(b[1]))),
  );
  const langs = new Set(choices.language.map((g) => g.key));
  fillOptions(
    langSelect,
    [...langs].map((tag) => [tag, languageName(tag)]).sort((a, b) => a[1].localeCompare(b[1])),
  );
}

async function load() {
  updateDownloads();
  $("#status").textContent = t("loading");
  notify($("#notice"), "");
  try {
    // The filters offer what the whole period holds: its summaries, not all its records.
    const period = new URLSearchParams({ from: from.value, to: to.value });
    const [filtered, byOrg, byLang, periodOrgs, periodLangs] = await Promise.all([
      api("GET", `/api/usage?${query({ format: "json" })}`),
      api("GET", `/api/usage/summary?${query({ group_by: "organization" })}`),
      api("GET", `/api/usage/summary?${query({ group_by: "language" })}`),
      api("GET", `/api/usage/summary?${period}&group_by=organization`),
      api("GET", `/api/usage/summary?${period}&group_by=language`),
    ]);
    records = filtered ?? [];
    summaries = { organization: byOrg ?? [], language: byLang ?? [] };
    choices = { organization: periodOrgs ?? [], language: periodLangs ?? [] };
    render();
    $("#status").textContent = t("finance.loaded", { n: records.length });
  } catch (err) {
    $("#status").textContent = "";
    notify($("#notice"), () => errorText(err), "bad");
  }
}

/** Billable seconds per key: the summary has one entry per key and currency. */
function secondsByKey(groups, label) {
  const sums = new Map();
  for (const g of groups) {
    const name = label(g);
    sums.set(name, (sums.get(name) ?? 0) + g.billable_s);
  }
  return [...sums];
}

/** "12,50 € + 3,00 CHF": amounts are never added across currencies. */
function totalAmounts(rows) {
  const cents = new Map();
  for (const r of rows) cents.set(r.currency, (cents.get(r.currency) ?? 0) + r.amount_cents);
  if (!cents.size) return formatMoney(0, "EUR");
  return [...cents].map(([currency, c]) => formatMoney(c, currency)).join(" + ");
}

function minutes(seconds) {
  return formatNumber((seconds ?? 0) / 60, { maximumFractionDigits: 1 });
}

function renderScope() {
  if (!scope) return;
  $("#scope").textContent = scope.all
    ? t("finance.scope.all")
    : t("finance.scope.some", { names: scope.organizations.map((o) => o.name).join(", ") });
}

function render() {
  renderScope();
  renderOptions();
  const seconds = records.reduce((acc, r) => acc + r.billable_s, 0);
  $("#totals").textContent = t("finance.count", {
    n: records.length,
    minutes: minutes(seconds),
    amount: totalAmounts(records),
  });
  fill(
    $("#chart-org"),
    barChart(
      secondsByKey(summaries.organization, (g) => g.name ?? g.key),
      "finance.byOrganization",
    ),
  );
  fill(
    $("#chart-lang"),
    barChart(
      secondsByKey(summaries.language, (g) => languageName(g.key)),
      "finance.byLanguage",
    ),
  );
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
    {
      class: "chart",
      viewBox: `0 0 ${width} ${height}`,
      width,
      height,
      role: "img",
      "aria-label": `${t(titleKey)}: ${description}`,
    },
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
    ["col.amount", (r) => formatMoney(r.amount_cents, r.currency), true],
    ["col.tariff", (r) => r.tariff],
    ["col.call", (r) => r.call_id],
  ];
  fill(
    $("#usage"),
    h(
      "table",
      {},
      h("caption", { class: "visually-hidden" }, t("finance.usage")),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          cols.map(([key, , num]) => h("th", { scope: "col", class: num ? "num" : null }, t(key))),
        ),
      ),
      h(
        "tbody",
        {},
        records.map((r) =>
          h(
            "tr",
            { dataset: { callId: r.call_id } },
            cols.map(([, get, num]) => h("td", { class: num ? "num" : null }, get(r) ?? "")),
          ),
        ),
      ),
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
try {
  scope = (await api("GET", "/api/usage/scope")).scope;
} catch {
  /* the usage below says what went wrong */
}
await load();
