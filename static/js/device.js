// The page a terminal's one-time device link opens: the secret is after "#", so it never
// reaches a server log or a Referer; it is sent once, in the body of a POST, and the
// device then holds a long session of the terminal and shows the terminal's page.
import { $ } from "./dom.js";
import { t, translate } from "./i18n.js";
import { api } from "./api.js";
import { errorText } from "./shell.js";

translate();
const secret = location.hash.slice(1);
// The secret is spent (or useless) whatever comes next: keep it out of the history.
history.replaceState(null, "", location.pathname);
const message = $("#device-message");

/** True when this browser is logged in as a terminal already. */
async function isTerminal() {
  try {
    return (await api("GET", "/api/me")).user.role === "terminal";
  } catch {
    return false;
  }
}

async function start() {
  let failure = null;
  if (secret) {
    try {
      await api("POST", "/api/terminal/session", { token: secret });
      location.replace("/terminal");
      return;
    } catch (err) {
      failure = err;
    }
  }
  // A link opened again on a device that is logged in already: nothing to do.
  if (await isTerminal()) {
    location.replace("/terminal");
    return;
  }
  message.textContent = failure ? errorText(failure) : t("device.noLink");
  message.className = "notice bad";
  $("#to-login").hidden = false;
}

await start();
