// A monthly statement of one organisation, to print or save as PDF and send as it is:
// period, cost centre, calls, minutes and amounts per language and tariff, the totals, and
// each consultation with its interpreter segments and its own total.
import { $, fill, h } from "./dom.js";
import { formatDateTime, formatMoney, formatNumber, languageName, locale, onLocaleChange, t } from "./i18n.js";
import { api } from "./api.js";
import { errorText, notify, startPage } from "./shell.js";

await startPage({ socket: false });

const params = new URLSearchParams(location.search);
let found = null;

const day = (iso) => new Intl.DateTimeFormat(locale(), { dateStyle: "long" }).format(new Date(`${iso}T12:00:00`));
const monthName = (ym) =>
  new Intl.DateTimeFormat(locale(), { month: "long", year: "numeric" }).format(new Date(`${ym}-15T12:00:00`));
const minutes = (s) => t("finance.minutes", { n: formatNumber(s / 60, { maximumFractionDigits: 1 }) });

const row = (cells, tag = "td") =>
  h(
    "tr",
    {},
    cells.map(([v, num]) => h(tag, { class: num ? "num" : null }, v)),
  );

// One tbody per consultation: its reference, its segments in time order, its total.
function consultationBody(c) {
  const segments = c.segments.map((s) =>
    row([
      [formatDateTime(s.connected_at)],
      [s.interpreter],
      [languageName(s.language)],
      [s.end_reason === "handover" ? t("statement.handedOver") : ""],
      [minutes(s.billable_s), 1],
      [formatMoney(s.amount_cents, s.currency), 1],
    ]),
  );
  const totals = c.totals.map((total) =>
    row(
      [
        [t("statement.consultationTotal")],
        [t("statement.segments", { n: formatNumber(total.segments) })],
        [""],
        [""],
        [minutes(total.billable_s), 1],
        [formatMoney(total.amount_cents, total.currency), 1],
      ],
      "th",
    ),
  );
  const heading = h(
    "tr",
    { class: "consultation-ref" },
    h("th", { colspan: 6 }, t("statement.consultation", { ref: c.consultation_ref })),
  );
  return h("tbody", { dataset: { roomId: c.room_id } }, heading, ...segments, ...totals);
}

function consultationsSection(consultations) {
  if (!consultations.length) return [];
  const head = row(
    [
      [t("col.start")],
      [t("col.interpreter")],
      [t("col.language")],
      [t("col.endReason")],
      [t("col.billable"), 1],
      [t("col.amount"), 1],
    ],
    "th",
  );
  return [
    h("h2", {}, t("statement.consultations")),
    h("p", { class: "muted" }, t("statement.consultationsHint")),
    h(
      "table",
      { id: "statement-consultations", class: "consultations" },
      h("thead", {}, head),
      ...consultations.map(consultationBody),
    ),
  ];
}

function render() {
  if (!found) return;
  const s = found;
  const title = t("statement.heading", { month: monthName(s.month) });
  $("#statement-heading").textContent = title;
  document.title = `${title} · ${s.organization.name}`;
  const facts = [
    ["statement.organization", s.organization.name],
    ["statement.costCenter", s.organization.cost_center || "–"],
    ["statement.period", t("statement.periodText", { first: day(s.first_day), last: day(s.last_day) })],
  ];
  fill(
    $("#statement-facts"),
    facts.flatMap(([k, v]) => [h("dt", {}, t(k)), h("dd", {}, v)]),
  );
  if (!s.lines.length) {
    fill($("#statement-body"), h("p", {}, t("statement.none")));
  } else {
    fill(
      $("#statement-body"),
      h(
        "table",
        {},
        h(
          "thead",
          {},
          row(
            [[t("col.language")], [t("col.tariff")], [t("col.calls"), 1], [t("col.billable"), 1], [t("col.amount"), 1]],
            "th",
          ),
        ),
        h(
          "tbody",
          {},
          s.lines.map((l) =>
            row([
              [languageName(l.language)],
              [l.tariff || t("finance.noTariff")],
              [formatNumber(l.calls), 1],
              [minutes(l.billable_s), 1],
              [formatMoney(l.amount_cents, l.currency), 1],
            ]),
          ),
        ),
        h(
          "tfoot",
          {},
          s.totals.map((total) =>
            row(
              [
                [t("statement.total")],
                [total.currency],
                [formatNumber(total.calls), 1],
                [minutes(total.billable_s), 1],
                [formatMoney(total.amount_cents, total.currency), 1],
              ],
              "th",
            ),
          ),
        ),
      ),
      ...consultationsSection(s.consultations ?? []),
    );
  }
  const warn = $("#statement-untariffed");
  warn.hidden = !s.untariffed_calls;
  warn.textContent = t("statement.untariffed", { n: formatNumber(s.untariffed_calls) });
  const today = new Intl.DateTimeFormat(locale(), { dateStyle: "long" }).format(new Date());
  $("#statement-footer").textContent = t("statement.created", { date: today });
}

$("#print").addEventListener("click", () => window.print());
onLocaleChange(render);
try {
  const query = new URLSearchParams({
    organization: params.get("organization") ?? "",
    month: params.get("month") ?? "",
  });
  found = (await api("GET", `/api/usage/statement?${query}`)).statement;
  render();
} catch (err) {
  notify($("#notice"), () => errorText(err), "bad");
}
