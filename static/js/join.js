// The guest's page, opened from an invitation link (/join/<token>); no account needed: the
// client picks their language, checks camera and microphone, and joins the consultation.
import { $, fill, h } from "./dom.js";
import { bindLocaleSwitch, languageName, locale, nativeName, onLocaleChange, t, translate } from "./i18n.js";
import { api } from "./api.js";
import { mediaErrorKey, openMedia } from "./peer.js";
import { listenToMicrophone } from "./precall.js";
import { RoomView } from "./roomview.js";
import { Socket } from "./socket.js";
import { errorText, notify } from "./shell.js";
import PHRASES from "../i18n/phrases.js";

// The link this browser has used: opened again (a reload, the tab closed and opened, after
// leaving) it goes back in with the guest's cookie, as long as the room is open.
const ADMITTED_KEY = "tolk.guest.token";
const REFUSED = new Set([
  "invitation_used",
  "invitation_expired",
  "invitation_unknown",
  "room_ended",
  "room_has_guest",
]);

const token = decodeURIComponent(location.pathname.split("/").pop() ?? "");
const noticeArea = $("#notice");
const prepare = $("#prepare");
const joinButton = $("#join");
let guest = null; // the guest as the server admitted them
let stream = null;
let stopListening = () => {};
let socket = null;
let since = null;

translate();
bindLocaleSwitch($("#locale"));
const roomView = new RoomView($("#room"), null, { role: "guest" });

/** The roster's languages, each by its own name (for the holder of the link only), or, if
 * the server cannot say, the languages the page has phrases in. */
async function loadLanguages() {
  try {
    const { languages } = await api("POST", "/api/guest/languages", { token, locale: locale() });
    return languages;
  } catch {
    return Object.keys(PHRASES).map((tag) => ({ tag, name: languageName(tag), autonym: nativeName(tag) }));
  }
}

/** The languages a client may pick, each in its own name (and the page's beside it). */
async function renderLanguages() {
  const select = $("#guest-language");
  const languages = await loadLanguages();
  const chosen = select.value || guest?.language || "";
  languages.sort((a, b) => a.autonym.localeCompare(b.autonym));
  fill(
    select,
    h("option", { value: "" }, t("join.languagePick")),
    languages.map(({ tag, name, autonym }) => {
      const label = autonym.toLocaleLowerCase() === name.toLocaleLowerCase() ? autonym : `${autonym} – ${name}`;
      return h("option", { value: tag, lang: tag }, label);
    }),
  );
  select.value = chosen;
}

function refuse(err) {
  // A link that cannot work any more: say so, and offer nothing that would fail again.
  prepare.hidden = true;
  stopPreview();
  notify(noticeArea, () => errorText(err), "bad");
  document.body.dataset.refused = err.code;
}

async function startPreview() {
  try {
    stream = await openMedia();
  } catch (err) {
    notify(noticeArea, () => t(mediaErrorKey(err)), "bad");
    return;
  }
  $("#preview").srcObject = stream;
  const listening = listenToMicrophone(stream, (level) => ($("#level").value = level));
  stopListening = listening.stop;
  const camera = stream.getVideoTracks()[0]?.readyState === "live";
  const verdicts = [[camera ? "check.camera.ok" : "check.camera.bad", camera ? "ok" : "bad"]];
  fill(
    $("#verdicts"),
    verdicts.map(([key, tone]) => h("li", { dataset: { tone } }, t(key, { reason: "" }))),
  );
  listening.heard.then((heard) => {
    verdicts.push(heard ? ["check.mic.ok", "ok"] : ["check.mic.quiet", "warn"]);
    fill(
      $("#verdicts"),
      verdicts.map(([key, tone]) => h("li", { dataset: { tone } }, t(key, { reason: "" }))),
    );
  });
}

function stopPreview() {
  stopListening();
  stopListening = () => {};
  $("#preview").srcObject = null;
}

async function admit() {
  if (guest) return guest;
  const body = { token, language: $("#guest-language").value || null };
  const name = $("#guest-name").value.trim();
  if (name) body.name = name;
  guest = (await api("POST", "/api/guest/session", body)).guest;
  localStorage.setItem(ADMITTED_KEY, token);
  return guest;
}

/** The socket of the guest's cookie, open (hello received). */
function openSocket() {
  if (socket?.state === "open") return Promise.resolve(socket);
  if (!socket) {
    socket = new Socket();
    roomView.socket = socket;
    socket.on("room.updated", (msg) => onRoom(msg.room));
    socket.addEventListener("loggedout", () => ended());
    const conn = $("#conn");
    const show = () => {
      conn.hidden = false;
      conn.dataset.state = socket.state;
      conn.textContent = t("conn." + socket.state);
    };
    socket.addEventListener("state", show);
    onLocaleChange(show);
    socket.start();
  }
  return new Promise((resolve) => socket.addEventListener("hello", () => resolve(socket), { once: true }));
}

async function join() {
  joinButton.disabled = true;
  since ??= performance.now();
  notify(noticeArea, "");
  try {
    await admit();
  } catch (err) {
    joinButton.disabled = false;
    if (REFUSED.has(err.code)) refuse(err);
    else notify(noticeArea, () => errorText(err), "bad");
    return;
  }
  if (!stream) await startPreview();
  if (!stream) {
    joinButton.disabled = false;
    return;
  }
  stopPreview();
  prepare.hidden = true;
  await openSocket();
  try {
    await roomView.start(guest.room_id, stream, { since });
    stream = null; // the room owns it now, and stops it when it is left
  } catch (err) {
    roomView.finish();
    stream = null;
    if (err.code === "room_ended" || err.code === "forbidden") ended();
    else if (REFUSED.has(err.code)) refuse(err);
    else notify(noticeArea, () => errorText(err), "bad");
  }
}

function onRoom(room) {
  if (room.id !== guest?.room_id) return;
  if (room.state === "ended") ended();
  else roomView.update(room);
}

/** The counsellor ended the consultation: nothing to rejoin. */
function ended() {
  roomView.finish();
  socket?.stop();
  prepare.hidden = true;
  $("#left").hidden = true;
  stopPreview();
  localStorage.removeItem(ADMITTED_KEY);
  notify(noticeArea, () => t("join.ended"), "ok");
  document.body.dataset.refused = "room_ended";
}

// Leaving is not for good: the cookie brings the guest back while the room is open (the
// socket stays, so that the page hears when the room ends and stops offering it).
roomView.addEventListener("leave", async () => {
  try {
    await socket.request({ type: "room.leave", room_id: guest.room_id });
  } catch {
    /* gone already: the grace ends it */
  }
  roomView.finish();
  $("#left").hidden = false;
  $("#left-title").focus();
});
$("#rejoin").addEventListener("click", () => {
  $("#left").hidden = true;
  since = performance.now();
  join();
});
joinButton.addEventListener("click", join);
onLocaleChange(renderLanguages);

await renderLanguages();
if (localStorage.getItem(ADMITTED_KEY) === token) {
  try {
    guest = (await api("GET", "/api/guest/me")).guest;
    $("#guest-language").value = guest.language ?? "";
  } catch {
    localStorage.removeItem(ADMITTED_KEY);
  }
}
prepare.hidden = false;
joinButton.disabled = false;
await startPreview();
