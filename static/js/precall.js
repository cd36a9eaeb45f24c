// The pre-call echo test, kept in one module so that its wire format can change in one place.
// Assumed messages (see README): client -> {type: "precall.offer", sdp, ref};
// server -> {type: "precall.answer", sdp, ref}, later {type: "precall.report", rtt_ms,
// packet_loss, relay}. The server's aiortc peer does not trickle, so neither do we: the
// offer goes out once ICE gathering is complete (or after a short wait).
import { api, readStats } from "./protocol.js";

const GATHER_WAIT_MS = 3000;
const REPORT_WAIT_MS = 8000;

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState === "complete") resolve();
    };
    pc.addEventListener("icegatheringstatechange", done);
    // With an unreachable STUN server Chromium never completes: go with what we have.
    setTimeout(resolve, GATHER_WAIT_MS);
  });
}

/**
 * Send `stream` to the server's echo peer; resolve with {echo: MediaStream, report}.
 * report: {rtt_ms, packet_loss (0..1), relay} from the server, completed from our getStats.
 * Rejects with ApiError code "unknown_type" when the server has no echo test.
 */
export async function runEcho(socket, stream, { onEcho } = {}) {
  let iceServers = [];
  try {
    iceServers = (await api("GET", "/api/ice-servers")).ice_servers ?? [];
  } catch {
    /* no TURN: direct paths only */
  }
  const pc = new RTCPeerConnection({ iceServers });
  for (const track of stream.getTracks()) pc.addTrack(track, stream);
  pc.ontrack = ({ streams, track }) => onEcho?.(streams[0] ?? new MediaStream([track]));
  const reportArrived = new Promise((resolve) => {
    const off = socket.on("precall.report", (msg) => {
      off();
      resolve(msg);
    });
    setTimeout(() => {
      off();
      resolve(null);
    }, REPORT_WAIT_MS);
  });
  try {
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const answer = await socket.request({ type: "precall.offer", sdp: pc.localDescription.sdp }, 15000);
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    const [serverReport, ours] = await Promise.all([reportArrived, connectedStats(pc)]);
    return {
      report: {
        connected: ours.connected,
        rtt_ms: serverReport?.rtt_ms ?? ours.rttMs,
        packet_loss: serverReport?.packet_loss ?? lossRatio(ours),
        relay: serverReport?.relay ?? ours.relay,
        frames: ours.framesDecoded,
      },
    };
  } finally {
    setTimeout(() => pc.close(), 500);
  }
}

function lossRatio(stats) {
  const total = stats.packetsLost + stats.packetsReceived;
  return total ? stats.packetsLost / total : 0;
}

/** Wait until the connection is up and a few frames came back, then read the stats. */
async function connectedStats(pc) {
  const deadline = Date.now() + REPORT_WAIT_MS;
  let stats = await readStats(pc);
  while (Date.now() < deadline) {
    if (pc.connectionState === "failed") break;
    stats = await readStats(pc);
    if (pc.connectionState === "connected" && stats.framesDecoded > 10) break;
    await new Promise((r) => setTimeout(r, 300));
  }
  return { ...stats, connected: pc.connectionState === "connected" };
}
