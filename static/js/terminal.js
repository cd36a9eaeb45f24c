// A self-service terminal's page, for a person who does not speak German: tap your
// language, wait, talk to the interpreter, end. It goes back to its start screen after
// each call and after a while without a touch, and keeps nothing of the person: no
// storage, no history, the request and the call only in memory until the reset.
import { CallView, rememberCall } from "./callview.js";
import { $, fill, h } from "./dom.js";
import { formatClock, languageName, nativeName, onLocaleChange, setLocale, tIn } from "./i18n.js";
import { api, requestBody, sendRequest } from "./api.js";
import { openMedia } from "./peer.js";
import PHRASES from "../i18n/phrases.js";
import { startPage } from "./shell.js";

const ENDED = new Set(["cancelled", "expired", "failed"]);
const WAITING = new Set(["queued", "offering"]);
/** How long before an inactivity reset of the wait screen the person is asked to tap. */
const WARN_S = 30;

document.body.classList.add("terminal-page");
const { socket } = await startPage({ kiosk: true });
const { terminal } = await api("GET", "/api/terminal/me");
const idleResetMs = terminal.idle_reset_s * 1000;

const screens = { start: $("#start"), wait: $("#wait"), call: $("#call") };
const callView = new CallView(screens.call, socket, { role: "counsellor", hangupKey: "terminal.end" });

let languages = [];
let audioOnly = false;
let chosen = null; // the person's language tag, from the tap until the reset
let attempt = null; // {tag, cancelled} from the tap until the request or the call ends
let request = null; // the request as the server last told it
let stream = null; // camera and microphone, from the tap until the reset
let startingCall = null;
let retry = false; // "Neu anfordern" on a stalled call: ask again once it has ended
let lastTouch = performance.now();
let resets = 0;
const finished = new Set(); // request ids of this page that ended: late news is ignored
const calls = new Map(); // the newest state of each call the server told of

// ---- Texts: in the person's language where Tolk has the words, else German and English ------

/** The interface languages to show: the person's when Tolk has it, else German and English. */
function shownLocales() {
  const base = chosen?.split("-")[0];
  return base === "de" || base === "en" ? [base] : ["de", "en"];
}

/** `key` in each shown interface language, each marked with its language. */
function both(key, params = {}) {
  const texts = new Map(shownLocales().map((loc) => [tIn(loc, key, params), loc])); // "Video" once
  const parts = [...texts].map(([text, loc]) => h("span", { lang: loc }, text));
  const sep = () => h("span", { class: "t-sep", "aria-hidden": "true" }, "·");
  return parts.flatMap((part, i) => (i ? [" ", sep(), " ", part] : [part]));
}

function renderBothTexts(root = document) {
  for (const el of root.querySelectorAll("[data-both]")) fill(el, both(el.dataset.both));
}

function notice(key, tone = "") {
  const area = $("#t-notice");
  if (!key) fill(area);
  else fill(area, h("p", { class: `notice ${tone}` }, both(key)));
}

/** Show the start or the wait screen, or neither during the call (its view shows itself). */
function show(name) {
  screens.start.hidden = name !== "start";
  screens.wait.hidden = name !== "wait";
  document.body.dataset.screen = name;
  // Only the start screen shows the live figures.
  socket.watchLanguages(name === "start");
}

// ---- Start screen -------------------------------------------------------------------------

function ownName(lang) {
  return lang.autonym ?? nativeName(lang.tag);
}

function renderLanguages() {
  const shown = [...languages].sort(
    (a, b) => (b.available > 0) - (a.available > 0) || ownName(a).localeCompare(ownName(b)),
  );
  $("#t-none").hidden = shown.some((lang) => lang.online > 0) || !languages.length;
  fill(
    $("#t-languages"),
    shown.map((lang) => {
      const phrase = PHRASES[lang.tag] ?? PHRASES[lang.tag.split("-")[0]];
      const names = [...new Set([languageName(lang.tag, "de"), languageName(lang.tag, "en")])].join(" · ");
      return h(
        "li",
        {},
        h(
          "button",
          { type: "button", dataset: { tag: lang.tag }, onclick: () => choose(lang.tag) },
          h("span", { class: "own", lang: lang.tag, dir: "auto" }, ownName(lang)),
          phrase ? h("span", { class: "phrase", lang: lang.tag, dir: "auto" }, phrase) : null,
          h("span", { class: "label", lang: "de" }, names),
          h(
            "span",
            { class: lang.available > 0 ? "avail" : "none" },
            h("span", { "aria-hidden": "true" }, lang.available > 0 ? "● " : "◌ "),
            both(lang.available > 0 ? "terminal.availableNow" : "terminal.waitLonger"),
          ),
        ),
      );
    }),
  );
}

async function loadLanguages() {
  try {
    const data = await api("GET", "/api/languages?locale=de");
    languages = Array.isArray(data) ? data : (data?.languages ?? []);
    renderLanguages();
  } catch {
    /* the figures come again with the next languages.updated or reset */
  }
}

socket.on("languages.updated", (msg) => {
  if (!Array.isArray(msg.languages)) return;
  const known = new Map(languages.map((lang) => [lang.tag, lang]));
  languages = msg.languages.map((lang) => ({ ...lang, autonym: known.get(lang.tag)?.autonym }));
  if (document.body.dataset.screen === "start") renderLanguages();
});

function setMode(audio) {
  audioOnly = audio;
  $("#mode-video").setAttribute("aria-checked", String(!audio));
  $("#mode-audio").setAttribute("aria-checked", String(audio));
}
$("#mode-video").addEventListener("click", () => setMode(false));
$("#mode-audio").addEventListener("click", () => setMode(true));

// ---- Asking for an interpreter -------------------------------------------------------------

async function choose(tag) {
  if (attempt || callView.active) return;
  const mine = (attempt = { tag, cancelled: false });
  chosen = tag;
  // The page's own words (the call screen's buttons) in the person's language, or English.
  setLocale(tag.split("-")[0] === "de" ? "de" : "en", { remember: false });
  notice(null);
  renderWait();
  show("wait");
  try {
    stream = await openMedia({ audioOnly });
  } catch (err) {
    if (mine.cancelled) return;
    console.warn("camera or microphone refused", err?.name);
    reset("terminal.noCamera");
    return;
  }
  if (mine.cancelled) return stopMedia();
  try {
    const sent = await sendRequest("/api/requests", requestBody(tag, audioOnly), mine, finished);
    if (sent) onRequest(sent);
  } catch (err) {
    if (!mine.cancelled) reset(err.code === "unknown_language" ? "terminal.noInterpreter" : "terminal.failed");
  }
}

function renderWait() {
  const tag = chosen ?? "";
  const own = $("#wait-own");
  own.lang = tag;
  const lang = languages.find((l) => l.tag === tag);
  own.textContent = lang ? ownName(lang) : tag && nativeName(tag);
  const phrase = $("#wait-phrase");
  phrase.lang = tag;
  phrase.textContent = PHRASES[tag] ?? PHRASES[tag.split("-")[0]] ?? "";
  const position = request?.state === "queued" ? request.queue_position : null;
  fill($("#wait-status"), both(position ? "terminal.queued" : "terminal.waiting", { position }));
  renderBothTexts(screens.wait);
}

function onRequest(next) {
  if (!next || finished.has(next.id)) return;
  if (!request && !attempt) {
    // A request of an earlier visit (the page was reloaded): nobody waits for it now.
    finished.add(next.id);
    if (WAITING.has(next.state)) api("DELETE", `/api/requests/${encodeURIComponent(next.id)}`).catch(() => {});
    return;
  }
  if (request && (request.id !== next.id || Date.parse(next.updated_at) < Date.parse(request.updated_at))) return;
  request = next;
  if (WAITING.has(next.state)) renderWait();
  else if (next.state === "accepted" && next.call_id) joinCall(next.call_id);
  else if (ENDED.has(next.state)) reset(next.state === "cancelled" ? null : "terminal.noInterpreter");
}

socket.on("request.updated", (msg) => onRequest(msg.request));

async function cancel() {
  const shown = request;
  if (attempt) attempt.cancelled = true;
  if (shown && WAITING.has(shown.state)) {
    try {
      await api("DELETE", `/api/requests/${encodeURIComponent(shown.id)}`);
    } catch (err) {
      if (err.status === 409) return; // an interpreter took it meanwhile: the call comes
    }
  }
  reset();
}
$("#wait-cancel").addEventListener("click", cancel);

// ---- The call ------------------------------------------------------------------------------

function remember(call) {
  return rememberCall(calls, call);
}

async function joinCall(callId) {
  if (callView.active || startingCall === callId) return;
  startingCall = callId;
  try {
    if (!calls.has(callId)) remember((await api("GET", `/api/calls/${encodeURIComponent(callId)}`)).call);
    const call = calls.get(callId);
    if (call.state === "ended") return reset();
    stream ??= await openMedia({ audioOnly: Boolean(call.audio_only) });
    show("call");
    const view = callView.start(call, stream);
    callView.update(calls.get(callId));
    await view;
  } catch {
    if (calls.get(callId)?.state !== "ended") reset("terminal.failed");
  } finally {
    if (startingCall === callId) startingCall = null;
  }
}

socket.on("call.updated", (msg) => {
  const call = msg.call;
  if (call.room_id || !remember(call)) return;
  const known = calls.get(call.id);
  if (callView.active && callView.call.id === call.id) callView.update(known);
  else if (known.state !== "ended" && !attempt && !request && !startingCall) {
    // A call of an earlier visit (the page was reloaded mid-call): the person has gone.
    api("POST", `/api/calls/${encodeURIComponent(known.id)}/hangup`).catch(() => {});
  }
});

callView.addEventListener("ended", () => {
  stream = null;
  const again = retry ? chosen : null;
  retry = false;
  reset("terminal.ended", "ok");
  if (again) choose(again);
});
callView.addEventListener("retry", () => {
  retry = true;
  callView.hangup();
});

// After a reconnect, the server is the truth about the request on screen.
socket.on("hello", async () => {
  if (!request || !WAITING.has(request.state)) return;
  try {
    onRequest((await api("GET", `/api/requests/${encodeURIComponent(request.id)}`)).request);
  } catch {
    reset();
  }
});

// ---- Reset: after each call, on "Abbrechen" and after a while without a touch -------------

function stopMedia() {
  for (const track of stream?.getTracks() ?? []) track.stop();
  stream = null;
}

/** Back to the start screen with nothing of the person kept; `key` says why, if anything. */
function reset(key = null, tone = "bad") {
  if (request) finished.add(request.id);
  if (attempt) attempt.cancelled = true;
  if (request && WAITING.has(request.state)) {
    api("DELETE", `/api/requests/${encodeURIComponent(request.id)}`).catch(() => {});
  }
  attempt = null;
  request = null;
  chosen = null;
  calls.clear();
  stopMedia();
  setMode(false);
  setLocale("de", { remember: false });
  renderBothTexts();
  show("start");
  notice(key, tone);
  window.scrollTo(0, 0);
  document.activeElement?.blur?.();
  lastTouch = performance.now();
  document.body.dataset.resets = String(++resets);
  loadLanguages();
}

for (const kind of ["pointerdown", "keydown", "touchstart"]) {
  document.addEventListener(kind, () => (lastTouch = performance.now()), { capture: true, passive: true });
}

/** Each half second: the wait's clock, the "still there?" prompt, and the inactivity reset. */
function tick() {
  const screen = document.body.dataset.screen;
  if (screen === "wait" && request) {
    $("#wait-time").textContent = formatClock((socket.serverNow() - Date.parse(request.created_at)) / 1000);
  }
  if (callView.active || screen === "call") return;
  const left = (idleResetMs - (performance.now() - lastTouch)) / 1000;
  const still = $("#wait-still");
  const warn = screen === "wait" && left <= Math.min(WARN_S, terminal.idle_reset_s / 2);
  still.hidden = !warn;
  if (warn) fill(still, both("terminal.stillThere", { seconds: Math.max(0, Math.ceil(left)) }));
  if (left > 0) return;
  if (screen === "start" && !touched()) {
    lastTouch = performance.now(); // nothing to undo: no reset, the start screen stays as it is
    return;
  }
  reset();
}

/** Whether the start screen shows anything of the last person: a notice, a choice, a scroll. */
function touched() {
  const focused = document.activeElement && document.activeElement !== document.body;
  return Boolean($("#t-notice").childElementCount) || audioOnly || window.scrollY > 0 || focused;
}

onLocaleChange(() => {
  renderBothTexts();
  if (document.body.dataset.screen === "wait") renderWait();
});

setInterval(tick, 500);
reset();
