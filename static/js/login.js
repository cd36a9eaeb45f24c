// The login page: after logging in, each role lands on its own page.
import { $ } from "./dom.js";
import { bindLocaleSwitch, t, translate } from "./i18n.js";
import { api, HOME } from "./api.js";

translate();
bindLocaleSwitch($("#locale"));

const message = $("#login-error");
if (new URLSearchParams(location.search).has("loggedout")) message.textContent = t("error.session");

$("#login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = $("#login-submit");
  button.disabled = true;
  message.textContent = "";
  try {
    const { user } = await api("POST", "/api/session", {
      username: $("#username").value.trim(),
      password: $("#password").value,
    });
    location.replace(HOME[user.role] ?? "/");
  } catch (err) {
    message.textContent =
      err.status === 401 ? t("login.failed") : err.status === 429 ? t("login.throttled") : t("error.network");
    $("#password").select();
  } finally {
    button.disabled = false;
  }
});
