// The counsellor's page: pick a language, request an interpreter, talk.
import { CounsellorBookings } from "./bookings.js";
import { CallView, rememberCall } from "./callview.js";
import { Consultation } from "./consultation.js";
import { $, fill, h } from "./dom.js";
import { formatClock, formatEta, languageName, locale, nativeName, onLocaleChange, t } from "./i18n.js";
import { api, requestBody, sendRequest } from "./api.js";
import { joinErrorText, mediaErrorKey, openMedia } from "./peer.js";
import PHRASES from "../i18n/phrases.js";
import { errorText, notify, startPage } from "./shell.js";

const TERMINAL = new Set(["cancelled", "expired", "failed"]);
const WAITING = new Set(["queued", "offering"]);
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
let starting = null; // {cancelled} while the camera and the new request are on their way
let startingCall = null; // the id of the call being joined
let notAccepted = false; // an earlier wave of offers was declined or rang out
let requestedAt = null; // performance.now() of the click, for the time to the first frame
let retry = null; // {tag, audioOnly}: request again once the stalled call has ended
const finished = new Set(); // request ids that ended here: late news about them is ignored
const calls = new Map(); // the newest state the server told of each call, by id

const { me, socket } = await startPage();
// A colleague with an in-house interpreter profile may take requests of others too.
if (me.interprets) $("#interpret-too")?.removeAttribute("hidden");
const callView = new CallView($("#call"), socket, { role: "counsellor" });
const bookings = new CounsellorBookings(socket, {
  onStart: (booking) => requestInterpreter(booking.language, booking.preferences.audio_only, booking.id),
});
let pickingForRoom = false; // the language list is open to ask an interpreter into the room
const consultation = new Consultation(socket, {
  noticeArea,
  onPick: (on) => {
    pickingForRoom = on;
    showRequesting(false);
    if (on) search.focus();
  },
  onEnded: () => {
    pickingForRoom = false;
    if (request?.room_id) reset();
    showRequesting(false);
  },
  onChange: () => renderStatus(),
});

function setStatus(key, params = {}, tone = "") {
  statusView = { key, params, tone };
  renderStatus();
}

function renderStatus() {
  const params = { ...statusView.params };
  // Waiting time so far, counted from the request's creation on the server's clock.
  if (request && WAITING.has(request.state)) {
    params.waited = formatClock((socket.serverNow() - Date.parse(request.created_at)) / 1000);
  }
  status.textContent = t(statusView.key, params);
  // In a room with no request under way the room's status line says all there is.
  status.hidden = consultation?.active === true && request == null;
  status.dataset.tone = statusView.tone;
  status.dataset.state = statusView.key.split(".")[1];
}

// ---- Languages ----------------------------------------------------------------------

async function loadLanguages() {
  try {
    const data = await api("GET", `/api/languages?locale=${locale()}`);
    languages = Array.isArray(data) ? data : (data?.languages ?? []);
    renderLanguages();
    bookings.setLanguages(languages);
  } catch (err) {
    if (!languages.length) notify(noticeArea, () => t("counsellor.languagesFailed") + " " + errorText(err), "bad");
  }
}

/** Lower case without accents: "Kurmanci" finds "Kurmancî", "farsi" finds "Farsi". */
function fold(text) {
  return String(text).normalize("NFD").replace(/\p{M}/gu, "").toLocaleLowerCase();
}

function searchText(lang) {
  // The server's names (German, English, own name, codes, staff aliases from CLDR data)
  // plus the browser's, so that a language the server named in German is found in English.
  const names = [lang.tag, lang.name, lang.autonym, ...(lang.search_names ?? [])];
  names.push(languageName(lang.tag, "de"), languageName(lang.tag, "en"), nativeName(lang.tag));
  return fold(names.filter(Boolean).join(" | "));
}

function visibleLanguages() {
  const query = fold(search.value.trim());
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
          ownName(lang) ? h("span", { class: "autonym", lang: lang.tag, dir: "auto" }, ownName(lang)) : null,
          h("span", { class: lang.available > 0 ? "avail" : "none" }, availabilityText(lang)),
          // Screen readers hear what the button does; the visible text stays its name.
          h("span", { class: "visually-hidden" }, ` – ${t("counsellor.title")}`),
        ),
      ),
    ),
  );
}

/** The language's name in itself, when it differs from the name shown beside it. */
function ownName(lang) {
  const own = lang.autonym ?? nativeName(lang.tag);
  return own && fold(own) !== fold(lang.label) ? own : "";
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

// Live figures: the server pushes `languages.updated` while the page watches (in front,
// with its list shown) after presence changes; the page also re-reads them while it shows
// them, since a queue's wait moves without a presence change.
socket.on("languages.updated", (msg) => {
  // The figures come without names (they depend on the page's language): keep ours.
  if (!Array.isArray(msg.languages)) return;
  const known = new Map(languages.map((lang) => [lang.tag, lang]));
  languages = msg.languages.map((lang) => {
    const before = known.get(lang.tag) ?? {};
    return {
      ...lang,
      name: lang.name ?? before.name ?? "",
      autonym: before.autonym,
      search_names: before.search_names,
    };
  });
  renderLanguages();
  if (!askView.hidden) renderAsk();
});
setInterval(() => {
  if (!request && !document.hidden) loadLanguages();
}, POLL_MS);

/** Watch the figures only while they are shown: in front, with no request or call open. */
function watchFigures() {
  socket.watchLanguages(!document.hidden && !chooser.hidden && !request && !callView.active);
}
document.addEventListener("visibilitychange", watchFigures);

// ---- "Welche Sprache?": the client points at their language ---------------------------

const askView = $("#ask");

function renderAsk() {
  const shown = [...languages].sort(
    (a, b) => (b.available > 0) - (a.available > 0) || fold(a.autonym ?? a.tag).localeCompare(fold(b.autonym ?? b.tag)),
  );
  fill(
    $("#ask-list"),
    shown.map((lang) => {
      const phrase = PHRASES[lang.tag] ?? PHRASES[lang.tag.split("-")[0]];
      const own = lang.autonym ?? nativeName(lang.tag);
      return h(
        "li",
        {},
        h(
          "button",
          { type: "button", dataset: { tag: lang.tag }, onclick: () => closeAsk(lang.tag) },
          h("span", { class: "own", lang: lang.tag, dir: "auto" }, own),
          phrase ? h("span", { class: "phrase", lang: lang.tag, dir: "auto" }, phrase) : null,
          h("span", { class: "label", lang: locale() }, languageName(lang.tag)),
        ),
      );
    }),
  );
}

function openAsk() {
  renderAsk();
  askView.hidden = false;
  document.body.classList.add("asking");
  $("#ask-close").focus();
}

/** Close the view; with a tag, request that language at once. */
function closeAsk(tag) {
  askView.hidden = true;
  document.body.classList.remove("asking");
  if (tag) requestInterpreter(tag);
  else search.focus();
}

$("#ask-open").addEventListener("click", openAsk);
$("#ask-close").addEventListener("click", () => closeAsk());

// ---- Requests -----------------------------------------------------------------------

/** Request an interpreter; with `bookingId`, the request of that booking's appointment
 * (offered first to the interpreter who claimed it). */
async function requestInterpreter(tag, audioOnly = $("#audio-only").checked, bookingId = null) {
  if (request || callView.active || starting) return;
  if (consultation.active && !bookingId) {
    requestIntoRoom(tag, audioOnly);
    return;
  }
  const attempt = (starting = { cancelled: false });
  requestedAt = performance.now();
  notify(noticeArea, "");
  const name = languageName(tag);
  setStatus("counsellor.starting", { language: name });
  showRequesting(true);
  try {
    // Camera first: a refused permission is told now, not after an interpreter accepted.
    let media;
    try {
      media = await openMedia({ audioOnly });
    } catch (err) {
      if (!attempt.cancelled) notRequested(() => t(mediaErrorKey(err)));
      return;
    }
    if (attempt.cancelled) {
      for (const track of media.getTracks()) track.stop();
      return;
    }
    stream = media;
    try {
      const sent = bookingId
        ? await sendRequest(`/api/bookings/${encodeURIComponent(bookingId)}/start`, undefined, attempt, finished)
        : await sendRequest("/api/requests", requestBody(tag, audioOnly), attempt, finished);
      if (sent) onRequest(sent);
    } catch (err) {
      if (attempt.cancelled) return;
      stopMedia();
      notRequested(refusal(err));
    }
  } finally {
    if (starting === attempt) starting = null;
  }
}

/** Ask for an interpreter into the open room: the camera is on already. */
async function requestIntoRoom(tag, audioOnly) {
  const attempt = (starting = { cancelled: false });
  pickingForRoom = false;
  notify(noticeArea, "");
  setStatus("counsellor.starting", { language: languageName(tag) });
  showRequesting(true);
  try {
    const path = `/api/rooms/${encodeURIComponent(consultation.id)}/requests`;
    const sent = await sendRequest(path, requestBody(tag, audioOnly), attempt, finished);
    if (sent) onRequest(sent);
  } catch (err) {
    if (!attempt.cancelled) notRequested(refusal(err));
  } finally {
    if (starting === attempt) starting = null;
  }
}

/** Back to the languages after a request could not be made: `text` says why. */
function notRequested(text) {
  showRequesting(false);
  setStatus("counsellor.idle");
  notify(noticeArea, text, "bad");
}

/** Why the server refused a request, in words (a language nobody interprets has its own). */
function refusal(err) {
  return () => (err.code === "unknown_language" ? t("counsellor.noInterpreter") : errorText(err));
}

/** True when `next` may replace the request on screen: the same request, and not older
 * (the socket's news and HTTP replies arrive in any order; a view never goes back). */
function isNewerRequest(next, shown) {
  if (!shown) return true;
  if (next.id !== shown.id || TERMINAL.has(shown.state)) return false;
  if (shown.state === "accepted" && !TERMINAL.has(next.state)) return next.state === "accepted";
  return Date.parse(next.updated_at) >= Date.parse(shown.updated_at);
}

function onRequest(next) {
  if (!next || finished.has(next.id) || !isNewerRequest(next, request)) return;
  if (!request && starting?.cancelled) return; // news of a request cancelled on its way
  request = next;
  sessionStorage.setItem(REQUEST_KEY, next.id);
  // A later wave, or back in the queue after one: an offer was declined or rang out.
  const waves = next.waves ?? 0;
  notAccepted = waves > 1 || (next.state === "queued" && waves > 0);
  const language = languageName(next.language);
  switch (next.state) {
    case "queued": {
      const params = { language, position: next.queue_position, eta: formatEta(next.eta_s) };
      let key = notAccepted ? "counsellor.notAccepted" : "counsellor.searching";
      if (nobodyOnline(next.language)) key = "counsellor.queuedNobody";
      else if (next.queue_position && notAccepted) key = "counsellor.notAcceptedQueued";
      else if (next.queue_position) key = next.eta_s != null ? "counsellor.queued" : "counsellor.queuedNoEta";
      setStatus(key, params, "warn");
      break;
    }
    case "offering": {
      // Colleagues in the house are asked first; escalation to external is the usual search.
      let key = notAccepted ? "counsellor.notAccepted" : "counsellor.searching";
      if (next.tier === "in_house") key = "counsellor.inHouse";
      setStatus(key, { language });
      break;
    }
    case "accepted":
      if (next.room_id) {
        // The interpreter comes into the room; the room's tiles show them arrive.
        setStatus("counsellor.roomAccepted", { language }, "ok");
        finished.add(next.id);
        request = null;
        sessionStorage.removeItem(REQUEST_KEY);
        showRequesting(false);
      } else if (next.call_id) joinCall(next.call_id);
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
    final.state === "expired"
      ? final.end_reason === "max_wait" && nobodyOnline(final.language)
        ? "counsellor.expiredNobody"
        : "counsellor.expired"
      : final.state === "cancelled"
        ? "counsellor.cancelled"
        : "counsellor.failed";
  notify(noticeArea, () => t(key), final.state === "cancelled" ? "" : "bad");
  reset();
}

function reset() {
  if (request) finished.add(request.id);
  request = null;
  notAccepted = false;
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
  // In a room the list shows only while the counsellor picks the interpreter's language.
  chooser.hidden = on || (consultation.active && !pickingForRoom);
  watchFigures();
  if (on) $("#cancel").focus();
  else if (!callView.active && !chooser.hidden) search.focus();
}

async function cancelRequest() {
  if (!request) {
    if (callView.active) return;
    if (starting) {
      starting.cancelled = true;
      notify(noticeArea, () => t("counsellor.cancelled"));
    }
    reset();
    return;
  }
  const shown = request;
  try {
    const answer = await api("DELETE", `/api/requests/${encodeURIComponent(shown.id)}`);
    onRequest(
      answer?.request ?? { ...shown, state: "cancelled", updated_at: new Date(socket.serverNow()).toISOString() },
    );
  } catch (err) {
    // Too late: an interpreter took it meanwhile, and the call is on its way.
    if (err.status !== 409) notify(noticeArea, () => errorText(err), "bad");
  }
}

$("#cancel").addEventListener("click", cancelRequest);
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && !askView.hidden) {
    closeAsk();
    return;
  }
  // Esc stops a search (not a call: hanging up takes a deliberate click).
  const searching = starting || (request && WAITING.has(request.state));
  if (event.key === "Escape" && searching && !callView.active) {
    event.preventDefault();
    cancelRequest();
  }
});

socket.on("request.updated", (msg) => onRequest(msg.request));

// ---- The call -----------------------------------------------------------------------

/** Keep the newest state of a call; false when `call` is older than what we know. */
function remember(call) {
  return rememberCall(calls, call);
}

async function joinCall(callId) {
  if (callView.active || startingCall === callId || calls.get(callId)?.state === "ended") return;
  startingCall = callId;
  actions.hidden = true;
  watchFigures();
  const language = languageName(request?.language ?? calls.get(callId)?.language ?? "");
  setStatus("counsellor.connecting", { language });
  try {
    if (!calls.has(callId)) remember((await api("GET", `/api/calls/${encodeURIComponent(callId)}`)).call);
    const call = calls.get(callId);
    if (call.state === "ended") {
      reset();
      return;
    }
    if (!stream) stream = await openMedia({ audioOnly: Boolean(call.audio_only) });
    const view = callView.start(call, stream, { since: requestedAt });
    // News that came while the view was starting (connected, or even ended) applies now.
    callView.update(calls.get(callId));
    await view;
    onCall(calls.get(callId) ?? call);
  } catch (err) {
    // A call that ended while it was being joined has been reported by its "ended" event.
    if (calls.get(callId)?.state !== "ended") {
      notify(noticeArea, () => joinErrorText(err), "bad");
    }
  } finally {
    if (startingCall === callId) startingCall = null;
  }
}

function onCall(call) {
  // An interpreter's segment of a consultation room is shown by the room, not as a call.
  if (call.room_id || !remember(call)) return;
  const known = calls.get(call.id);
  if (callView.active && callView.call.id === call.id) {
    callView.update(known);
    if (known.state === "connected")
      setStatus("counsellor.connected", { language: languageName(known.language) }, "ok");
    return;
  }
  // A live call of ours that the page does not show yet: the server is the truth (a
  // reload, another tab's request, or news that overtook the request's own).
  const ours = known.counsellor?.id === me.id;
  if (ours && known.state !== "ended" && (!request || request.id === known.request_id)) {
    request ??= {
      id: known.request_id,
      language: known.language,
      state: "accepted",
      call_id: known.id,
      updated_at: known.created_at,
      created_at: known.created_at,
    };
    joinCall(known.id);
  }
}

socket.on("call.updated", (msg) => onCall(msg.call));

callView.addEventListener("ended", (e) => {
  const call = e.detail;
  stream = null;
  reset();
  notify(noticeArea, () => endedMessage(call)[0], endedMessage(call)[1]);
  if (retry) {
    const { tag, audioOnly } = retry;
    retry = null;
    requestInterpreter(tag, audioOnly);
  }
});

// "Neu anfordern" on a call that did not connect: end it, then ask again.
callView.addEventListener("retry", () => {
  const call = callView.call;
  if (!call) return;
  retry = { tag: call.language, audioOnly: Boolean(call.audio_only) };
  callView.hangup();
});

window.addEventListener("beforeunload", (event) => {
  // Leaving mid-call (closing the tab, a reload, a link) asks first.
  if (callView.active) event.preventDefault();
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

setInterval(() => {
  if (request && WAITING.has(request.state)) renderStatus();
}, 1000);

renderStatus();
watchFigures();
await loadLanguages();
search.focus();
