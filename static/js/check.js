// The pre-call check page: camera, microphone and network, said in plain words.
import { $, fill, h } from "./dom.js";
import { formatNumber, onLocaleChange, t } from "./i18n.js";
import { mediaErrorKey, openMedia } from "./protocol.js";
import { runEcho } from "./precall.js";
import { startPage } from "./shell.js";

await startPage();
const verdicts = new Map(); // kind -> {key, params, tone}
let stream = null;
let meterTimer = null;

function verdict(kind, key, params = {}, tone = "ok") {
  verdicts.set(kind, { key, params, tone });
  render();
}

function render() {
  fill(
    $("#verdicts"),
    [...verdicts].map(([kind, v]) => h("li", { dataset: { kind, tone: v.tone } }, t(v.key, v.params))),
  );
}

async function start() {
  const button = $("#start");
  button.disabled = true;
  verdicts.clear();
  render();
  $("#status").textContent = t("check.net.running");
  for (const track of stream?.getTracks() ?? []) track.stop();
  try {
    stream = await openMedia();
  } catch (err) {
    const reason = t(mediaErrorKey(err));
    verdict("camera", "check.camera.bad", { reason }, "bad");
    verdict("microphone", "check.mic.bad", { reason }, "bad");
    $("#status").textContent = t("check.done");
    button.disabled = false;
    return;
  }
  $("#preview").srcObject = stream;
  const video = stream.getVideoTracks()[0];
  if (video?.readyState === "live") verdict("camera", "check.camera.ok");
  else verdict("camera", "check.camera.bad", { reason: t("media.missing") }, "bad");
  const heard = listen(stream);
  await network();
  verdict(...((await heard) ? ["microphone", "check.mic.ok"] : ["microphone", "check.mic.quiet", {}, "warn"]));
  $("#status").textContent = t("check.done");
  button.disabled = false;
}

/** Show the microphone level; resolve true once a sound above the noise floor was heard. */
function listen(media) {
  const context = new AudioContext();
  context.resume();
  const analyser = context.createAnalyser();
  analyser.fftSize = 512;
  context.createMediaStreamSource(media).connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  let heard = false;
  clearInterval(meterTimer);
  return new Promise((resolve) => {
    const began = Date.now();
    meterTimer = setInterval(() => {
      analyser.getFloatTimeDomainData(samples);
      const rms = Math.sqrt(samples.reduce((acc, x) => acc + x * x, 0) / samples.length);
      $("#level").value = Math.min(1, rms * 4);
      if (rms > 0.01) heard = true;
      if (heard || Date.now() - began > 5000) resolve(heard);
    }, 100);
  });
}

async function network() {
  verdict("network", "check.net.running", {}, "warn");
  try {
    const { report } = await runEcho(stream, { onEcho: (echo) => ($("#echo").srcObject = echo) });
    const params = { rtt: report.rtt_ms ?? "?", loss: formatNumber((report.packet_loss ?? 0) * 100, { maximumFractionDigits: 1 }) };
    if (!report.connected) verdict("network", "check.net.bad", {}, "bad");
    else if ((report.rtt_ms ?? 0) > 400 || (report.packet_loss ?? 0) > 0.05) verdict("network", "check.net.poor", params, "warn");
    else verdict("network", report.relay ? "check.net.relay" : "check.net.direct", params, "ok");
  } catch (err) {
    verdict("network", err.code === "unavailable" ? "check.net.unavailable" : "check.net.bad", {}, err.code === "unavailable" ? "warn" : "bad");
  }
}

$("#start").addEventListener("click", start);
onLocaleChange(render);
