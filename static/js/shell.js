// What every signed-in page shares: the header (who, connection, language, log out).
import { $, fill, h } from "./dom.js";
import { bindLocaleSwitch, has, onLocaleChange, t, translate } from "./i18n.js";
import { api } from "./api.js";
import { Socket } from "./socket.js";

let pageSocket = null;

/** Set up the header; resolve with the user (with `interprets`) and (unless socket: false)
 * the started socket, to `socketUrl` when given. A terminal's page (`kiosk: true`) shows
 * no log-out and no language switch: the person before it picks a language on the page,
 * and the terminal stays logged in. */
export async function startPage({ socket: wantSocket = true, kiosk = false, socketUrl = undefined } = {}) {
  translate();
  if (kiosk) for (const el of [$("#locale"), $('label[for="locale"]')]) el?.remove();
  else bindLocaleSwitch($("#locale"));
  // The shell's header hides what only a signed-in page shows (the login page has the same header).
  const logoutButton = $("#logout");
  if (kiosk) logoutButton?.remove();
  else {
    logoutButton?.addEventListener("click", logout);
    logoutButton?.removeAttribute("hidden");
  }
  let me;
  try {
    const answer = await api("GET", "/api/me");
    me = { ...answer.user, interprets: answer.interprets ?? false };
  } catch (err) {
    if (err.status === 401) location.replace("/");
    throw err;
  }
  const who = $("#who");
  const renderWho = () => who && (who.textContent = `${me.display_name} · ${t("role." + me.role)}`);
  renderWho();
  onLocaleChange(renderWho);
  let socket = null;
  // Only a page with a socket has a connection to show (else an empty badge would sit there).
  if (wantSocket) {
    socket = pageSocket = new Socket(socketUrl);
    const conn = $("#conn");
    conn?.removeAttribute("hidden");
    const show = (state) => {
      if (!conn) return;
      conn.dataset.state = state;
      conn.textContent = t("conn." + state);
    };
    socket.addEventListener("state", (e) => show(e.detail));
    onLocaleChange(() => show(socket.state));
    socket.addEventListener("loggedout", () => location.replace("/?loggedout=1"));
    socket.start();
    show(socket.state);
  }
  return { me, socket };
}

async function logout() {
  // Our own log-out closes our socket too; that is no news to show on the login page.
  pageSocket?.stop();
  try {
    await api("DELETE", "/api/session");
  } finally {
    location.replace("/");
  }
}

const notices = new Map(); // notice area -> [{render, tone}], newest first: re-rendered when the language changes

function showNotices(area) {
  fill(area, ...notices.get(area).map(({ render, tone }) => h("p", { class: `notice ${tone}` }, render())));
}

/** Show a message in a notice area (an aria-live region); tone: "" | "ok" | "bad". `text`
 * may be a function that makes the text: it is called again when the language switches.
 * With `keep` above 1 the area keeps that many of the latest messages, newest first, so
 * that news arriving together (a reminder and an escalation) are all read. */
export function notify(area, text, tone = "", { keep = 1 } = {}) {
  if (!area) return;
  if (!text) {
    notices.delete(area);
    fill(area);
    return;
  }
  const render = typeof text === "function" ? text : () => text;
  notices.set(area, [{ render, tone }, ...(notices.get(area) ?? [])].slice(0, keep));
  showNotices(area);
}

onLocaleChange(() => {
  for (const area of notices.keys()) showNotices(area);
});

/** A page's load whose answers are shown only when no later load has started (the filters
 * changed meanwhile): `ask()` fetches, `show(answers)` renders. While it asks, #status says
 * so; a failure is shown in #notice. */
export function newestLoad(ask, show) {
  let loads = 0;
  return async () => {
    const mine = ++loads;
    $("#status").textContent = t("loading");
    notify($("#notice"), "");
    try {
      const answers = await ask();
      if (mine === loads) show(answers);
    } catch (err) {
      if (mine !== loads) return;
      $("#status").textContent = "";
      notify($("#notice"), () => errorText(err), "bad");
    }
  };
}

/** A user-facing text for an API or socket error, from the catalogue by its code (the
 * server's English message is never shown: the page speaks its own language). */
export function errorText(err) {
  if (err?.status === 0 && err.code === "network") return t("error.network");
  const fields = err?.body?.error?.fields ?? err?.body?.fields;
  if (err?.code === "invalid_input" && Array.isArray(fields) && fields.length) {
    return t("error.invalid", { problems: fields.map(fieldProblem).join("; ") });
  }
  if (err?.code && has(`error.${err.code}`)) return t(`error.${err.code}`);
  return t("error.code", { code: err?.code ?? "?" });
}

/** One bad field of a 422, e.g. "Bis: muss nach dem Beginn liegen". */
export function fieldProblem(problem) {
  const name = String(problem.field ?? "")
    .split(".")
    .pop();
  const field = has(`field.${name}`) ? t(`field.${name}`) : name;
  const text = has(`problem.${problem.code}`)
    ? t(`problem.${problem.code}`, { value: problem.value ?? "" })
    : t("problem.invalid");
  return `${field}: ${text}`;
}
