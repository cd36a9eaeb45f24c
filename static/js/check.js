// The pre-call check page: camera, microphone and network, said in plain words.
import { $, fill, h } from "./dom.js";
import { formatNumber, onLocaleChange, t } from "./i18n.js";
import { HOME } from "./api.js";
import { mediaErrorKey, openMedia } from "./peer.js";
import { listenToMicrophone, runEcho } from "./precall.js";
import { startPage } from "./shell.js";

const { me } = await startPage();
const verdicts = new Map(); // kind -> {key, params, tone}
let stream = null;
let stopListening = () => {};
let stopEcho = null;
let statusKey = null;
let run = 0; // which start() is current: a check stopped while measuring drops its echo

setUpBackLink();

/** "Back" leads to the page the user came from (one of ours), else to their own page. */
function setUpBackLink() {
  const back = $("#back");
  back.href = HOME[me.role] ?? "/";
  if (!document.referrer) return;
  const from = new URL(document.referrer);
  if (from.origin === location.origin && from.pathname !== location.pathname) back.href = from.pathname + from.search;
}

function verdict(kind, key, params = {}, tone = "ok") {
  verdicts.set(kind, { key, params, tone });
  render();
}

function status(key) {
  statusKey = key;
  render();
}

function render() {
  fill(
    $("#verdicts"),
    [...verdicts].map(([kind, v]) => h("li", { dataset: { kind, tone: v.tone } }, t(v.key, v.params))),
  );
  $("#status").textContent = statusKey ? t(statusKey) : "";
}

async function start() {
  stop();
  const mine = ++run;
  $("#start").disabled = true;
  $("#stop").disabled = false;
  verdicts.clear();
  status("check.net.running");
  try {
    stream = await openMedia();
  } catch (err) {
    const reason = t(mediaErrorKey(err));
    verdict("camera", "check.camera.bad", { reason }, "bad");
    verdict("microphone", "check.mic.bad", { reason }, "bad");
    stop();
    return;
  }
  $("#preview").srcObject = stream;
  const video = stream.getVideoTracks()[0];
  if (video?.readyState === "live") verdict("camera", "check.camera.ok");
  else verdict("camera", "check.camera.bad", { reason: t("media.missing") }, "bad");
  const heard = listen(stream);
  const echoing = await network(mine);
  if (mine !== run) return;
  verdict(...((await heard) ? ["microphone", "check.mic.ok"] : ["microphone", "check.mic.quiet", {}, "warn"]));
  if (stream && echoing) status("check.echoing");
  else stop();
}

/** End the check: the echo, the camera and the level meter. */
function stop({ leaving = false } = {}) {
  run += 1;
  const echo = stopEcho;
  stopEcho = null;
  echo?.({ leaving });
  stopListening();
  stopListening = () => {};
  for (const track of stream?.getTracks() ?? []) track.stop();
  stream = null;
  $("#preview").srcObject = null;
  $("#echo").srcObject = null;
  $("#level").value = 0;
  $("#start").disabled = false;
  $("#stop").disabled = true;
  if (statusKey) status("check.done");
}

/** Show the microphone level; resolve true once a sound above the noise floor was heard. */
function listen(media) {
  stopListening();
  const listening = listenToMicrophone(media, (level) => ($("#level").value = level));
  stopListening = listening.stop;
  return listening.heard;
}

/** Measure the path through the server's echo; true while the echo goes on playing. */
async function network(mine) {
  verdict("network", "check.net.running", {}, "warn");
  try {
    const { report, stop: endEcho } = await runEcho(stream, {
      onEcho: (echo) => ($("#echo").srcObject = echo),
      onEnd: () => stopEcho && stop(),
    });
    if (mine !== run) {
      endEcho();
      return false;
    }
    stopEcho = endEcho;
    const params = {
      rtt: report.rtt_ms ?? "?",
      loss: formatNumber((report.packet_loss ?? 0) * 100, { maximumFractionDigits: 1 }),
    };
    if (!report.connected) verdict("network", "check.net.bad", {}, "bad");
    else if ((report.rtt_ms ?? 0) > 400 || (report.packet_loss ?? 0) > 0.05)
      verdict("network", "check.net.poor", params, "warn");
    else verdict("network", report.relay ? "check.net.relay" : "check.net.direct", params, "ok");
    return report.connected;
  } catch (err) {
    verdict(
      "network",
      err.code === "unavailable" ? "check.net.unavailable" : "check.net.bad",
      {},
      err.code === "unavailable" ? "warn" : "bad",
    );
    return false;
  }
}

$("#start").addEventListener("click", start);
$("#stop").addEventListener("click", () => stop());
// Enabled only now: a click before the page was ready would have done nothing.
$("#start").disabled = false;
addEventListener("pagehide", () => stop({ leaving: true }));
onLocaleChange(render);
// Disabled in the page until here: a click before the handlers exist would do nothing.
$("#start").disabled = false;
