// The interpreter's page: status switch, incoming offers that ring, the call, wrap-up.
import { InterpreterBookings } from "./bookings.js";
import { CallView, rememberCall } from "./callview.js";
import { $, fill, h } from "./dom.js";
import { languageName, onLocaleChange, plural, t } from "./i18n.js";
import { api } from "./api.js";
import { joinErrorText, mediaErrorKey, openMedia } from "./peer.js";
import { RoomView } from "./roomview.js";
import { askNotificationPermission, notifyIfHidden, ring, unlockAudio, watchSound } from "./ring.js";
import { errorText, notify, startPage } from "./shell.js";
import { defaultSocketUrl } from "./socket.js";

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
let presenceChanges = 0; // counts status news and changes: a reply older than one is stale
let startingCall = null; // the id of the call being joined
const calls = new Map(); // the newest state the server told of each call, by id
const organizations = new Map(); // request id -> the organisation's name, from its offer

// As an interpreter: a colleague who also interprets is a counsellor everywhere else.
const { me, socket } = await startPage({ socketUrl: `${defaultSocketUrl()}?as=interpreter` });
const bookings = new InterpreterBookings(socket);
bookings.load();
const callView = new CallView($("#call"), socket, { role: "interpreter" });
const handoverButton = h("button", { type: "button", class: "secondary", id: "handover-open" });
const roomView = new RoomView($("#room"), socket, { role: "interpreter", extraControls: [handoverButton] });
let roomCall = null; // our segment of the consultation room on screen
const inCall = () => callView.active || roomView.active;
document.addEventListener("click", unlockAudio, { once: true });
$("#enable-sound").addEventListener("click", () => {
  unlockAudio();
  askNotificationPermission();
});
// The prompt stays until the browser lets the page ring (a click anywhere also does it).
watchSound((allowed) => ($("#sound").hidden = allowed));

// ---- Status ---------------------------------------------------------------------------

function renderStatus() {
  const current = profile?.status ?? "offline";
  for (const input of document.querySelectorAll('input[name="presence"]')) {
    input.checked = input.value === current;
    input.disabled = !profileLoaded || current === "busy" || inCall();
  }
  let text = t("status." + current);
  if (current === "available") text += " – " + t("interpreter.waiting");
  if (current === "away" || current === "offline") text += " – " + t("interpreter.awayText");
  if (current === "busy") text += " – " + t("interpreter.inCall");
  if (current === "wrap_up") text += " – " + t("interpreter.wrapupShort");
  if (offer) {
    status.textContent = t("interpreter.notify", { language: languageName(offer.language) });
  } else if (inCall()) {
    const counsellor = (roomCall ?? callView.call).counsellor;
    status.textContent = t("call.with", { name: counsellor?.display_name ?? "" });
    status.dataset.tone = "ok";
  } else {
    status.textContent = text;
    status.dataset.tone = current === "available" ? "ok" : "warn";
  }
  status.dataset.presence = current;
  wrapup.hidden = current !== "wrap_up" || inCall();
  home.hidden = inCall();
  handoverButton.textContent = t("room.handover");
  fill(
    $("#my-languages"),
    (profile?.languages ?? []).map((lang) => h("li", { lang: lang.tag }, languageName(lang.tag))),
  );
  if (profile && !profile.languages?.length) notify(noticeArea, () => t("interpreter.noProfile"), "bad");
}

async function loadProfile() {
  const changes = presenceChanges;
  try {
    const loaded = (await api("GET", "/api/interpreters/me")).interpreter;
    // A status told or set while this read was under way is newer than the one it brings.
    profile = changes === presenceChanges || !profile ? loaded : { ...loaded, status: profile.status };
  } catch (err) {
    notify(noticeArea, () => (err.status === 404 ? t("interpreter.noProfile") : errorText(err)), "bad");
  }
  profileLoaded = true;
  renderStatus();
  await loadToday();
}

async function setPresence(value) {
  const changes = ++presenceChanges;
  if (value === "available") askNotificationPermission();
  try {
    const answer = await api("PUT", "/api/interpreters/me/status", { status: value });
    // presence.updated may have come first (our own change, or a newer one): keep it.
    if (changes === presenceChanges) profile = answer?.interpreter ?? { ...profile, status: value };
    notify(noticeArea, "");
  } catch (err) {
    notify(noticeArea, () => (err.code === "in_call" ? t("interpreter.inCall") : errorText(err)), "bad");
  }
  renderStatus();
}

for (const input of document.querySelectorAll('input[name="presence"]')) {
  input.addEventListener("change", () => input.checked && setPresence(input.value));
}
$("#ready").addEventListener("click", () => setPresence("available"));
socket.on("presence.updated", (msg) => {
  if (!msg.status) return;
  presenceChanges += 1;
  profile = { ...profile, status: msg.status };
  if (msg.reason === "missed_offers") notify(noticeArea, () => t("interpreter.setAway"), "bad");
  renderStatus();
});

// ---- Offers ---------------------------------------------------------------------------

function offerText(next) {
  const text = t("interpreter.offerText", {
    language: languageName(next.language),
    organization: orgName(next.organization),
  });
  return next.preferences?.audio_only ? `${text} · ${t("interpreter.audioOnly")}` : text;
}

function showOffer(next) {
  if (inCall() || startingCall || offer?.id === next.id) return;
  offer = next;
  organizations.set(next.request_id, orgName(next.organization));
  const language = languageName(next.language);
  $("#offer-text").textContent = offerText(next);
  offerBox.hidden = false;
  offerBox.dataset.audioOnly = String(Boolean(next.preferences?.audio_only));
  offerBox.dataset.offerId = next.id;
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
  if (left <= 0 && !accepting) clearOffer("interpreter.expiredOffer");
}

function clearOffer(messageKey) {
  clearInterval(countdown);
  stopRing();
  stopRing = () => {};
  closeNote();
  offer = null;
  offerBox.hidden = true;
  if (messageKey) notify(noticeArea, () => t(messageKey));
  renderStatus();
}

socket.on("offer", (msg) => showOffer(msg.offer));
socket.on("offer.revoked", (msg) => {
  if (offer?.id !== msg.offer_id || accepting) return;
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
    stream = await openMedia({ audioOnly: Boolean(current.preferences?.audio_only) });
  } catch (err) {
    accepting = false;
    notify(noticeArea, () => t(mediaErrorKey(err)), "bad");
    return;
  }
  try {
    const { call } = await api("POST", `/api/offers/${encodeURIComponent(current.id)}/accept`);
    accepting = false;
    clearOffer();
    remember(call);
    await joinCall(call.id, stream);
  } catch (err) {
    for (const track of stream.getTracks()) track.stop();
    const key = {
      offer_taken: "interpreter.taken",
      offer_expired: "interpreter.expiredOffer",
      offer_revoked: "interpreter.revoked",
    }[err.code];
    accepting = false;
    clearOffer();
    notify(noticeArea, () => (key ? t(key) : errorText(err)), "bad");
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
    if (err.status !== 409) notify(noticeArea, () => errorText(err), "bad");
  }
});

// ---- The call -------------------------------------------------------------------------

/** Keep the newest state of a call; false when `call` is older than what we know. */
function remember(call) {
  return rememberCall(calls, call);
}

async function joinCall(callId, stream = null) {
  if (inCall() || startingCall === callId || calls.get(callId)?.state === "ended") {
    for (const track of stream?.getTracks() ?? []) track.stop();
    return;
  }
  startingCall = callId;
  try {
    if (!calls.has(callId)) remember((await api("GET", `/api/calls/${encodeURIComponent(callId)}`)).call);
    const call = calls.get(callId);
    if (call.state === "ended") {
      for (const track of stream?.getTracks() ?? []) track.stop();
      sessionStorage.removeItem(CALL_KEY);
      return;
    }
    stream ??= await openMedia({ audioOnly: Boolean(call.audio_only) });
    sessionStorage.setItem(CALL_KEY, call.id);
    if (offer) clearOffer();
    if (call.room_id) {
      await joinRoom(call, stream);
      return;
    }
    const view = callView.start(call, stream, { organization: organizations.get(call.request_id) ?? "" });
    renderStatus();
    // News that came while the view was starting (connected, or even ended) applies now.
    callView.update(calls.get(callId));
    await view;
  } catch (err) {
    if (calls.get(callId)?.state !== "ended") {
      notify(noticeArea, () => joinErrorText(err), "bad");
    }
  } finally {
    if (startingCall === callId) startingCall = null;
  }
}

socket.on("call.updated", (msg) => {
  if (!remember(msg.call)) return;
  const known = calls.get(msg.call.id);
  if (callView.active && known.id === callView.call.id) {
    callView.update(known);
    return;
  }
  if (roomCall?.id === known.id) {
    roomCall = known;
    if (known.state === "ended") leftRoom(known);
    return;
  }
  // A live call of ours not on screen (a reload, a reconnect, or news ahead of the accept's
  // reply, which then joins it itself): the server is the truth.
  if (known.interpreter?.id === me.id && known.state !== "ended" && !accepting) joinCall(known.id);
});

callView.addEventListener("ended", (e) => {
  const call = e.detail;
  sessionStorage.removeItem(CALL_KEY);
  const key = { lost: "call.lost", failed: "call.failed", shutdown: "call.shutdown" }[call.end_reason] ?? "call.ended";
  notify(noticeArea, () => t(key), key === "call.ended" ? "ok" : "bad");
  renderStatus();
  loadProfile();
  if (!wrapup.hidden) $("#ready").focus();
});

window.addEventListener("beforeunload", (event) => {
  if (inCall()) event.preventDefault();
});

// After a reconnect or reload: pick the call up again if it still runs (the server also
// sends call.updated for it; whichever comes first joins).
socket.on("hello", async () => {
  const id = sessionStorage.getItem(CALL_KEY);
  if (!id || inCall()) return;
  try {
    remember((await api("GET", `/api/calls/${encodeURIComponent(id)}`)).call);
    await joinCall(id);
  } catch {
    sessionStorage.removeItem(CALL_KEY);
  }
});

// ---- A consultation room (counsellor, client, and us) ----------------------------------

async function joinRoom(call, stream) {
  roomCall = call;
  $("#handover").hidden = true;
  renderStatus();
  await roomView.start(call.room_id, stream);
}

/** Our segment ended: after a hand-over, a leave, or the counsellor's end of the room. */
function leftRoom(call) {
  roomView.finish();
  roomCall = null;
  $("#handover").hidden = true;
  sessionStorage.removeItem(CALL_KEY);
  const key =
    call.end_reason === "handover" ? "room.handedOver" : call.end_reason === "lost" ? "call.lost" : "call.ended";
  notify(noticeArea, () => t(key), key === "call.lost" ? "bad" : "ok");
  renderStatus();
  loadProfile();
}

socket.on("room.updated", (msg) => {
  if (msg.room.id !== roomCall?.room_id) return;
  if (msg.room.state === "ended") leftRoom({ ...roomCall, end_reason: msg.room.end_reason });
  else roomView.update(msg.room);
});

roomView.addEventListener("leave", () => {
  if (roomCall) socket.send({ type: "room.leave", room_id: roomCall.room_id });
});

handoverButton.addEventListener("click", () => {
  const form = $("#handover");
  form.hidden = !form.hidden;
  if (form.hidden) return;
  // Another variant of the call's language: those of our own languages that share its base.
  const base = roomCall.language.split("-")[0];
  const variants = new Set([roomCall.language, ...(profile?.languages ?? []).map((l) => l.tag)]);
  fill(
    $("#handover-language"),
    [...variants]
      .filter((tag) => tag.split("-")[0] === base)
      .map((tag) => h("option", { value: tag }, languageName(tag))),
  );
  $("#handover-language").value = roomCall.language;
  $("#handover-gender").focus();
});

$("#handover-send").addEventListener("click", async () => {
  if (!roomCall) return;
  const body = { language: $("#handover-language").value || null };
  const gender = $("#handover-gender").value;
  if (gender) body.gender = gender;
  try {
    await api("POST", `/api/calls/${encodeURIComponent(roomCall.id)}/handover`, body);
    $("#handover").hidden = true;
    notify(noticeArea, () => t("room.handoverAsked"), "ok");
  } catch (err) {
    notify(noticeArea, () => errorText(err), "bad");
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
  $("#today").textContent = t("interpreter.todayText", {
    calls: plural("interpreter.calls", calls),
    minutes: plural("interpreter.minutes", minutes),
  });
}

onLocaleChange(() => {
  renderStatus();
  renderToday();
  if (offer) $("#offer-text").textContent = offerText(offer);
});

await loadProfile();
