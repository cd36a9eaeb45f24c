// The service-level page (docs/statistics.md): waits per language, answered within 30 s /
// 2 min / 5 min, demand by weekday and hour, the interpreters' hours, and a live strip.
// Every chart is SVG with a text alternative and a table beside it; bars and cells carry
// patterns or printed numbers as well as colour, so that a grey print still tells them apart.
import { $, fill, h, isoDate, svg, table } from "./dom.js";
import { formatNumber, languageName, locale, onLocaleChange, t } from "./i18n.js";
import { api } from "./api.js";
import { newestLoad, startPage } from "./shell.js";

const form = $("#filters");
const from = $("#from");
const to = $("#to");
const orgSelect = $("#organization");
const siteSelect = $("#site");
const LIVE_REFRESH_MS = 10_000; // new requests bring no socket news; presence changes do
let figures = null; // {languages, heatmap, interpreters, agencies}: the API's answers
let live = null;
let organizations = [];
let sites = []; // [{id, organization_id, name}], for the site filter

// Default period: the last 30 days, today included ([today - 29 days, tomorrow)). Set before the
// page waits for anything, so that it never overwrites what someone has typed meanwhile.
const today = new Date();
from.value = isoDate(new Date(today.getFullYear(), today.getMonth(), today.getDate() - 29));
to.value = isoDate(new Date(today.getFullYear(), today.getMonth(), today.getDate() + 1));

const { socket } = await startPage();

function query(extra = {}) {
  const params = new URLSearchParams({ from: from.value, to: to.value });
  if (orgSelect.value) params.set("organization", orgSelect.value);
  if (siteSelect.value) params.set("site", siteSelect.value);
  for (const [k, v] of Object.entries(extra)) params.set(k, v);
  return params;
}

function updateDownloads() {
  // German Excel reads semicolons and decimal commas; an English page gets plain CSV.
  const csv = locale() === "de" ? { format: "csv", dialect: "de" } : { format: "csv" };
  $("#dl-languages").href = `/api/stats/languages?${query(csv)}`;
  $("#dl-heatmap").href = `/api/stats/heatmap?${query(csv)}`;
  $("#dl-interpreters").href = `/api/stats/interpreters?${query(csv)}`;
  $("#dl-agencies").href = `/api/stats/interpreters?${query({ ...csv, group_by: "agency" })}`;
}

const load = newestLoad(
  () => {
    updateDownloads();
    return Promise.all([
      api("GET", `/api/stats/languages?${query()}`),
      api("GET", `/api/stats/heatmap?${query()}`),
      api("GET", `/api/stats/interpreters?${query()}`),
      api("GET", `/api/stats/interpreters?${query({ group_by: "agency" })}`),
    ]);
  },
  ([languages, heatmap, interpreters, agencies]) => {
    figures = { languages, heatmap, interpreters, agencies };
    render();
    $("#status").textContent = t("stats.loaded");
  },
);

let liveLoading = null;
async function loadLive() {
  // News arrive in bursts: one request at a time, the last burst answered by the next one.
  if (liveLoading) return liveLoading;
  const params = orgSelect.value ? `?organization=${encodeURIComponent(orgSelect.value)}` : "";
  liveLoading = api("GET", `/api/stats/live${params}`)
    .then((answer) => {
      live = answer;
      renderLive();
    })
    .catch(() => {
      /* the next news or refresh tries again; the figures below say what went wrong */
    })
    .finally(() => {
      liveLoading = null;
    });
  return liveLoading;
}

// -- formatting -----------------------------------------------------------------------------

function seconds(s) {
  if (s === null || s === undefined) return "–";
  if (s < 120) return t("stats.unit.s", { n: formatNumber(s, { maximumFractionDigits: 1 }) });
  return t("stats.unit.min", { n: formatNumber(s / 60, { maximumFractionDigits: 1 }) });
}

function hours(s) {
  return t("stats.unit.h", { n: formatNumber((s ?? 0) / 3600, { maximumFractionDigits: 1 }) });
}

function percent(part, whole) {
  if (!whole) return "–";
  return formatNumber(part / whole, { style: "percent", maximumFractionDigits: 0 });
}

function weekdayName(index, style = "long") {
  // 1 January 2024 was a Monday: weekday 0 of the API.
  return new Intl.DateTimeFormat(locale(), { weekday: style, timeZone: "UTC" }).format(Date.UTC(2024, 0, 1 + index));
}

/** A figures table: its caption for screen readers, the first column naming each row. */
function figureTable(caption, columns, rows) {
  return table(columns, rows, { caption, rowHeads: true });
}

function none() {
  return h("p", { class: "muted" }, t("stats.none"));
}

// -- charts -----------------------------------------------------------------------------------

/** Fill patterns, defined in each chart (an id must be unique on the page). */
function patterns(prefix) {
  return svg(
    "defs",
    {},
    svg(
      "pattern",
      { id: `${prefix}-hatch`, width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" },
      svg("rect", { width: 6, height: 6, class: "fill-light" }),
      svg("line", { x1: 0, y1: 0, x2: 0, y2: 6, class: "stroke-ink", "stroke-width": 3 }),
    ),
    svg(
      "pattern",
      { id: `${prefix}-dots`, width: 5, height: 5, patternUnits: "userSpaceOnUse" },
      svg("rect", { width: 5, height: 5, class: "fill-pale" }),
      svg("circle", { cx: 2.5, cy: 2.5, r: 1.2, class: "fill-ink" }),
    ),
  );
}

function legend(items, y, prefix) {
  // items: [label, class or pattern name]
  let x = 0;
  return items.map(([label, look]) => {
    const g = svg(
      "g",
      {},
      swatch(look, prefix, { x, y, width: 14, height: 14 }),
      svg("text", { x: x + 20, y: y + 12 }, label),
    );
    x += 30 + label.length * 7.5;
    return g;
  });
}

/** An outlined rect filled with `look`: a class, or "pattern:NAME" of the chart's patterns. */
function swatch(look, prefix, attrs) {
  const fill = look.startsWith("pattern:") ? { fill: `url(#${prefix}-${look.slice(8)})` } : { class: look };
  return svg("rect", { ...attrs, ...fill, class: `${fill.class ?? ""} outline` });
}

/** A chart's <svg>, with `label` as its text alternative and title. */
function chart(className, width, height, label, ...children) {
  return svg(
    "svg",
    { class: className, viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": label },
    svg("title", {}, label),
    ...children,
  );
}

/** Where a chart of `n` bars (or rows of them) puts things: the languages' names in the
 * first 170 units, the bars `barW` long, `right` for the numbers after them. */
function layout(n, { barW, rowH, top, right }) {
  const labelW = 170;
  return { labelW, barW, rowH, top, width: labelW + barW + right, height: top + n * rowH + 4 };
}

/** Median (solid) and 90th percentile (hatched) of the time to accept, per language. */
function waitChart(rows) {
  const shown = rows.filter((r) => r.accept_p50_s !== null);
  if (!shown.length) return none();
  const max = Math.max(1, ...shown.map((r) => r.accept_p90_s ?? r.accept_p50_s ?? 0));
  const { labelW, barW, rowH, top, width, height } = layout(shown.length, { barW: 300, rowH: 40, top: 28, right: 80 });
  const description = shown
    .map((r) =>
      t("stats.wait.alt", {
        language: languageName(r.language),
        median: seconds(r.accept_p50_s),
        p90: seconds(r.accept_p90_s),
      }),
    )
    .join("; ");
  const label = `${t("stats.wait")}: ${description}`;
  return chart(
    "chart",
    width,
    height,
    label,
    patterns("wait"),
    legend(
      [
        [t("stats.median"), "fill-dark"],
        [t("stats.p90"), "pattern:hatch"],
      ],
      4,
      "wait",
    ),
    shown.map((r, i) => {
      const y = top + i * rowH;
      const bar = (value, dy, look) => {
        const w = Math.max(2, Math.round(((value ?? 0) / max) * barW));
        return [
          swatch(look, "wait", { x: labelW, y: y + dy, width: w, height: 14 }),
          svg("text", { x: labelW + w + 6, y: y + dy + 12 }, seconds(value)),
        ];
      };
      return svg(
        "g",
        {},
        svg("text", { x: labelW - 8, y: y + 20, "text-anchor": "end" }, truncate(languageName(r.language), 22)),
        bar(r.accept_p50_s, 2, "fill-dark"),
        bar(r.accept_p90_s, 18, "pattern:hatch"),
      );
    }),
  );
}

/** Per language, one bar of 100 %: answered within 30 s, 2 min, 5 min, later, unanswered. */
function answeredChart(rows) {
  const shown = rows.filter((r) => r.requests > 0);
  if (!shown.length) return none();
  const { labelW, barW, rowH, top, width, height } = layout(shown.length, { barW: 360, rowH: 26, top: 52, right: 60 });
  const parts = (r) => [
    ["stats.seg.30s", r.within_30s, "fill-dark"],
    ["stats.seg.2min", r.within_2min - r.within_30s, "fill-mid"],
    ["stats.seg.5min", r.within_5min - r.within_2min, "pattern:dots"],
    ["stats.seg.later", r.answered - r.within_5min, "fill-pale"],
    ["stats.seg.unanswered", r.expired + r.cancelled, "pattern:hatch"],
  ];
  const description = shown
    .map(
      (r) =>
        `${languageName(r.language)}: ${parts(r)
          .map(([key, n]) => `${t(key)} ${percent(n, r.requests)}`)
          .join(", ")}`,
    )
    .join("; ");
  const label = `${t("stats.answered")}: ${description}`;
  const keys = parts(shown[0]).map(([key, , look]) => [t(key), look]);
  return chart(
    "chart",
    width,
    height,
    label,
    patterns("answered"),
    legend(keys.slice(0, 3), 4, "answered"),
    legend(keys.slice(3), 26, "answered"),
    shown.map((r, i) => {
      const y = top + i * rowH;
      let x = labelW;
      const segments = parts(r).map(([, n, look]) => {
        const w = (Math.max(0, n) / r.requests) * barW;
        const rect = swatch(look, "answered", { x, y, width: w, height: rowH - 8 });
        x += w;
        return rect;
      });
      return svg(
        "g",
        {},
        svg("text", { x: labelW - 8, y: y + 14, "text-anchor": "end" }, truncate(languageName(r.language), 22)),
        segments,
        svg("text", { x: labelW + barW + 6, y: y + 14 }, formatNumber(r.requests)),
      );
    }),
  );
}

/** 7 x 24 cells, darker for more; each cell prints its number, so grey prints read alike. */
function heatChart(cells, field, titleKey) {
  const max = Math.max(1, ...cells.map((c) => c[field]));
  const cell = 26;
  const left = 44;
  const top = 18;
  const width = left + 24 * cell;
  const height = top + 7 * cell;
  const busiest = [...cells]
    .sort((a, b) => b[field] - a[field])
    .filter((c) => c[field] > 0)
    .slice(0, 3)
    .map((c) => `${weekdayName(c.weekday)} ${c.hour}–${c.hour + 1} ${t("stats.oclock")}: ${formatNumber(c[field])}`);
  const total = cells.reduce((acc, c) => acc + c[field], 0);
  const label = `${t(titleKey)}: ${t("stats.heat.alt", { total: formatNumber(total), busiest: busiest.join("; ") || "–" })}`;
  return chart(
    "chart heat",
    width,
    height,
    label,
    Array.from({ length: 24 }, (_, hour) =>
      hour % 3 === 0
        ? svg(
            "text",
            { x: left + hour * cell + cell / 2, y: 12, "text-anchor": "middle", class: "small" },
            String(hour),
          )
        : null,
    ),
    Array.from({ length: 7 }, (_, day) =>
      svg(
        "text",
        { x: left - 6, y: top + day * cell + 17, "text-anchor": "end", class: "small" },
        weekdayName(day, "short"),
      ),
    ),
    cells.map((c) => {
      const level = c[field] / max; // 0..1, drawn as lightness: it survives a grey print
      const x = left + c.hour * cell;
      const y = top + c.weekday * cell;
      const lightness = Math.round(97 - level * 72);
      return svg(
        "g",
        {},
        svg("rect", { x, y, width: cell - 1, height: cell - 1, fill: `hsl(210 45% ${lightness}%)` }),
        c[field] > 0
          ? svg(
              "text",
              {
                x: x + cell / 2,
                y: y + 17,
                "text-anchor": "middle",
                class: `small ${lightness < 55 ? "on-dark" : ""}`,
              },
              String(c[field]),
            )
          : null,
      );
    }),
  );
}

function truncate(text, n) {
  return text.length > n ? text.slice(0, n - 1) + "…" : text;
}

// -- rendering --------------------------------------------------------------------------------

function renderLanguages() {
  const rows = figures.languages.rows;
  fill($("#chart-wait"), waitChart(rows));
  fill($("#chart-answered"), answeredChart(rows));
  $("#approximate").hidden = !figures.languages.approximate;
  if (!rows.length) {
    fill($("#languages"), none());
    return;
  }
  const columns = [
    ["stats.col.language", (r) => languageName(r.language)],
    ["stats.col.requests", (r) => formatNumber(r.requests), true],
    ["stats.col.30s", (r) => percent(r.within_30s, r.requests), true],
    ["stats.col.2min", (r) => percent(r.within_2min, r.requests), true],
    ["stats.col.5min", (r) => percent(r.within_5min, r.requests), true],
    ["stats.col.expired", (r) => formatNumber(r.expired), true],
    ["stats.col.cancelled", (r) => formatNumber(r.cancelled), true],
    ["stats.col.waiting", (r) => formatNumber(r.waiting), true],
    ["stats.col.acceptMedian", (r) => seconds(r.accept_p50_s), true],
    ["stats.col.acceptP90", (r) => seconds(r.accept_p90_s), true],
    ["stats.col.connectMedian", (r) => seconds(r.connect_p50_s), true],
    ["stats.col.connectP90", (r) => seconds(r.connect_p90_s), true],
  ];
  fill($("#languages"), figureTable("stats.languagesTable", columns, rows));
}

function renderHeat() {
  const cells = figures.heatmap.rows;
  fill($("#heat-demand"), heatChart(cells, "requests", "stats.heat.demand"));
  fill($("#heat-unanswered"), heatChart(cells, "unanswered", "stats.heat.unanswered"));
  const byDay = Array.from({ length: 7 }, (_, day) => cells.filter((c) => c.weekday === day));
  const columns = [
    ["stats.col.weekday", (cellsOfDay) => weekdayName(cellsOfDay[0].weekday)],
    ...Array.from({ length: 24 }, (_, hour) => [
      "stats.col.hour" + hour,
      (cellsOfDay) => {
        const c = cellsOfDay[hour];
        return c.unanswered ? `${c.requests} (${c.unanswered})` : String(c.requests);
      },
      true,
    ]),
  ];
  fill(
    $("#heat-table"),
    h("p", { class: "muted" }, t("stats.heat.tableHelp")),
    h(
      "table",
      {},
      h("caption", { class: "visually-hidden" }, t("stats.heat")),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "col" }, t("stats.col.weekday")),
          Array.from({ length: 24 }, (_, hr) => h("th", { scope: "col", class: "num" }, String(hr))),
        ),
      ),
      h(
        "tbody",
        {},
        byDay.map((cellsOfDay) =>
          h(
            "tr",
            {},
            columns.map(([, get], i) =>
              i === 0 ? h("th", { scope: "row" }, get(cellsOfDay)) : h("td", { class: "num" }, get(cellsOfDay)),
            ),
          ),
        ),
      ),
    ),
  );
}

function renderPeople() {
  const shared = [
    ["stats.col.online", (r) => hours(r.online_s), true],
    ["stats.col.talk", (r) => hours(r.talk_s), true],
    [
      "stats.col.utilisation",
      (r) =>
        r.utilisation === null ? "–" : formatNumber(r.utilisation, { style: "percent", maximumFractionDigits: 0 }),
      true,
    ],
    ["stats.col.calls", (r) => formatNumber(r.calls), true],
    ["stats.col.offers", (r) => formatNumber(r.offers), true],
    ["stats.col.declined", (r) => formatNumber(r.declined), true],
    ["stats.col.rangOut", (r) => formatNumber(r.rang_out), true],
  ];
  const people = figures.interpreters.rows;
  fill(
    $("#interpreters"),
    people.length
      ? figureTable(
          "stats.interpreters",
          [
            ["stats.col.interpreter", (r) => r.name],
            ["stats.col.number", (r) => r.number ?? ""],
            ["stats.col.agency", (r) => r.agency],
            ...shared,
          ],
          people,
        )
      : none(),
  );
  const agencies = figures.agencies.rows;
  fill(
    $("#agencies"),
    agencies.length
      ? figureTable(
          "stats.agencies",
          [
            ["stats.col.agency", (r) => r.agency || t("stats.noAgency")],
            ["stats.col.interpreters", (r) => formatNumber(r.interpreters), true],
            ...shared,
          ],
          agencies,
        )
      : none(),
  );
}

function renderLive() {
  if (!live) return;
  $("#live-calls").textContent = t("stats.live.calls", { n: formatNumber(live.calls_live) });
  const rows = live.languages.filter((r) => r.waiting > 0 || r.online > 0);
  if (!rows.length) {
    fill($("#live"), h("p", { class: "muted" }, t("stats.live.none")));
    return;
  }
  const columns = [
    ["stats.col.language", (r) => languageName(r.language)],
    ["stats.col.waitingNow", (r) => formatNumber(r.waiting), true],
    ["stats.col.longestWait", (r) => seconds(r.longest_wait_s), true],
    ["stats.col.available", (r) => formatNumber(r.available), true],
    ["stats.col.onlineNow", (r) => formatNumber(r.online), true],
  ];
  fill(
    $("#live"),
    figureTable(
      "stats.live",
      columns,
      [...rows].sort(
        (a, b) => b.waiting - a.waiting || languageName(a.language).localeCompare(languageName(b.language)),
      ),
    ),
  );
}

function renderOrganizations() {
  const keep = orgSelect.value;
  fill(
    orgSelect,
    h("option", { value: "" }, t("stats.all")),
    [...organizations].sort((a, b) => a.name.localeCompare(b.name)).map((o) => h("option", { value: o.id }, o.name)),
  );
  orgSelect.value = organizations.some((o) => o.id === keep) ? keep : "";
  renderSites();
}

/** The sites of the chosen organisation (of every one, named with it, when none is chosen). */
function renderSites() {
  const keep = siteSelect.value;
  const orgName = new Map(organizations.map((o) => [o.id, o.name]));
  const shown = sites
    .filter((s) => !orgSelect.value || s.organization_id === orgSelect.value)
    .map((s) => [s.id, orgSelect.value ? s.name : `${s.name} (${orgName.get(s.organization_id) ?? ""})`])
    .sort((a, b) => a[1].localeCompare(b[1]));
  fill(
    siteSelect,
    h("option", { value: "" }, t("stats.all")),
    shown.map(([id, name]) => h("option", { value: id }, name)),
  );
  siteSelect.value = shown.some(([id]) => id === keep) ? keep : "";
}

function render() {
  renderOrganizations();
  updateDownloads();
  renderLive();
  if (!figures) return;
  renderLanguages();
  renderHeat();
  renderPeople();
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  load();
});
orgSelect.addEventListener("change", () => {
  renderSites();
  load();
  loadLive();
});
siteSelect.addEventListener("change", () => load());
onLocaleChange(render);
socket.on("languages.updated", () => loadLive());
// In the background the page neither asks nor hears; in front again it hears at once.
setInterval(() => {
  if (!document.hidden) loadLive();
}, LIVE_REFRESH_MS);
const watchFigures = () => socket.watchLanguages(!document.hidden);
document.addEventListener("visibilitychange", watchFigures);
watchFigures();
renderOrganizations();
try {
  [{ organizations }, { sites }] = await Promise.all([
    api("GET", "/api/stats/organizations"),
    api("GET", "/api/stats/sites"),
  ]);
} catch {
  /* the figures below say what went wrong */
}
renderOrganizations();
await Promise.all([load(), loadLive()]);
