// The counsellor's page: pick a language, request an interpreter, talk.
import { CallView } from "./callview.js";
import { $, fill, h } from "./dom.js";
import { formatClock, formatEta, languageName, locale, nativeName, onLocaleChange, t } from "./i18n.js";
import { api, mediaErrorKey, openMedia } from "./protocol.js";
import { errorText, notify, startPage } from "./shell.js";

const TERMINAL = new Set(["cancelled", "expired", "failed"]);
const POLL_MS = 10000;
const REQUEST_KEY = "tolk.request";

const status = $("#status");
const noticeArea = $("#notice");
const list = $("#languages");
const search = $("#search");
const chooser = $("#chooser");
const actions = $("#request-actions");

let languages = [];
let request = null; // the current request object, as the server sent it
let stream = null; // camera + microphone while a request or call runs
let statusView = { key: "counsellor.idle", params: {}, tone: "" };
let joining = false;
const finished = new Set(); // request ids that ended here: late news about them is ignored

const { socket } = await startPage();
const callView = new CallView($("#call"), socket);

function setStatus(key, params = {}, tone = "") {
  statusView = { key, params, tone };
  renderStatus();
}

function renderStatus() {
  status.textContent = t(statusView.key, statusView.params);
  status.dataset.tone = statusView.tone;
  status.dataset.state = statusView.key.split(".")[1];
}

// ---- Languages ----------------------------------------------------------------------

async function loadLanguages() {
  try {
    const data = await api("GET", `/api/languages?locale=${locale()}`);
    languages = Array.isArray(data) ? data : (data?.languages ?? []);
    renderLanguages();
  } catch (err) {
    if (!languages.length) notify(noticeArea, t("counsellor.languagesFailed") + " " + errorText(err), "bad");
  }
}

function searchText(lang) {
  return [lang.tag, lang.name, languageName(lang.tag, "de"), languageName(lang.tag, "en"), nativeName(lang.tag)]
    .join(" ")
    .toLocaleLowerCase();
}

function visibleLanguages() {
  const query = search.value.trim().toLocaleLowerCase();
  return languages
    .filter((lang) => !query || searchText(lang).includes(query))
    .map((lang) => ({ ...lang, label: languageName(lang.tag) }))
    .sort((a, b) => (b.available > 0) - (a.available > 0) || a.label.localeCompare(b.label, locale()));
}

function renderLanguages() {
  const shown = visibleLanguages();
  $("#no-match").hidden = shown.length > 0 || languages.length === 0;
  fill(
    list,
    shown.map((lang) =>
      h(
        "li",
        {},
        h(
          "button",
          {
            type: "button",
            dataset: { tag: lang.tag },
            onclick: () => requestInterpreter(lang.tag),
          },
          h("span", { class: "name", lang: locale() }, lang.label),
          h("span", { class: lang.available > 0 ? "avail" : "none" }, availabilityText(lang)),
          // Screen readers hear what the button does; the visible text stays its name.
          h("span", { class: "visually-hidden" }, ` – ${t("counsellor.title")}`),
        ),
      ),
    ),
  );
}

function availabilityText(lang) {
  if (!(lang.available > 0)) {
    return lang.online > 0 ? t("counsellor.wait", { eta: formatEta(lang.eta_s) }) : t("counsellor.noneAvailable");
  }
  const wait = lang.eta_s != null ? ` · ${t("counsellor.wait", { eta: formatEta(lang.eta_s) })}` : "";
  return t("counsellor.available", { n: lang.available }) + wait;
}

search.addEventListener("input", renderLanguages);
search.addEventListener("keydown", (event) => {
  // One key: Enter requests the first language of the filtered list.
  if (event.key === "Enter") {
    event.preventDefault();
    const first = visibleLanguages()[0];
    if (first) requestInterpreter(first.tag);
  }
});

// Live figures: the server may push `languages.updated`; we also poll while idle.
socket.on("languages.updated", (msg) => {
  // The figures come without names (they depend on the page's language): keep ours.
  if (!Array.isArray(msg.languages)) return;
  const names = new Map(languages.map((lang) => [lang.tag, lang.name]));
  languages = msg.languages.map((lang) => ({ ...lang, name: lang.name ?? names.get(lang.tag) ?? "" }));
  renderLanguages();
});
setInterval(() => {
  if (!request && !document.hidden) loadLanguages();
}, POLL_MS);

// ---- Requests -----------------------------------------------------------------------

async function requestInterpreter(tag) {
  if (request) return;
  notify(noticeArea, "");
  const audioOnly = $("#audio-only").checked;
  const name = languageName(tag);
  setStatus("counsellor.searching", { language: name });
  showRequesting(true);
  // Camera first: a refused permission is told now, not after an interpreter accepted.
  try {
    stream = await openMedia({ audioOnly });
  } catch (err) {
    showRequesting(false);
    setStatus("counsellor.idle");
    notify(noticeArea, t(mediaErrorKey(err)), "bad");
    return;
  }
  try {
    const body = { language: tag };
    if (audioOnly) body.preferences = { audio_only: true };
    const data = await api("POST", "/api/requests", body);
    onRequest(data.request);
  } catch (err) {
    stopMedia();
    showRequesting(false);
    setStatus("counsellor.idle");
    notify(noticeArea, err.code === "unknown_language" ? t("counsellor.noInterpreter") : errorText(err), "bad");
  }
}

function onRequest(next) {
  if (finished.has(next.id) || (request && next.id !== request.id)) return;
  request = next;
  sessionStorage.setItem(REQUEST_KEY, next.id);
  const language = languageName(next.language);
  switch (next.state) {
    case "queued": {
      const params = { language, position: next.queue_position, eta: formatEta(next.eta_s) };
      let key = "counsellor.searching";
      if (nobodyOnline(next.language)) key = "counsellor.queuedNobody";
      else if (next.queue_position) key = next.eta_s != null ? "counsellor.queued" : "counsellor.queuedNoEta";
      setStatus(key, params, "warn");
      break;
    }
    case "offering":
      setStatus("counsellor.searching", { language });
      break;
    case "accepted":
      if (next.call_id && !callView.active && !joining) joinCall(next);
      break;
    default:
      if (TERMINAL.has(next.state)) finishRequest(next);
  }
}

/** True when the roster knows nobody online for this language (the server then keeps the
 * request queued until someone comes, or until it expires with end_reason "max_wait"). */
function nobodyOnline(tag) {
  const lang = languages.find((l) => l.tag === tag);
  return lang != null && !(lang.online > 0);
}

function finishRequest(final) {
  const key =
    final.state === "expired" ? (final.end_reason === "max_wait" && nobodyOnline(final.language) ? "counsellor.expiredNobody" : "counsellor.expired")
    : final.state === "cancelled" ? "counsellor.cancelled"
    : "counsellor.failed";
  notify(noticeArea, t(key), final.state === "cancelled" ? "" : "bad");
  reset();
}

function reset() {
  if (request) finished.add(request.id);
  request = null;
  sessionStorage.removeItem(REQUEST_KEY);
  stopMedia();
  showRequesting(false);
  setStatus("counsellor.idle");
  loadLanguages();
}

function stopMedia() {
  for (const track of stream?.getTracks() ?? []) track.stop();
  stream = null;
}

function showRequesting(on) {
  actions.hidden = !on;
  chooser.hidden = on;
  if (!on) search.focus();
}

$("#cancel").addEventListener("click", async () => {
  if (!request) {
    reset();
    return;
  }
  try {
    const id = request.id;
    await api("DELETE", `/api/requests/${encodeURIComponent(id)}`);
    finishRequest({ ...request, state: "cancelled" });
  } catch (err) {
    notify(noticeArea, errorText(err), "bad");
  }
});

socket.on("request.updated", (msg) => onRequest(msg.request));

// ---- The call -----------------------------------------------------------------------

async function joinCall(req) {
  joining = true;
  actions.hidden = true;
  setStatus("counsellor.connecting", { language: languageName(req.language) });
  try {
    if (!stream) stream = await openMedia({ audioOnly: Boolean(req.preferences?.audio_only) });
    const call = await fetchCall(req);
    if (call.state === "ended") {
      reset();
      return;
    }
    await callView.start(call, stream);
    if (call.state === "connected") onCall(call);
  } catch (err) {
    notify(noticeArea, err instanceof DOMException ? t(mediaErrorKey(err)) : errorText(err), "bad");
  } finally {
    joining = false;
  }
}

async function fetchCall(req) {
  return (await api("GET", `/api/calls/${encodeURIComponent(req.call_id)}`)).call;
}

function onCall(call) {
  if (!callView.active || call.id !== callView.call.id) return;
  callView.update(call);
  if (call.state === "connected") setStatus("counsellor.connected", { language: languageName(call.language) }, "ok");
}

socket.on("call.updated", (msg) => onCall(msg.call));

callView.addEventListener("ended", (e) => {
  const call = e.detail;
  stream = null;
  reset();
  const [message, tone] = endedMessage(call);
  notify(noticeArea, message, tone);
});

/** What the counsellor is told when a call ends, by its end_reason. */
function endedMessage(call) {
  switch (call.end_reason) {
    case "lost":
      return [t("call.lost"), "bad"];
    case "failed":
      return [t("call.failed"), "bad"];
    case "shutdown":
      return [t("call.shutdown"), "bad"];
    default:
      return [t("counsellor.ended", { duration: formatClock(call.duration_s ?? 0) }), "ok"];
  }
}

// After a reconnect (or a reload), the database is the truth: fetch our request again.
socket.on("hello", async () => {
  const id = request?.id ?? sessionStorage.getItem(REQUEST_KEY);
  if (!id) return;
  try {
    const { request: current } = await api("GET", `/api/requests/${encodeURIComponent(id)}`);
    if (!request) {
      if (TERMINAL.has(current.state)) {
        sessionStorage.removeItem(REQUEST_KEY);
        return;
      }
      request = current;
      showRequesting(true);
    }
    onRequest(current);
  } catch {
    if (!request) sessionStorage.removeItem(REQUEST_KEY);
  }
});

onLocaleChange(() => {
  renderLanguages();
  renderStatus();
});

renderStatus();
await loadLanguages();
search.focus();
