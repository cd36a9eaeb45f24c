// The page a one-time "set your password" link opens: the secret is after "#", so it never
// reaches a server log or a Referer; it is sent once, in the body of a POST.
import { $ } from "./dom.js";
import { bindLocaleSwitch, t, translate } from "./i18n.js";
import { api } from "./api.js";
import { errorText } from "./shell.js";

translate();
bindLocaleSwitch($("#locale"));

const secret = location.hash.slice(1);
const form = $("#set-password-form");
const message = $("#set-password-message");

function say(text, tone) {
  message.textContent = text;
  message.className = tone ? `notice ${tone}` : "";
}

async function start() {
  if (!secret) {
    say(t("setPassword.noLink"), "bad");
    return;
  }
  try {
    const { user } = await api("POST", "/api/password-link/user", { token: secret });
    $("#set-password-who").textContent = t("setPassword.for", { name: user.display_name, username: user.username });
    $("#username").value = user.username;
    form.hidden = false;
    $("#new-password").focus();
  } catch (err) {
    say(errorText(err), "bad");
    $("#to-login").hidden = false;
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const password = $("#new-password").value;
  if (password !== $("#repeat-password").value) {
    say(t("setPassword.mismatch"), "bad");
    return;
  }
  const button = $("#set-password-submit");
  button.disabled = true;
  try {
    await api("POST", "/api/password-link", { token: secret, password });
    form.hidden = true;
    say(t("setPassword.done"), "ok");
    $("#to-login").hidden = false;
    // The secret is spent: keep it out of the history.
    history.replaceState(null, "", location.pathname);
  } catch (err) {
    say(errorText(err), "bad");
  } finally {
    button.disabled = false;
  }
});

await start();
