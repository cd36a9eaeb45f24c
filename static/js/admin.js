// The admin page: interpreters (with CSV import), users, organisations (with finance grants),
// sites, tariffs, API tokens, the security event log and the bookings nobody claimed.
import { showUnclaimed } from "./bookings.js";
import { $, fill, h, isoDate } from "./dom.js";
import { formatDateTime, formatMoney, formatNumber, has, languageName, locale, onLocaleChange, t } from "./i18n.js";
import { api } from "./api.js";
import { errorText, notify, startPage } from "./shell.js";

const ROLES = ["counsellor", "interpreter", "finance", "admin", "management"];
const noticeArea = $("#notice");
let organizations = [];
let sites = []; // every organisation's sites, by organisation and name
let users = [];
let profiles = new Map(); // user id -> interpreter profile
let tariffs = null; // null: the server has no tariff endpoint yet
let pools = []; // interpreter pools: [{id, name, tier, escalation_s, members}], in-house first
let tokens = [];
let grants = []; // which finance users see which further organisations' usage
let shownAs = null; // what counsellors see of the interpreter in a call: "name" | "number"
let newToken = null; // the value of a token just issued: shown once, never fetched again
let newLink = null; // a "set your password" link just made: {name, url, expires_at}, shown once
let terminals = []; // self-service terminals with their sites, sessions and waiting links
let newDeviceLink = null; // a terminal's device link just made: {name, url, expires_at}, shown once
let pool = null; // the interpreter pool: the organisation new interpreters join by default
let languageChoices = []; // [{tag, name}] the roster's and CLDR's languages, by name
let editing = null; // the interpreter whose form is open for editing (user id), or null
let auditEvents = [];
let auditMore = false;
let auditFilter = {};

// ---- Tabs (WAI-ARIA tabs pattern: arrow keys move between tabs) -------------------------
// One tab per panel of the page, named after it: #panel-users is the tab "admin.users".
const tabs = [...document.querySelectorAll('[role="tabpanel"]')].map((panel, i) => {
  const name = panel.id.replace(/^panel-/, "");
  return h(
    "button",
    {
      type: "button",
      role: "tab",
      id: `tab-${name}`,
      "aria-controls": panel.id,
      "aria-selected": String(i === 0),
      tabindex: i === 0 ? null : "-1",
      "data-i18n": `admin.${name}`,
    },
    t(`admin.${name}`),
  );
});
$(".tabs").append(...tabs);
function selectTab(tab, focus = true) {
  for (const other of tabs) {
    const selected = other === tab;
    other.setAttribute("aria-selected", String(selected));
    other.tabIndex = selected ? 0 : -1;
    $("#" + other.getAttribute("aria-controls")).hidden = !selected;
  }
  if (focus) tab.focus();
}
for (const tab of tabs) {
  tab.addEventListener("click", () => selectTab(tab));
  tab.addEventListener("keydown", (e) => {
    const i = tabs.indexOf(tab);
    const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
    if (next === undefined) return;
    e.preventDefault();
    selectTab(tabs[(next + tabs.length) % tabs.length]);
  });
}

const { me } = await startPage({ socket: false });

// ---- Small form builders -----------------------------------------------------------------
let fieldCounter = 0;
function field(labelKey, input) {
  const id = input.id || `f${++fieldCounter}`;
  input.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, t(labelKey)), input);
}
function input(name, attrs = {}) {
  return h("input", { name, autocomplete: "off", ...attrs });
}
function select(name, options) {
  return h(
    "select",
    { name },
    options.map(([value, label]) => h("option", { value }, label)),
  );
}
function orgOptions() {
  return organizations.map((o) => [o.id, o.name]);
}
function table(headKeys, rows) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          headKeys.map((k) => h("th", { scope: "col" }, t(k))),
        ),
      ),
      h("tbody", {}, rows),
    ),
  );
}
function formData(form) {
  return Object.fromEntries(new FormData(form).entries());
}
/** A form's submit handler: the page stays, and `handle` gets the form's data. */
function submitted(handle) {
  return (e) => {
    e.preventDefault();
    return handle(formData(e.target));
  };
}
function parseTags(text) {
  return text
    .split(/[,;\s]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}
/** A card that adds something: a heading, a row of fields, and a button that saves the
 * form's data through `act` (saved notice, or the error, and the tabs reloaded). */
function addCard(titleKey, fields, save) {
  return h(
    "form",
    { class: "card", onsubmit: submitted((data) => act(() => save(data))) },
    h("h3", {}, t(titleKey)),
    h("div", { class: "row" }, fields),
    h("button", { type: "submit" }, t(titleKey)),
  );
}
async function act(fn) {
  newToken = null; // a token's value is shown once, until the next change
  newLink = null;
  newDeviceLink = null;
  try {
    const then = await fn();
    notify(noticeArea, () => t("admin.saved"), "ok");
    if (typeof then === "function") then();
    await loadAll();
  } catch (err) {
    notify(noticeArea, () => errorText(err), "bad");
  }
}

// ---- Data ---------------------------------------------------------------------------------
async function loadAll() {
  try {
    [{ organizations }, { users }, { sites }] = await Promise.all([
      api("GET", "/api/admin/organizations"),
      api("GET", "/api/admin/users"),
      api("GET", "/api/admin/sites"),
    ]);
  } catch (err) {
    notify(noticeArea, () => errorText(err), "bad");
  }
  const list = (await api("GET", "/api/admin/interpreters").catch(() => null))?.interpreters ?? [];
  profiles = new Map(list.map((p) => [p.id, p]));
  const settings = (await fetched("/api/admin/settings"))?.settings;
  if (settings) {
    shownAs = settings.interpreter_shown_as;
    pool = settings.interpreter_pool ?? null;
  }
  pools = (await fetched("/api/admin/pools"))?.pools ?? pools;
  tariffs = (await api("GET", "/api/admin/tariffs").catch(() => null))?.tariffs ?? null;
  grants = (await fetched("/api/admin/finance-grants"))?.grants ?? grants;
  terminals = (await fetched("/api/admin/terminals"))?.terminals ?? terminals;
  tokens = (await fetched("/api/admin/tokens"))?.tokens ?? tokens;
  await loadAudit();
  await loadLanguageChoices();
  render();
}

async function loadAudit(before) {
  const query = new URLSearchParams({ limit: "50" });
  for (const [key, value] of Object.entries(auditFilter)) if (value) query.set(key, value);
  if (before) query.set("before", before);
  const page = await fetched(`/api/admin/audit?${query}`);
  if (!page) return;
  auditEvents = before ? [...auditEvents, ...page.events] : page.events;
  auditMore = page.more;
}

/** GET what the page shows; a failure is said on the page and gives undefined (what the
 * page showed stays). */
async function fetched(path) {
  try {
    return await api("GET", path);
  } catch (err) {
    notify(noticeArea, () => errorText(err), "bad");
    return undefined;
  }
}

function render() {
  renderInterpreters();
  renderPools();
  renderUsers();
  renderOrganizations();
  renderSites();
  renderTerminals();
  renderTariffs();
  renderTokens();
  renderAudit();
}

function userToggle(user) {
  return activeToggle(user.active, user.display_name, `/api/admin/users/${encodeURIComponent(user.id)}`);
}

function profileToggle(user, profile) {
  return activeToggle(profile.active, user.display_name, `/api/admin/interpreters/${encodeURIComponent(user.id)}`);
}

/** Deactivate (or activate again) what `path` names: a user, an interpreter profile, a site. */
function activeToggle(active, name, path) {
  const key = active ? "admin.deactivate" : "admin.activate";
  return h(
    "button",
    {
      type: "button",
      class: active ? "secondary" : "good",
      "aria-label": `${t(key)}: ${name}`,
      onclick: () => act(() => api("PATCH", path, { active: !active })),
    },
    t(key),
  );
}

// ---- Interpreters -------------------------------------------------------------------------
// The import's file field and its outcome outlive a redraw of the panel (a language switch,
// a change elsewhere): the chosen file stays chosen, the rows to fix are said again.
const importFile = h("input", { type: "file", accept: ".csv,text/csv", name: "file" });
const importResult = h("div", { "aria-live": "polite" });
let importRefusal = null; // the error of the last import, until the next one

function renderImportResult() {
  const err = importRefusal;
  const rows = err?.body?.error?.rows;
  if (!err) fill(importResult);
  else if (!rows) fill(importResult, h("p", { class: "notice bad" }, errorText(err)));
  else {
    fill(
      importResult,
      h("p", { class: "notice bad" }, t("admin.importErrors")),
      table(
        ["admin.row", "admin.column", "admin.problem"],
        rows.map((r) => h("tr", {}, h("td", {}, r.row), h("td", {}, r.column ?? ""), h("td", {}, rowProblem(r)))),
      ),
    );
  }
}

// Languages are picked by name: the roster's (with the names staff use) and every language
// CLDR names in the browser (Intl.DisplayNames), each shown as "Name (tag)".
const CLDR_TAGS =
  "af am ar ar-SY ar-IQ ar-EG az be bg bn bs ca ckb cs cy da de el en es et eu fa fa-AF fi fr ga gl gu ha he hi hr hu hy id ig is it ja ka kk km kmr kn ko ku ky lo lt lv mk ml mn mr ms mt my ne nl no pa pl ps pt ro ru rw sd si sk sl so sq sr sv sw ta te tg th ti tk tl tr ug uk ur uz vi wo xh yo zh zu".split(
    " ",
  );

async function loadLanguageChoices() {
  let roster = [];
  try {
    roster = await api("GET", "/api/languages");
  } catch {
    /* the CLDR names below are enough to pick from */
  }
  const byTag = new Map(CLDR_TAGS.map((tag) => [tag, languageName(tag)]));
  for (const row of roster ?? []) byTag.set(row.tag, languageName(row.tag));
  languageChoices = [...byTag].map(([tag, name]) => ({ tag, name })).sort((a, b) => a.name.localeCompare(b.name));
}

/** The tag a typed name stands for: "Tigrinya", "Tigrinya (ti)", "ti" all give "ti". */
function tagOf(text) {
  const typed = text.trim().toLowerCase();
  if (!typed) return null;
  const found = languageChoices.find(
    (c) =>
      c.tag.toLowerCase() === typed || c.name.toLowerCase() === typed || `${c.name} (${c.tag})`.toLowerCase() === typed,
  );
  return found?.tag ?? null;
}

/** A language picker: type a name (suggestions from the list), add it, remove with ×. */
function languagePicker(tags) {
  const chosen = [...tags];
  const listId = `langs-${++fieldCounter}`;
  const entry = input("language_entry", { list: listId, autocomplete: "off" });
  const hidden = h("input", { type: "hidden", name: "languages" });
  const chips = h("ul", { class: "chips", "aria-live": "polite" });
  const problem = h("p", { class: "error", role: "alert" });
  const draw = () => {
    hidden.value = chosen.join(" ");
    fill(
      chips,
      chosen.map((tag) =>
        h(
          "li",
          {},
          `${languageName(tag)} (${tag}) `,
          h(
            "button",
            {
              type: "button",
              class: "secondary small",
              "aria-label": t("admin.languageRemove", { name: languageName(tag) }),
              onclick: () => (chosen.splice(chosen.indexOf(tag), 1), draw()),
            },
            "×",
          ),
        ),
      ),
    );
  };
  const add = () => {
    const tag = tagOf(entry.value);
    if (!tag) {
      problem.textContent = entry.value.trim() ? t("admin.languageUnknown", { text: entry.value.trim() }) : "";
      return;
    }
    problem.textContent = "";
    if (!chosen.includes(tag)) chosen.push(tag);
    entry.value = "";
    draw();
  };
  entry.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      add();
    }
  });
  entry.addEventListener("change", add);
  draw();
  return h(
    "div",
    { class: "field language-picker" },
    h("label", { for: (entry.id = `f${++fieldCounter}`) }, t("admin.languagesPick")),
    h(
      "div",
      { class: "row" },
      entry,
      h("button", { type: "button", class: "secondary", onclick: add }, t("admin.languageAdd")),
    ),
    h(
      "datalist",
      { id: listId },
      languageChoices.map((c) => h("option", { value: `${c.name} (${c.tag})` })),
    ),
    chips,
    problem,
    hidden,
  );
}

/** Add or edit an interpreter in one step: the person and the profile together. */
function interpreterForm(user, profile) {
  const editingUser = user != null;
  const genders = [
    ["", t("admin.genderNone")],
    ...["female", "male", "diverse"].map((g) => [g, t("admin.gender." + g)]),
  ];
  const orgSelect = select("organization_id", orgOptions());
  orgSelect.value = pool ?? organizations[0]?.id ?? "";
  const gender = select("gender", genders);
  gender.value = profile?.gender ?? "";
  const onsubmit = submitted((data) => {
    const body = {
      display_name: data.display_name,
      email: data.email || null,
      languages: data.languages.split(" ").filter(Boolean),
      gender: data.gender || null,
      specializations: profile?.specializations ?? [],
      agency: data.agency || null,
    };
    if (editingUser) {
      act(async () => {
        await api("PUT", `/api/admin/interpreters/${encodeURIComponent(user.id)}`, body);
        editing = null;
      });
    } else {
      act(async () => {
        const made = await api("POST", "/api/admin/interpreters", {
          ...body,
          username: data.username,
          organization_id: data.organization_id,
        });
        return () => (newLink = { name: made.interpreter.display_name, ...made.password_link });
      });
    }
  });
  return h(
    "form",
    { class: "card", id: editingUser ? "edit-interpreter" : "add-interpreter", onsubmit },
    h("h3", {}, editingUser ? t("admin.editInterpreter", { name: user.display_name }) : t("admin.addInterpreter")),
    h(
      "div",
      { class: "row" },
      field("admin.displayName", input("display_name", { required: true, value: user?.display_name ?? "" })),
      editingUser ? null : field("admin.username", input("username", { required: true })),
      field("admin.email", input("email", { type: "email", value: user?.email ?? "" })),
      editingUser ? null : field("admin.organization", orgSelect),
      field("admin.gender", gender),
      field("admin.agency", input("agency", { value: profile?.agency ?? "" })),
    ),
    languagePicker((profile?.languages ?? []).map((l) => l.tag)),
    editingUser ? null : h("p", { class: "muted" }, t("admin.addInterpreterHelp")),
    h(
      "div",
      { class: "row" },
      h("button", { type: "submit" }, t(editingUser ? "admin.save" : "admin.addInterpreter")),
      editingUser
        ? h(
            "button",
            { type: "button", class: "secondary", onclick: () => ((editing = null), renderInterpreters()) },
            t("admin.cancel"),
          )
        : null,
    ),
  );
}

function renderInterpreters() {
  const panel = $("#panel-interpreters");
  const interpreters = users.filter((u) => u.role === "interpreter");
  const rows = interpreters.map((user) => {
    const profile = profiles.get(user.id);
    const tags = (profile?.languages ?? []).map((l) => l.tag);
    // An interpreter is active when both the login and the profile are.
    const active = user.active && (profile?.active ?? true);
    return h(
      "tr",
      { dataset: { userId: user.id } },
      h("td", { class: "num" }, profile?.number ?? ""),
      h("td", {}, user.display_name),
      h("td", {}, user.username),
      h("td", {}, tags.map((tag) => languageName(tag)).join(", ")),
      h("td", {}, t(active ? "admin.active" : "admin.inactive")),
      h(
        "td",
        {},
        h(
          "div",
          { class: "row" },
          h(
            "button",
            {
              type: "button",
              class: "secondary",
              "aria-label": `${t("admin.edit")}: ${user.display_name}`,
              onclick: () => ((editing = user.id), renderInterpreters(), $("#edit-interpreter input")?.focus()),
            },
            t("admin.edit"),
          ),
          passwordLinkButton(user),
          profile ? profileToggle(user, profile) : userToggle(user),
        ),
      ),
    );
  });
  const editedUser = editing ? users.find((u) => u.id === editing) : null;
  const importForm = h(
    "form",
    {
      class: "card",
      onsubmit: async (e) => {
        e.preventDefault();
        if (!importFile.files[0]) return;
        try {
          const result = await api("POST", "/api/admin/interpreters/import", await importFile.files[0].text(), {
            contentType: "text/csv",
          });
          importRefusal = null;
          await loadAll();
          notify(noticeArea, () => t("admin.importResult", result), "ok");
        } catch (err) {
          importRefusal = err;
          renderImportResult();
        }
      },
    },
    h("h3", {}, t("admin.import")),
    h("p", { class: "muted" }, t("admin.importHelp")),
    h(
      "div",
      { class: "row" },
      field("admin.importFile", importFile),
      h("button", { type: "submit" }, t("admin.import")),
    ),
    importResult,
  );
  renderImportResult();
  fill(
    panel,
    h("h2", {}, t("admin.interpreters")),
    linkShown(),
    table(["admin.number", "admin.name", "admin.username", "admin.languages", "admin.status", "admin.actions"], rows),
    editedUser ? interpreterForm(editedUser, profiles.get(editedUser.id)) : null,
    interpreterForm(null, null),
    shownAsForm(),
    importForm,
  );
}

/** A one-time "set your password" link for a person (machine accounts have no password). */
function passwordLinkButton(user) {
  if (user.machine) return null;
  return h(
    "button",
    {
      type: "button",
      class: "secondary",
      "aria-label": `${t("admin.passwordLink")}: ${user.display_name}`,
      onclick: () =>
        act(async () => {
          const { link } = await api("POST", `/api/admin/users/${encodeURIComponent(user.id)}/password-link`);
          return () => (newLink = { name: user.display_name, ...link });
        }),
    },
    t("admin.passwordLink"),
  );
}

/** The link just made, shown once for the admin to hand over. */
function linkShown() {
  if (!newLink) return null;
  return h(
    "div",
    { class: "notice ok", id: "password-link", role: "status" },
    h("p", {}, t("admin.passwordLinkOnce", { name: newLink.name, until: formatDateTime(newLink.expires_at) })),
    h("code", { class: "token-value" }, newLink.url),
  );
}

/** The centre's choice: counsellors see the interpreter's name, or their number. */
function shownAsForm() {
  const choice = (value) =>
    h(
      "label",
      { class: "inline" },
      h("input", { type: "radio", name: "interpreter_shown_as", value, checked: shownAs === value }),
      " ",
      t("admin.shownAs." + value),
    );
  return h(
    "form",
    {
      class: "card",
      id: "shown-as",
      onsubmit: submitted(({ interpreter_shown_as: value }) => {
        if (value) act(() => api("PUT", "/api/admin/settings", { interpreter_shown_as: value }));
      }),
    },
    h(
      "fieldset",
      { class: "plain" },
      h("legend", {}, t("admin.shownAs")),
      h("p", { class: "row" }, choice("name"), choice("number")),
      h("p", { class: "muted" }, t("admin.shownAsHelp")),
    ),
    h("button", { type: "submit" }, t("admin.save")),
  );
}

// ---- Users --------------------------------------------------------------------------------
function renderUsers() {
  const rows = users.map((user) =>
    h(
      "tr",
      { dataset: { userId: user.id } },
      h("td", {}, user.display_name),
      h("td", {}, user.username),
      h("td", {}, t("role." + user.role) + (user.machine ? ` (${t("admin.machine")})` : "")),
      h("td", {}, user.organization?.name ?? ""),
      h("td", {}, siteChoice(user)),
      h("td", {}, t(user.active ? "admin.active" : "admin.inactive")),
      h("td", {}, h("div", { class: "row" }, passwordLinkButton(user), userToggle(user))),
    ),
  );
  const addForm = addCard(
    "admin.add",
    [
      field("admin.displayName", input("display_name", { required: true })),
      field("admin.username", input("username", { required: true })),
      field("admin.password", input("password", { type: "password", autocomplete: "new-password" })),
      field(
        "admin.role",
        select(
          "role",
          ROLES.map((r) => [r, t("role." + r)]),
        ),
      ),
      field("admin.organization", select("organization_id", orgOptions())),
      field(
        "admin.site",
        select("site_id", [
          ["", t("admin.noSite")],
          ...sites.filter((s) => s.active).map((s) => [s.id, `${s.name} (${orgName(s.organization_id)})`]),
        ]),
      ),
      field("admin.machineField", input("machine", { type: "checkbox" })),
    ],
    (data) => {
      const machine = data.machine === "on";
      delete data.machine;
      if (machine) delete data.password;
      if (!data.site_id) delete data.site_id;
      return api("POST", "/api/admin/users", { ...data, machine });
    },
  );
  fill(
    $("#panel-users"),
    h("h2", {}, t("admin.users")),
    linkShown(),
    table(
      [
        "admin.name",
        "admin.username",
        "admin.role",
        "admin.organization",
        "admin.site",
        "admin.status",
        "admin.actions",
      ],
      rows,
    ),
    addForm,
  );
}

function orgName(id) {
  return organizations.find((o) => o.id === id)?.name ?? id;
}

/** Which site a user works at: an active site of their organisation, or none. */
function siteChoice(user) {
  const own = sites.filter((s) => s.organization_id === user.organization?.id && (s.active || s.id === user.site_id));
  const choice = select("site_id", [["", t("admin.noSite")], ...own.map((s) => [s.id, s.name])]);
  choice.value = user.site_id ?? "";
  choice.setAttribute("aria-label", `${t("admin.site")}: ${user.display_name}`);
  choice.addEventListener("change", () =>
    act(() => api("PATCH", `/api/admin/users/${encodeURIComponent(user.id)}`, { site_id: choice.value || null })),
  );
  return choice;
}

// ---- Pools and colleagues who interpret ---------------------------------------------------
// In-house pools are asked first; after a pool's escalation time the request goes on to the
// external pools by itself. Any user may interpret in the house for the languages they speak.
function renderPools() {
  const inHouse = pools.filter((p) => p.tier === "in_house");
  const rows = pools.map((p) => {
    const seconds = input("escalation_s", {
      type: "number",
      min: "0",
      max: "600",
      value: String(p.escalation_s),
      "aria-label": `${t("admin.escalation")}: ${p.name}`,
    });
    const save = () =>
      act(() => api("PATCH", `/api/admin/pools/${encodeURIComponent(p.id)}`, { escalation_s: Number(seconds.value) }));
    return h(
      "tr",
      { dataset: { poolId: p.id } },
      h("td", {}, p.name),
      h("td", {}, t(`admin.tier.${p.tier}`)),
      h("td", {}, seconds),
      h("td", {}, formatNumber(p.members)),
      h(
        "td",
        {},
        h(
          "button",
          { type: "button", class: "secondary", onclick: save, "aria-label": `${t("admin.save")}: ${p.name}` },
          t("admin.save"),
        ),
      ),
    );
  });
  const addPool = addCard(
    "admin.poolAdd",
    [
      field("admin.name", input("name", { required: true })),
      field(
        "admin.tier",
        select("tier", [
          ["in_house", t("admin.tier.in_house")],
          ["external", t("admin.tier.external")],
        ]),
      ),
      field("admin.escalation", input("escalation_s", { type: "number", min: "0", max: "600", value: "20" })),
    ],
    (data) => api("POST", "/api/admin/pools", { ...data, escalation_s: Number(data.escalation_s) }),
  );
  const inHouseIds = new Set(inHouse.map((p) => p.id));
  const byId = new Map(users.map((u) => [u.id, u]));
  const staff = [...profiles.values()].filter((p) => inHouseIds.has(p.pool_id));
  const staffRows = staff.map((p) =>
    h(
      "tr",
      { dataset: { userId: p.id } },
      h("td", {}, p.display_name),
      h("td", {}, t(`role.${p.role}`)),
      h("td", {}, p.languages.map((l) => l.name).join(", ")),
      h("td", {}, profileToggle(byId.get(p.id) ?? p, p)),
    ),
  );
  // Interpreters are in the roster already; a terminal or a machine account never interprets.
  const colleagues = users.filter(
    (u) => u.active !== false && !u.machine && !["interpreter", "terminal"].includes(u.role),
  );
  const addStaff = addCard(
    "admin.staffAdd",
    [
      field(
        "admin.staffUser",
        select(
          "user_id",
          colleagues.map((u) => [u.id, `${u.display_name} (${u.username})`]),
        ),
      ),
      field("admin.languages", input("languages", { required: true, placeholder: "ar fa-AF" })),
      field(
        "admin.pool",
        select(
          "pool_id",
          inHouse.map((p) => [p.id, p.name]),
        ),
      ),
    ],
    (data) =>
      api("PUT", `/api/admin/interpreters/${encodeURIComponent(data.user_id)}`, {
        languages: parseTags(data.languages),
        pool_id: data.pool_id,
      }),
  );
  fill(
    $("#panel-pools"),
    h("h2", {}, t("admin.pools")),
    h("p", { class: "muted" }, t("admin.poolsHelp")),
    table(["admin.name", "admin.tier", "admin.escalation", "admin.members", "admin.actions"], rows),
    addPool,
    h("h2", {}, t("admin.staff")),
    h("p", { class: "muted" }, t("admin.staffHelp")),
    table(["admin.name", "admin.role", "admin.languages", "admin.actions"], staffRows),
    addStaff,
  );
}

// ---- Organisations ------------------------------------------------------------------------
function renderOrganizations() {
  const rows = organizations.map((o) => h("tr", {}, h("td", {}, o.name), h("td", {}, o.cost_center ?? "")));
  const addForm = addCard(
    "admin.add",
    [field("admin.name", input("name", { required: true })), field("admin.costCenter", input("cost_center"))],
    (data) => api("POST", "/api/admin/organizations", data),
  );
  fill(
    $("#panel-organizations"),
    h("h2", {}, t("admin.organizations")),
    table(["admin.name", "admin.costCenter"], rows),
    addForm,
    grantSection(),
  );
}

// ---- Sites --------------------------------------------------------------------------------
// The browser's own list of IANA zones as suggestions; the server decides what it takes.
const ZONES = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : ["Europe/Berlin"];

function zoneInput(value) {
  return input("time_zone", { value, list: "time-zones", required: true, maxlength: 64, spellcheck: "false" });
}

/** One site as a row: rename it, change its address or zone (saved together), or
 * (de)activate it. */
function siteRow(site) {
  const label = `${site.name} (${orgName(site.organization_id)})`;
  const path = `/api/admin/sites/${encodeURIComponent(site.id)}`;
  const save = submitted((data) => act(() => api("PATCH", path, data)));
  return h(
    "tr",
    { dataset: { siteId: site.id } },
    h("td", {}, orgName(site.organization_id)),
    h(
      "td",
      {},
      h(
        "form",
        { class: "row", onsubmit: save, "aria-label": label },
        field("admin.name", input("name", { value: site.name, required: true, maxlength: 200 })),
        field("admin.address", input("address", { value: site.address, maxlength: 500 })),
        field("admin.timeZone", zoneInput(site.time_zone)),
        h("button", { type: "submit", "aria-label": `${t("admin.save")}: ${label}` }, t("admin.save")),
      ),
    ),
    h("td", {}, t(site.active ? "admin.active" : "admin.inactive")),
    h("td", {}, activeToggle(site.active, label, path)),
  );
}

function renderSites() {
  const addForm = addCard(
    "admin.siteAdd",
    [
      field("admin.organization", select("organization_id", orgOptions())),
      field("admin.name", input("name", { required: true, maxlength: 200 })),
      field("admin.address", input("address", { maxlength: 500 })),
      field("admin.timeZone", zoneInput("Europe/Berlin")),
    ],
    (data) => api("POST", "/api/admin/sites", data),
  );
  fill(
    $("#panel-sites"),
    h("h2", {}, t("admin.sites")),
    h("p", { class: "muted" }, t("admin.sitesHelp")),
    table(["admin.organization", "admin.site", "admin.status", "admin.actions"], sites.map(siteRow)),
    addForm,
    h(
      "datalist",
      { id: "time-zones" },
      ZONES.map((zone) => h("option", { value: zone })),
    ),
  );
}

// ---- Terminals ----------------------------------------------------------------------------
/** Make a terminal's device link (a new terminal's, or a new one in place of the old). */
function showDeviceLink(name, link) {
  return () => (newDeviceLink = { name, ...link });
}

function terminalState(term) {
  if (!term.active) return t("admin.terminalRevoked");
  const parts = [];
  if (term.logged_in) parts.push(t("admin.terminalLoggedIn", { at: formatDateTime(term.last_seen_at) }));
  if (term.link_expires_at) parts.push(t("admin.terminalLinkWaits", { until: formatDateTime(term.link_expires_at) }));
  return parts.join(" · ") || t("admin.terminalNoDevice");
}

function terminalRow(term) {
  const path = `/api/admin/terminals/${encodeURIComponent(term.id)}`;
  const relink = () => act(async () => showDeviceLink(term.name, (await api("POST", `${path}/link`)).link));
  return h(
    "tr",
    { dataset: { terminalId: term.id } },
    h("td", {}, term.name),
    h("td", {}, term.site ? `${term.site.name} (${term.organization.name})` : term.organization.name),
    h("td", {}, terminalState(term)),
    h(
      "td",
      { class: "row" },
      h(
        "button",
        {
          type: "button",
          class: "secondary",
          "aria-label": `${t("admin.terminalLink")}: ${term.name}`,
          onclick: relink,
        },
        t("admin.terminalLink"),
      ),
      term.active
        ? h(
            "button",
            {
              type: "button",
              class: "danger",
              "aria-label": `${t("admin.terminalRevoke")}: ${term.name}`,
              onclick: () => act(() => api("DELETE", path)),
            },
            t("admin.terminalRevoke"),
          )
        : null,
    ),
  );
}

function renderTerminals() {
  const atSites = sites.filter((s) => s.active).map((s) => [s.id, `${s.name} (${orgName(s.organization_id)})`]);
  const addForm = addCard(
    "admin.terminalAdd",
    [
      field("admin.name", input("name", { required: true, maxlength: 100 })),
      field("admin.site", select("site_id", atSites)),
    ],
    async (data) => {
      const made = await api("POST", "/api/admin/terminals", data);
      return showDeviceLink(made.terminal.name, made.link);
    },
  );
  const shown = newDeviceLink
    ? h(
        "div",
        { class: "notice ok", id: "device-link", role: "status" },
        h(
          "p",
          {},
          t("admin.deviceLinkOnce", { name: newDeviceLink.name, until: formatDateTime(newDeviceLink.expires_at) }),
        ),
        h("code", { class: "token-value" }, newDeviceLink.url),
      )
    : null;
  fill(
    $("#panel-terminals"),
    h("h2", {}, t("admin.terminals")),
    h("p", { class: "muted" }, t("admin.terminalsHelp")),
    shown,
    table(["admin.name", "admin.site", "admin.status", "admin.actions"], terminals.map(terminalRow)),
    addForm,
  );
}

/** Finance users see their own organisation's usage; here further ones (or all) are granted. */
function grantSection() {
  const byId = new Map(users.map((u) => [u.id, u]));
  const who = (id) => (byId.has(id) ? `${byId.get(id).display_name} (${byId.get(id).username})` : id);
  const rows = grants.map((g) =>
    h(
      "tr",
      { dataset: { grantId: g.id } },
      h("td", {}, who(g.user_id)),
      h("td", {}, g.organization ?? t("admin.grantAll")),
      h(
        "td",
        {},
        h(
          "button",
          {
            type: "button",
            class: "secondary",
            "aria-label": `${t("admin.grantRevoke")}: ${who(g.user_id)}, ${g.organization ?? t("admin.grantAll")}`,
            onclick: () => act(() => api("DELETE", `/api/admin/finance-grants/${encodeURIComponent(g.id)}`)),
          },
          t("admin.grantRevoke"),
        ),
      ),
    ),
  );
  const finance = users.filter((u) => u.role === "finance" && u.active !== false);
  const addForm = addCard(
    "admin.grantAdd",
    [
      field(
        "admin.grantUser",
        select(
          "user_id",
          finance.map((u) => [u.id, `${u.display_name} (${u.username})`]),
        ),
      ),
      field("admin.grantOrganization", select("organization_id", [["", t("admin.grantAll")], ...orgOptions()])),
    ],
    (data) =>
      api("POST", "/api/admin/finance-grants", {
        user_id: data.user_id,
        organization_id: data.organization_id || null,
      }),
  );
  return h(
    "section",
    { "aria-labelledby": "grants-title" },
    h("h2", { id: "grants-title" }, t("admin.grants")),
    h("p", { class: "muted" }, t("admin.grantsHelp")),
    table(["admin.grantUser", "admin.grantOrganization", "admin.actions"], rows),
    addForm,
  );
}

// ---- Tariffs ------------------------------------------------------------------------------
/** A calendar day (`2026-11-01`) in the page's language. */
function formatDay(iso) {
  return new Intl.DateTimeFormat(locale(), { dateStyle: "medium" }).format(new Date(`${iso}T12:00:00`));
}

function unitText(unitS) {
  const named = { 1: "admin.unit.second", 60: "admin.unit.minute", 900: "admin.unit.quarter", 3600: "admin.unit.hour" }[
    unitS
  ];
  return named ? t(named) : t("admin.unit.seconds", { n: unitS });
}

function renderTariffs() {
  const panel = $("#panel-tariffs");
  if (tariffs === null) {
    fill(panel, h("h2", {}, t("admin.tariffs")), h("p", { class: "muted" }, t("admin.notAvailable")));
    return;
  }
  const orgName = new Map(organizations.map((o) => [o.id, o.name]));
  const rows = tariffs.map((x) =>
    h(
      "tr",
      { dataset: { tariffId: x.id } },
      h("td", {}, x.name),
      h("td", {}, x.organization_id ? (orgName.get(x.organization_id) ?? x.organization_id) : t("admin.tariffDefault")),
      h(
        "td",
        {},
        x.languages.length ? x.languages.map((tag) => languageName(tag)).join(", ") : t("admin.tariffAllLanguages"),
      ),
      h("td", { class: "num" }, formatMoney(x.price_per_unit_cents, x.currency)),
      h("td", {}, unitText(x.unit_s)),
      h(
        "td",
        { class: "num" },
        x.minimum_s ? t("admin.minutes", { n: formatNumber(x.minimum_s / 60, { maximumFractionDigits: 1 }) }) : "–",
      ),
      h("td", {}, formatDay(x.valid_from)),
    ),
  );
  const addForm = addCard(
    "admin.add",
    [
      field("admin.name", input("name", { required: true, maxlength: 100 })),
      field("admin.organization", select("organization_id", [["", t("admin.tariffDefault")], ...orgOptions()])),
      field("admin.tariffLanguages", input("languages")),
      field(
        "admin.tariffPrice",
        input("price", { inputmode: "decimal", required: true, pattern: "[0-9]+([.,][0-9]{1,2})?" }),
      ),
      field(
        "admin.tariffUnit",
        select(
          "unit_s",
          [60, 1, 900, 3600].map((s) => [String(s), unitText(s)]),
        ),
      ),
      field("admin.tariffMinimum", input("minimum_min", { type: "number", min: 0, max: 1440, step: 1, value: "0" })),
      field("admin.currency", input("currency", { value: "EUR", maxlength: 3, minlength: 3, required: true })),
      field("admin.validFrom", input("valid_from", { type: "date", required: true, value: isoDate(new Date()) })),
    ],
    (data) =>
      api("POST", "/api/admin/tariffs", {
        name: data.name,
        organization_id: data.organization_id || null,
        languages: parseTags(data.languages),
        unit_s: Number(data.unit_s),
        minimum_s: Math.round(Number(data.minimum_min || 0) * 60),
        price_per_unit_cents: Math.round(Number(String(data.price).replace(",", ".")) * 100),
        currency: data.currency.toUpperCase(),
        valid_from: data.valid_from,
      }),
  );
  fill(
    panel,
    h("h2", {}, t("admin.tariffs")),
    table(
      [
        "admin.name",
        "admin.organization",
        "admin.languages",
        "admin.tariffPrice",
        "admin.tariffUnit",
        "admin.tariffMinimum",
        "admin.validFrom",
      ],
      rows,
    ),
    addForm,
  );
}

// ---- API tokens ---------------------------------------------------------------------------
function renderTokens() {
  const rows = tokens.map((x) =>
    h(
      "tr",
      { dataset: { tokenId: x.id } },
      h("td", {}, x.name),
      h("td", {}, `${x.user.display_name} (${x.user.username})`),
      h("td", {}, x.scopes.join(" ")),
      h("td", {}, formatDateTime(x.created_at)),
      h("td", {}, formatDateTime(x.expires_at)),
      h("td", {}, x.last_used_at ? formatDateTime(x.last_used_at) : "–"),
      h(
        "td",
        {},
        h(
          "button",
          {
            type: "button",
            class: "secondary",
            "aria-label": `${t("admin.revoke")}: ${x.name}`,
            onclick: () => act(() => api("DELETE", `/api/admin/tokens/${encodeURIComponent(x.id)}`)),
          },
          t("admin.revoke"),
        ),
      ),
    ),
  );
  const owners = [me, ...users.filter((u) => u.machine && u.active && u.id !== me.id)];
  const addForm = h(
    "form",
    {
      class: "card",
      onsubmit: submitted(async (data) => {
        try {
          const issued = await api("POST", "/api/admin/tokens", {
            user_id: data.user_id,
            name: data.name,
            scopes: data.scopes.split(/[\s,]+/).filter(Boolean),
            valid_days: Number(data.valid_days),
          });
          newToken = issued.token;
          notify(noticeArea, () => t("admin.saved"), "ok");
          await loadAll();
        } catch (err) {
          notify(noticeArea, () => errorText(err), "bad");
        }
      }),
    },
    h("h3", {}, t("admin.tokenIssue")),
    h("p", { class: "muted" }, t("admin.tokenHelp")),
    h(
      "div",
      { class: "row" },
      field(
        "admin.tokenOwner",
        select(
          "user_id",
          owners.map((u) => [u.id, `${u.display_name} (${u.username})`]),
        ),
      ),
      field("admin.name", input("name", { required: true, maxlength: 100 })),
      field("admin.tokenScopes", input("scopes", { value: "*", required: true })),
      field(
        "admin.tokenDays",
        input("valid_days", { type: "number", min: 1, max: 366, step: 1, value: "90", required: true }),
      ),
    ),
    h("button", { type: "submit" }, t("admin.tokenIssue")),
  );
  const shown = newToken
    ? h(
        "div",
        { class: "card", role: "status" },
        h("p", {}, t("admin.tokenOnce")),
        h("code", { class: "token-value" }, newToken),
      )
    : null;
  fill(
    $("#panel-tokens"),
    h("h2", {}, t("admin.tokens")),
    shown,
    table(
      [
        "admin.name",
        "admin.tokenOwner",
        "admin.tokenScopes",
        "admin.tokenCreated",
        "admin.tokenExpires",
        "admin.tokenLastUsed",
        "admin.actions",
      ],
      rows,
    ),
    addForm,
  );
}

// ---- Security event log -----------------------------------------------------------------
const AUDIT_ACTIONS = [
  "login",
  "login_failed",
  "login_throttled",
  "logout",
  "password_changed",
  "password_link_created",
  "user_created",
  "user_changed",
  "user_deactivated",
  "user_reactivated",
  "organization_created",
  "site_created",
  "site_changed",
  "interpreter_changed",
  "interpreters_imported",
  "tariff_created",
  "tariff_changed",
  "token_issued",
  "token_revoked",
  "terminal_created",
  "terminal_link_created",
  "terminal_revoked",
  "usage_exported",
  "finance_granted",
  "finance_grant_revoked",
  "settings_changed",
  "data_purged",
];

function actorText(actor) {
  if (actor.username) return `${actor.username} (${t("admin.via." + actor.via)})`;
  return t("admin.via." + actor.via);
}

function renderAudit() {
  const rows = auditEvents.map((e) =>
    h(
      "tr",
      { dataset: { eventId: e.id } },
      h("td", {}, formatDateTime(e.at)),
      h("td", {}, t("audit." + e.action)),
      h("td", {}, actorText(e.actor)),
      h("td", {}, e.actor.address),
      h("td", {}, e.target ? e.target.name || e.target.id : ""),
      h(
        "td",
        { class: "details" },
        Object.entries(e.details)
          .map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`)
          .join("; "),
      ),
    ),
  );
  const filterForm = h(
    "form",
    {
      class: "card",
      onsubmit: submitted(async (data) => {
        const day = (value) => (value ? new Date(value + "T00:00:00").toISOString() : "");
        auditFilter = { action: data.action, actor: data.actor.trim(), from: day(data.from), to: day(data.to) };
        await loadAudit();
        renderAudit();
      }),
    },
    h(
      "div",
      { class: "row" },
      field(
        "admin.auditAction",
        select("action", [["", t("admin.auditAll")], ...AUDIT_ACTIONS.map((a) => [a, t("audit." + a)])]),
      ),
      field("admin.auditActor", input("actor", { value: auditFilter.actor ?? "" })),
      field("admin.auditFrom", input("from", { type: "date" })),
      field("admin.auditTo", input("to", { type: "date" })),
    ),
    h("button", { type: "submit" }, t("admin.auditShow")),
  );
  const selected = filterForm.querySelector('[name="action"]');
  if (selected) selected.value = auditFilter.action ?? "";
  const more = auditMore
    ? h(
        "button",
        {
          type: "button",
          class: "secondary",
          onclick: async () => {
            await loadAudit(auditEvents.at(-1)?.id);
            renderAudit();
          },
        },
        t("admin.auditMore"),
      )
    : null;
  fill(
    $("#panel-audit"),
    h("h2", {}, t("admin.audit")),
    filterForm,
    table(
      [
        "admin.auditAt",
        "admin.auditAction",
        "admin.auditWho",
        "admin.auditAddress",
        "admin.auditTarget",
        "admin.auditDetails",
      ],
      rows,
    ),
    more,
  );
}

onLocaleChange(async () => {
  await loadLanguageChoices(); // the names are in the page's language
  render();
});
await loadAll();

/** A CSV row's problem in the page's language, from its code (the server's text is English). */
function rowProblem(row) {
  return has(`problem.${row.code}`) ? t(`problem.${row.code}`, { value: row.value ?? "" }) : row.problem;
}
await showUnclaimed($("#panel-bookings"));
