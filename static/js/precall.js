// The pre-call echo test, kept in one module so that its wire format can change in one place.
// The server's echo peer (aiortc) is reached over HTTP: POST /api/precall {type: "offer", sdp}
// -> 201 {id, type: "answer", sdp, expires_in_s}; GET /api/precall/{id} -> the path it
// measured {state, rtt_ms, loss_percent, relay, ...}; DELETE /api/precall/{id} ends it.
// aiortc does not trickle, so neither do we: the offer goes out once ICE gathering is
// complete (or after a short wait).
import { api, ApiError } from "./api.js";
import { readStats } from "./peer.js";

const GATHER_WAIT_MS = 3000;
const CONNECT_WAIT_MS = 8000;

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && resolve());
    // With an unreachable STUN server Chromium never completes: go with what we have.
    setTimeout(resolve, GATHER_WAIT_MS);
  });
}

/**
 * Send `stream` to the server's echo peer. Resolves, once the path is measured, with
 * {report: {connected, rtt_ms, packet_loss (0..1), relay}, stop}. The echo keeps playing
 * after the measurement (a user wants to see themselves as the other side will) until
 * `stop()` is called, the server's time for it runs out or the connection drops; then
 * `onEnd` is called once. Rejects with ApiError code "unavailable" when the server has
 * no echo test.
 */
export async function runEcho(stream, { onEcho, onEnd } = {}) {
  let iceServers = [];
  try {
    iceServers = (await api("GET", "/api/ice-servers")).ice_servers ?? [];
  } catch {
    /* no TURN: direct paths only */
  }
  const pc = new RTCPeerConnection({ iceServers });
  for (const track of stream.getTracks()) pc.addTrack(track, stream);
  pc.ontrack = ({ streams, track }) => onEcho?.(streams[0] ?? new MediaStream([track]));
  let echoId = null;
  let expiry = null;
  let ended = false;
  const stop = ({ leaving = false } = {}) => {
    if (ended) return;
    ended = true;
    clearTimeout(expiry);
    pc.close();
    if (echoId) {
      const path = `/api/precall/${encodeURIComponent(echoId)}`;
      // While the page unloads only a keepalive request still leaves: it frees the
      // server's echo peer (about a quarter of a core) at once instead of at its expiry.
      if (leaving) fetch(path, { method: "DELETE", keepalive: true, credentials: "same-origin" }).catch(() => {});
      else api("DELETE", path).catch(() => {});
    }
    onEnd?.();
  };
  try {
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    let answer;
    try {
      answer = await api("POST", "/api/precall", { type: "offer", sdp: pc.localDescription.sdp });
    } catch (err) {
      if (err.status === 404 || err.status === 405) throw new ApiError(err.status, "unavailable", err.message);
      throw err;
    }
    echoId = answer.id;
    expiry = setTimeout(stop, Math.max(1, answer.expires_in_s ?? 60) * 1000);
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    const ours = await connectedStats(pc);
    let server = null;
    try {
      server = await api("GET", `/api/precall/${encodeURIComponent(echoId)}`);
    } catch {
      /* the echo may have timed out; our own figures will do */
    }
    if (!ours.connected) stop();
    else
      pc.addEventListener("connectionstatechange", () => ["failed", "closed"].includes(pc.connectionState) && stop());
    return {
      report: {
        connected: ours.connected,
        rtt_ms: server?.rtt_ms != null ? Math.round(server.rtt_ms) : ours.rttMs,
        packet_loss: server?.loss_percent != null ? server.loss_percent / 100 : lossRatio(ours),
        relay: server?.relay ?? ours.relay,
      },
      stop,
    };
  } catch (err) {
    stop();
    throw err;
  }
}

function lossRatio(stats) {
  const total = stats.packetsLost + stats.packetsReceived;
  return total ? stats.packetsLost / total : 0;
}

/** Wait until the connection is up and a few frames came back, then read the stats. */
async function connectedStats(pc) {
  const deadline = Date.now() + CONNECT_WAIT_MS;
  let stats = await readStats(pc);
  while (Date.now() < deadline) {
    if (pc.connectionState === "failed") break;
    stats = await readStats(pc);
    if (pc.connectionState === "connected" && stats.framesDecoded > 10) break;
    await new Promise((r) => setTimeout(r, 300));
  }
  return { ...stats, connected: pc.connectionState === "connected" };
}

/**
 * Listen to `stream`'s microphone: `onLevel(0..1)` ten times a second, and `heard`, a
 * promise that is true once a sound above the noise floor came (false after 5 s of quiet).
 * Returns {heard, stop}.
 */
export function listenToMicrophone(stream, onLevel) {
  const context = new AudioContext();
  context.resume();
  const analyser = context.createAnalyser();
  analyser.fftSize = 512;
  context.createMediaStreamSource(stream).connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  let timer = null;
  const heard = new Promise((resolve) => {
    const began = Date.now();
    let loud = false;
    timer = setInterval(() => {
      analyser.getFloatTimeDomainData(samples);
      const rms = Math.sqrt(samples.reduce((acc, x) => acc + x * x, 0) / samples.length);
      onLevel(Math.min(1, rms * 4));
      if (rms > 0.01) loud = true;
      if (loud || Date.now() - began > 5000) resolve(loud);
    }, 100);
  });
  const stop = () => {
    clearInterval(timer);
    context.close().catch(() => {});
  };
  return { heard, stop };
}
