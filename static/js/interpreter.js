// The interpreter's page: status switch, incoming offers that ring, the call, wrap-up.
import { CallView } from "./callview.js";
import { $, fill, h } from "./dom.js";
import { languageName, onLocaleChange, plural, t } from "./i18n.js";
import { api, mediaErrorKey, openMedia } from "./protocol.js";
import { askNotificationPermission, notifyIfHidden, ring, unlockAudio } from "./ring.js";
import { errorText, notify, startPage } from "./shell.js";

const status = $("#status");
const noticeArea = $("#notice");
const offerBox = $("#offer");
const wrapup = $("#wrapup");
const home = $("#home");
const CALL_KEY = "tolk.call";

let profile = null; // {id, display_name, languages, status}
let offer = null; // the offer on screen
let stopRing = () => {};
let closeNote = () => {};
let countdown = null;
let accepting = false;
let today = null; // {calls, talk_s} from the server
let profileLoaded = false; // the switch stays disabled until we know the current status
let presenceChanges = 0; // a profile read that started before a status change is stale

const { socket } = await startPage();
const callView = new CallView($("#call"), socket);
document.addEventListener("click", unlockAudio, { once: true });

// ---- Status ---------------------------------------------------------------------------

function renderStatus() {
  const current = profile?.status ?? "offline";
  for (const input of document.querySelectorAll('input[name="presence"]')) {
    input.checked = input.value === current;
    input.disabled = !profileLoaded || current === "busy";
  }
  let text = t("status." + current);
  if (current === "available") text += " – " + t("interpreter.waiting");
  if (current === "away" || current === "offline") text += " – " + t("interpreter.awayText");
  if (current === "busy") text += " – " + t("interpreter.inCall");
  if (!offer && !callView.active) {
    status.textContent = text;
    status.dataset.tone = current === "available" ? "ok" : "warn";
  }
  status.dataset.presence = current;
  wrapup.hidden = current !== "wrap_up" || callView.active;
  fill(
    $("#my-languages"),
    (profile?.languages ?? []).map((lang) => h("li", { lang: lang.tag }, languageName(lang.tag))),
  );
  if (profile && !profile.languages?.length) notify(noticeArea, t("interpreter.noProfile"), "bad");
}

async function loadProfile() {
  const changes = presenceChanges;
  try {
    const loaded = (await api("GET", "/api/interpreters/me")).interpreter;
    // A status set while this read was under way is newer than the one it brings.
    profile = changes === presenceChanges || !profile ? loaded : { ...loaded, status: profile.status };
  } catch (err) {
    notify(noticeArea, err.status === 404 ? t("interpreter.noProfile") : errorText(err), "bad");
  }
  profileLoaded = true;
  renderStatus();
  await loadToday();
}

async function setPresence(value) {
  presenceChanges += 1;
  if (value === "available") askNotificationPermission();
  try {
    const answer = await api("PUT", "/api/interpreters/me/status", { status: value });
    profile = answer?.interpreter ?? { ...profile, status: value };
    notify(noticeArea, "");
  } catch (err) {
    notify(noticeArea, err.code === "in_call" ? t("interpreter.inCall") : errorText(err), "bad");
  }
  renderStatus();
}

for (const input of document.querySelectorAll('input[name="presence"]')) {
  input.addEventListener("change", () => input.checked && setPresence(input.value));
}
$("#ready").addEventListener("click", () => setPresence("available"));
socket.on("presence.updated", (msg) => {
  if (msg.status && profile) {
    profile.status = msg.status;
    renderStatus();
  }
});

// ---- Offers ---------------------------------------------------------------------------

function showOffer(next) {
  if (callView.active || offer?.id === next.id) return;
  offer = next;
  const language = languageName(next.language);
  $("#offer-text").textContent = t("interpreter.offerText", { language, organization: orgName(next.organization) });
  offerBox.hidden = false;
  status.textContent = t("interpreter.notify", { language });
  stopRing();
  stopRing = ring();
  closeNote = notifyIfHidden(t("interpreter.notify", { language }), orgName(next.organization), next.id);
  tickOffer();
  clearInterval(countdown);
  countdown = setInterval(tickOffer, 250);
  $("#accept").focus();
}

function orgName(organization) {
  return typeof organization === "string" ? organization : (organization?.name ?? "");
}

function secondsLeft() {
  return Math.max(0, Math.ceil((Date.parse(offer.expires_at) - socket.serverNow()) / 1000));
}

function tickOffer() {
  if (!offer) return;
  const left = secondsLeft();
  $("#offer-remaining").textContent = t("interpreter.remaining", { s: left });
  if (left <= 0) clearOffer("interpreter.expiredOffer");
}

function clearOffer(messageKey) {
  clearInterval(countdown);
  stopRing();
  stopRing = () => {};
  closeNote();
  offer = null;
  offerBox.hidden = true;
  if (messageKey) notify(noticeArea, t(messageKey));
  renderStatus();
}

socket.on("offer", (msg) => showOffer(msg.offer));
socket.on("offer.revoked", (msg) => {
  if (offer?.id !== msg.offer_id) return;
  const key = { taken: "interpreter.taken", expired: "interpreter.expiredOffer" }[msg.reason] ?? "interpreter.revoked";
  clearOffer(key);
});

$("#accept").addEventListener("click", async () => {
  if (!offer || accepting) return;
  accepting = true;
  const current = offer;
  stopRing();
  let stream;
  try {
    // Camera first: accepting without working media would leave the counsellor waiting.
    stream = await openMedia();
  } catch (err) {
    accepting = false;
    notify(noticeArea, t(mediaErrorKey(err)), "bad");
    return;
  }
  try {
    const { call } = await api("POST", `/api/offers/${encodeURIComponent(current.id)}/accept`);
    clearOffer();
    await startCall(call, stream);
  } catch (err) {
    for (const track of stream.getTracks()) track.stop();
    const key = { offer_taken: "interpreter.taken", offer_expired: "interpreter.expiredOffer", offer_revoked: "interpreter.revoked" }[err.code];
    clearOffer();
    notify(noticeArea, key ? t(key) : errorText(err), "bad");
  } finally {
    accepting = false;
  }
});

$("#decline").addEventListener("click", async () => {
  if (!offer) return;
  const id = offer.id;
  clearOffer();
  try {
    await api("POST", `/api/offers/${encodeURIComponent(id)}/decline`);
  } catch (err) {
    if (err.status !== 409) notify(noticeArea, errorText(err), "bad");
  }
});

// ---- The call -------------------------------------------------------------------------

async function startCall(call, stream) {
  sessionStorage.setItem(CALL_KEY, call.id);
  home.hidden = true;
  wrapup.hidden = true;
  profile = { ...profile, status: "busy" };
  status.textContent = t("call.with", { name: call.counsellor?.display_name ?? "" });
  status.dataset.tone = "ok";
  await callView.start(call, stream);
  if (call.state !== "connecting") callView.update(call);
}

socket.on("call.updated", (msg) => {
  if (callView.active && msg.call.id === callView.call.id) callView.update(msg.call);
});

callView.addEventListener("ended", (e) => {
  const call = e.detail;
  sessionStorage.removeItem(CALL_KEY);
  home.hidden = false;
  const key = { lost: "call.lost", failed: "call.failed", shutdown: "call.shutdown" }[call.end_reason] ?? "call.ended";
  notify(noticeArea, t(key), key === "call.ended" ? "ok" : "bad");
  profile = { ...profile, status: "wrap_up" };
  renderStatus();
  loadProfile();
  $("#ready").focus();
});

// After a reconnect or reload: pick the call up again if it still runs.
socket.on("hello", async () => {
  const id = sessionStorage.getItem(CALL_KEY);
  if (!id || callView.active) return;
  try {
    const { call } = await api("GET", `/api/calls/${encodeURIComponent(id)}`);
    if (call.state === "ended") sessionStorage.removeItem(CALL_KEY);
    else await startCall(call, await openMedia());
  } catch {
    sessionStorage.removeItem(CALL_KEY);
  }
});

// ---- Today's calls --------------------------------------------------------------------
// Counted by the server (calls connected since local midnight), so every tab and device
// shows the same figures.

async function loadToday() {
  try {
    today = (await api("GET", "/api/interpreters/me/today")).today;
  } catch {
    /* keep what is shown; the next call's end loads it again */
  }
  renderToday();
}

function renderToday() {
  const calls = today?.calls ?? 0;
  const minutes = Math.round((today?.talk_s ?? 0) / 60);
  $("#today").textContent = t("interpreter.todayText", { calls: plural("interpreter.calls", calls), minutes: plural("interpreter.minutes", minutes) });
}

onLocaleChange(() => {
  renderStatus();
  renderToday();
  if (offer) {
    $("#offer-text").textContent = t("interpreter.offerText", { language: languageName(offer.language), organization: orgName(offer.organization) });
  }
});

await loadProfile();
