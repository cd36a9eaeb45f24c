// What every signed-in page shares: the header (who, connection, language, log out).
import { $, fill, h } from "./dom.js";
import { onLocaleChange, setLocale, locale, t, translate } from "./i18n.js";
import { api, Socket } from "./protocol.js";

let pageSocket = null;

/** Set up the header; resolve with the user and (unless socket: false) the started socket. */
export async function startPage({ socket: wantSocket = true } = {}) {
  translate();
  setupLocaleSwitch();
  $("#logout")?.addEventListener("click", logout);
  let me;
  try {
    me = (await api("GET", "/api/me")).user;
  } catch (err) {
    if (err.status === 401) location.replace("/");
    throw err;
  }
  const who = $("#who");
  const renderWho = () => who && (who.textContent = `${me.display_name} · ${t("role." + me.role)}`);
  renderWho();
  onLocaleChange(renderWho);
  let socket = null;
  if (wantSocket) {
    socket = pageSocket = new Socket();
    const conn = $("#conn");
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

function setupLocaleSwitch() {
  const select = $("#locale");
  if (!select) return;
  select.value = locale();
  select.addEventListener("change", () => setLocale(select.value));
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

/** Show a message in a notice area (an aria-live region); tone: "" | "ok" | "bad". */
export function notify(area, text, tone = "") {
  if (!area) return;
  if (!text) {
    fill(area);
    return;
  }
  fill(area, h("p", { class: `notice ${tone}` }, text));
}

/** A user-facing text for an API error. */
export function errorText(err) {
  if (err?.status === 0 && err.code === "network") return t("error.network");
  return t("error.generic", { message: err?.message ?? String(err) });
}
