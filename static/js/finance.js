// The finance page: usage of a month (or of other days), totals per organisation, site and
// language with amounts, calls without a tariff, charts, the downloads and the statements.
import { $, fill, h, isoDate, table } from "./dom.js";
import { formatDateTime, formatMoney, formatNumber, languageName, locale, onLocaleChange, t } from "./i18n.js";
import { api } from "./api.js";
import { newestLoad, startPage } from "./shell.js";

const form = $("#filters");
const month = $("#month");
const from = $("#from");
const to = $("#to");
const orgSelect = $("#organization");
const langSelect = $("#language");
const siteSelect = $("#site");
let records = [];
let summaries = { organization: [], site: [], language: [] };
let choices = { organization: [], site: [], language: [] }; // the whole period's groups, for the filters
let scope = null; // whose usage this user may see: {all, organizations: [{id, name}]}

// Default period: this month; the free range starts as the same month's days. Set before
// the page waits for anything, so that it never overwrites what someone has typed meanwhile.
const now = new Date();
month.value = isoDate(now).slice(0, 7);
from.value = isoDate(new Date(now.getFullYear(), now.getMonth(), 1));
to.value = isoDate(new Date(now.getFullYear(), now.getMonth() + 1, 0));

await startPage({ socket: false });

const byMonth = () => form.elements.period.value === "month";

/** The period as the API takes it: `to` is the day after the last day shown. */
function period() {
  if (byMonth()) {
    const [y, m] = month.value.split("-").map(Number);
    if (!y || !m) return { from: "", to: "" };
    return { from: isoDate(new Date(y, m - 1, 1)), to: isoDate(new Date(y, m, 1)) };
  }
  const last = to.value ? new Date(`${to.value}T12:00:00`) : null;
  const after = last ? isoDate(new Date(last.getFullYear(), last.getMonth(), last.getDate() + 1)) : "";
  return { from: from.value, to: after };
}

function query(extra = {}) {
  const { from: start, to: end } = period();
  const params = new URLSearchParams();
  if (start) params.set("from", start);
  if (end) params.set("to", end);
  if (orgSelect.value) params.set("organization", orgSelect.value);
  if (siteSelect.value) params.set("site", siteSelect.value);
  if (langSelect.value) params.set("language", langSelect.value);
  for (const [k, v] of Object.entries(extra)) params.set(k, v);
  return params;
}

function updateDownloads() {
  const lang = locale();
  $("#dl-csv").href = `/api/usage?${query({ format: "csv", lang })}`;
  $("#dl-csv-de").href = `/api/usage?${query({ format: "csv", dialect: "de", lang })}`;
  $("#dl-xlsx").href = `/api/usage?${query({ format: "xlsx", lang })}`;
}

function showPeriodFields() {
  const monthly = byMonth();
  $("#month-field").hidden = !monthly;
  $("#from-field").hidden = monthly;
  $("#to-field").hidden = monthly;
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
  // Sites with usage in the period; the records of no site ("") cannot be asked for alone.
  const sites = new Map(choices.site.filter((g) => g.key).map((g) => [g.key, g.name || g.key]));
  if (siteSelect.value && !sites.has(siteSelect.value)) sites.set(siteSelect.value, siteSelect.value);
  fillOptions(
    siteSelect,
    [...sites].sort((a, b) => String(a[1]).localeCompare(String(b[1]))),
  );
  const langs = new Set(choices.language.map((g) => g.key));
  fillOptions(
    langSelect,
    [...langs].map((tag) => [tag, languageName(tag)]).sort((a, b) => a[1].localeCompare(b[1])),
  );
}

const load = newestLoad(
  () => {
    updateDownloads();
    // The filters offer what the whole period holds: its summaries, not all its records.
    const whole = new URLSearchParams(period());
    return Promise.all([
      api("GET", `/api/usage?${query({ format: "json" })}`),
      api("GET", `/api/usage/summary?${query({ group_by: "organization" })}`),
      api("GET", `/api/usage/summary?${query({ group_by: "site" })}`),
      api("GET", `/api/usage/summary?${query({ group_by: "language" })}`),
      api("GET", `/api/usage/summary?${whole}&group_by=organization`),
      api("GET", `/api/usage/summary?${whole}&group_by=site`),
      api("GET", `/api/usage/summary?${whole}&group_by=language`),
    ]);
  },
  ([filtered, byOrg, bySite, byLang, periodOrgs, periodSites, periodLangs]) => {
    records = filtered ?? [];
    summaries = { organization: byOrg ?? [], site: bySite ?? [], language: byLang ?? [] };
    choices = { organization: periodOrgs ?? [], site: periodSites ?? [], language: periodLangs ?? [] };
    render();
    $("#status").textContent = t("finance.loaded", { n: records.length });
  },
);

/** "12,50 € + 3,00 CHF": amounts are never added across currencies. */
function totalAmounts(rows) {
  const cents = new Map();
  for (const r of rows) cents.set(r.currency, (cents.get(r.currency) ?? 0) + r.amount_cents);
  if (!cents.size) return formatMoney(0, "EUR");
  return [...cents].map(([currency, c]) => formatMoney(c, currency)).join(" + ");
}

/** Seconds as minutes with their unit ("12,5 Min."). */
function minutes(seconds) {
  return t("finance.minutes", { n: formatNumber((seconds ?? 0) / 60, { maximumFractionDigits: 1 }) });
}

/** Summary groups (one per key and currency) merged per key. */
function perKey(groups) {
  const merged = new Map();
  for (const g of groups) {
    const row = merged.get(g.key) ?? {
      ...g,
      billable_s: 0,
      calls: 0,
      untariffed_calls: 0,
      in_house_calls: 0,
      in_house_billable_s: 0,
      amounts: [],
    };
    row.calls += g.calls;
    row.billable_s += g.billable_s;
    row.untariffed_calls += g.untariffed_calls ?? 0;
    row.in_house_calls += g.in_house_calls ?? 0;
    row.in_house_billable_s += g.in_house_billable_s ?? 0;
    row.amounts.push({ currency: g.currency, amount_cents: g.amount_cents });
    merged.set(g.key, row);
  }
  return [...merged.values()];
}

function renderScope() {
  if (!scope) return;
  $("#scope").textContent = scope.all
    ? t("finance.scope.all")
    : t("finance.scope.some", { names: scope.organizations.map((o) => o.name).join(", ") });
}

function renderUntariffed() {
  const n = summaries.organization.reduce((acc, g) => acc + (g.untariffed_calls ?? 0), 0);
  if (!n) return fill($("#untariffed"));
  fill(
    $("#untariffed"),
    h(
      "div",
      { class: "notice", role: "alert" },
      h(
        "p",
        {},
        h("strong", {}, t(n === 1 ? "finance.untariffed.one" : "finance.untariffed.other", { n: formatNumber(n) })),
      ),
      h("p", {}, t("finance.untariffed.what")),
    ),
  );
}

function render() {
  renderScope();
  renderOptions();
  renderUntariffed();
  const seconds = records.reduce((acc, r) => acc + r.billable_s, 0);
  $("#totals").textContent = t("finance.count", {
    n: formatNumber(records.length),
    minutes: minutes(seconds),
    amount: totalAmounts(records),
  });
  const orgs = perKey(summaries.organization);
  const langs = perKey(summaries.language);
  fill(
    $("#by-org"),
    groupTable(orgs, "col.organization", (g) => g.name ?? g.key, true),
  );
  fill(
    $("#by-site"),
    groupTable(perKey(summaries.site), "col.site", (g) => g.name || t("finance.noSite"), false),
  );
  fill(
    $("#by-lang"),
    groupTable(langs, "col.language", (g) => languageName(g.key), false),
  );
  fill(
    $("#chart-org"),
    bars(
      orgs.map((g) => [g.name ?? g.key, g.billable_s]),
      "finance.byOrganization",
    ),
  );
  fill(
    $("#chart-lang"),
    bars(
      langs.map((g) => [languageName(g.key), g.billable_s]),
      "finance.byLanguage",
    ),
  );
  renderTable();
}

function statementLink(g) {
  if (!byMonth()) return t("finance.statementMonthOnly");
  const params = new URLSearchParams({ organization: g.key, month: month.value });
  return h("a", { href: `/statement?${params}`, target: "_blank", rel: "noopener" }, t("finance.statement"));
}

/** Totals per organisation or language: calls, minutes, amounts, calls without a tariff. */
function groupTable(groups, nameKey, name, withStatement) {
  if (!groups.length) return h("p", { class: "muted" }, t("finance.none"));
  const cols = [
    [nameKey, name],
    ...(withStatement ? [["col.costCenter", (g) => g.cost_center ?? ""]] : []),
    ["col.calls", (g) => formatNumber(g.calls), true],
    ["col.billable", (g) => minutes(g.billable_s), true],
    ["col.amount", (g) => totalAmounts(g.amounts), true],
    // Staff calls: interpreted by colleagues in the house, the minutes not bought outside.
    ["col.inHouse", (g) => (g.in_house_calls ? minutes(g.in_house_billable_s) : "–"), true],
    [
      "col.untariffed",
      (g) => (g.untariffed_calls ? h("span", { class: "badge warn" }, formatNumber(g.untariffed_calls)) : "–"),
      true,
    ],
    ...(withStatement ? [["col.statement", statementLink]] : []),
  ];
  return table(cols, groups, { rowAttrs: (g) => ({ dataset: { key: g.key } }) });
}

/** Minutes per label as bars: labels wrap instead of being cut, text keeps the page's size,
 * and 0 minutes draws no bar at all. */
function bars(rows, titleKey) {
  if (!rows.length) return h("p", { class: "muted" }, t("finance.none"));
  const sorted = [...rows].sort((a, b) => b[1] - a[1]);
  const max = Math.max(...sorted.map(([, s]) => s));
  return h(
    "ul",
    { class: "bars", "aria-label": t(titleKey) },
    sorted.map(([label, s]) => {
      const track = h("span", { class: "bar-track", "aria-hidden": "true" });
      if (s > 0 && max > 0) {
        const fillBar = h("span", { class: "bar-fill" });
        fillBar.style.width = `${(100 * s) / max}%`; // CSSOM: allowed by the page's CSP
        track.append(fillBar);
      }
      return h(
        "li",
        {},
        h("span", { class: "bar-label" }, label),
        track,
        h("span", { class: "bar-value" }, minutes(s)),
      );
    }),
  );
}

async function copy(ref, button) {
  try {
    await navigator.clipboard.writeText(ref);
    button.textContent = t("finance.copied");
  } catch {
    // No clipboard (a page over plain http): select the reference for Ctrl+C instead.
    const range = document.createRange();
    range.selectNodeContents(button.previousElementSibling);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
  }
}

function callRef(r) {
  const button = h(
    "button",
    { type: "button", class: "secondary small", "aria-label": t("finance.copyRef", { ref: r.call_ref }) },
    t("finance.copy"),
  );
  button.addEventListener("click", () => copy(r.call_ref, button));
  return h("span", { class: "ref" }, h("code", {}, r.call_ref), " ", button);
}

function tariffCell(r) {
  return r.tariff ? r.tariff : h("span", { class: "badge warn" }, t("finance.noTariff"));
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
    ["col.site", (r) => r.site],
    ["col.interpreter", (r) => r.interpreter],
    ["col.duration", (r) => minutes(r.duration_s), true],
    ["col.billable", (r) => minutes(r.billable_s), true],
    ["col.amount", (r) => formatMoney(r.amount_cents, r.currency), true],
    ["col.tariff", tariffCell],
    ["col.call", callRef],
    // The API lists a consultation's segments next to each other, in time order.
    ["col.consultation", (r) => (r.consultation_ref ? h("code", {}, r.consultation_ref) : "")],
  ];
  const attrs = (r) => ({
    class: r.room_id ? "segment" : null,
    dataset: r.room_id ? { callId: r.call_id, roomId: r.room_id } : { callId: r.call_id },
  });
  fill($("#usage"), table(cols, records, { rowAttrs: attrs }));
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  load();
});
for (const radio of form.elements.period) radio.addEventListener("change", () => (showPeriodFields(), load()));
month.addEventListener("change", load);
for (const select of [orgSelect, siteSelect, langSelect]) select.addEventListener("change", load);
onLocaleChange(() => (updateDownloads(), render()));
showPeriodFields();
fillOptions(orgSelect, []);
fillOptions(siteSelect, []);
fillOptions(langSelect, []);
try {
  scope = (await api("GET", "/api/usage/scope")).scope;
} catch {
  /* the usage below says what went wrong */
}
await load();
