// A call's media for the pages: camera and microphone, the RTCPeerConnection with perfect
// negotiation over the socket (docs/calls.md), and the connection's figures.
import { t } from "./i18n.js";
import { errorText } from "./shell.js";

/** Why getUserMedia failed, as a message key. */
export function mediaErrorKey(err) {
  switch (err?.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "media.denied";
    case "NotFoundError":
    case "OverconstrainedError":
      return "media.missing";
    case "NotReadableError":
    case "AbortError":
      return "media.busy";
    default:
      return "media.failed";
  }
}

/** What to say when joining a call or room failed: why the camera or microphone did not
 * open, or else what the server answered. */
export function joinErrorText(err) {
  return err instanceof DOMException ? t(mediaErrorKey(err)) : errorText(err);
}

/** Camera and microphone (or microphone only). */
export async function openMedia({ audioOnly = false } = {}) {
  return navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    video: audioOnly ? false : { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 24 } },
  });
}

/** A join (`call.join`, `room.join`), asked again while the server answers `unavailable`
 * (its database is out of reach for a moment; the call itself goes on), until `gaveUp()`. */
export async function joinAgainWhileUnavailable(socket, msg, gaveUp) {
  for (let delay = 500; ; delay = Math.min(delay * 2, 4000)) {
    try {
      return await socket.request(msg);
    } catch (err) {
      if (gaveUp() || err.code !== "unavailable") throw err;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

/** A short random name for one RTCPeerConnection, carried in the signals it sends. */
function newSession() {
  return Math.random().toString(36).slice(2, 14) || "0";
}

/** How long a media path may stay "disconnected" before this side restarts ICE. */
const ICE_RESTART_AFTER_MS = 3000;

/**
 * One RTCPeerConnection with W3C perfect negotiation: signals are handled in order, the
 * impolite side wins collisions, ICE restarts when the path fails or stays "disconnected".
 * Signals carry `session` (this connection) and `to_session` (the other side's, once known):
 * a page that was reloaded gets the signals held for its predecessor, and drops them.
 * Subclasses say where signals go (`sendSignal`) and where media states are told
 * (`reportMedia`). Events: "remote" {detail: MediaStream}, "media" {detail: connectionState}.
 */
export class NegotiatedPeer extends EventTarget {
  constructor(localStream, { polite = false, iceServers = [] } = {}) {
    super();
    this.localStream = localStream;
    this.pc = null;
    this.polite = polite;
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.settingAnswer = false;
    this.closed = false;
    this.iceServers = iceServers;
    this.lastReported = null;
    this.session = null; // our RTCPeerConnection's name in the signals
    this.remoteSession = null; // the other side's, from its last description we took
    // Signals are handled one at a time, in the order they came: a candidate must not
    // overtake the description it belongs to, and a description must not change
    // ignoreOffer under a candidate still being added.
    this.signals = Promise.resolve();
  }

  createPeerConnection() {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    const session = newSession();
    this.pc = pc;
    this.session = session;
    for (const track of this.localStream?.getTracks() ?? []) pc.addTrack(track, this.localStream);
    pc.ontrack = ({ track, streams }) => {
      const stream = streams[0] ?? new MediaStream([track]);
      this.dispatchEvent(new CustomEvent("remote", { detail: stream }));
    };
    pc.onnegotiationneeded = async () => {
      // The first offer is the impolite side's (held by the server until we join). If the
      // polite side offered too, its setLocalDescription could still be running when that
      // offer arrives; Chromium then sends an offer that was already rolled back and gathers
      // no candidates for the answer, and the call stays at "new" on both sides.
      if (this.polite && !pc.remoteDescription) return;
      try {
        this.makingOffer = true;
        await pc.setLocalDescription();
        this.sendSignal(this.tagged({ description: pc.localDescription.toJSON() }, session));
      } catch (err) {
        console.warn("negotiation failed", err);
      } finally {
        this.makingOffer = false;
      }
    };
    pc.onicecandidate = ({ candidate }) =>
      this.sendSignal(this.tagged({ candidate: candidate ? candidate.toJSON() : null }, session));
    pc.oniceconnectionstatechange = () => {
      clearTimeout(this.restartTimer);
      if (pc.iceConnectionState === "failed") pc.restartIce();
      // A path that stays "disconnected" for a few seconds rarely comes back by itself
      // (the other side moved network, or an aiortc peer that started over): renew it.
      if (pc.iceConnectionState === "disconnected") {
        this.restartTimer = setTimeout(() => {
          if (this.pc === pc && !this.closed && pc.iceConnectionState === "disconnected") pc.restartIce();
        }, ICE_RESTART_AFTER_MS);
      }
    };
    pc.onconnectionstatechange = () => {
      const state = pc.connectionState;
      this.dispatchEvent(new CustomEvent("media", { detail: state }));
      if (["connected", "disconnected", "failed"].includes(state)) this.reportMedia(state);
    };
  }

  /** `data` with the session tags of our connection `session`. */
  tagged(data, session) {
    return this.remoteSession ? { ...data, session, to_session: this.remoteSession } : { ...data, session };
  }

  /** Whether a signal was meant for a connection this side no longer has (it came to a
   * reloaded page, or to a connection started afresh). An offer is always taken: it
   * starts a negotiation of its own, and what follows it belongs to the same session. */
  isStale(data) {
    if (!data.to_session || data.to_session === this.session) return false;
    if (data.description?.type === "offer") return false;
    return !data.session || data.session !== this.remoteSession;
  }

  queueSignal(data) {
    this.signals = this.signals.then(() => this.onSignal(data));
  }

  async onSignal(data) {
    if (this.closed) return;
    if (!this.pc) this.createPeerConnection();
    if (this.isStale(data)) return;
    try {
      if (data.description) await this.onDescription(data.description, data.session ?? null);
      else if ("candidate" in data) await this.onCandidate(data.candidate);
    } catch (err) {
      console.warn("signal failed", err);
    }
  }

  async onDescription(description, session) {
    // An offer from a connection other than the one we took the last description from: the
    // other side started afresh (a reloaded page), so we do too, whatever our own state.
    if (description.type === "offer" && session && this.remoteSession && session !== this.remoteSession) {
      this.rebuild();
    }
    const pc = this.pc;
    // Perfect negotiation: an offer that collides with our own is dropped by the impolite
    // side and wins on the polite side (which rolls back its own offer implicitly).
    const readyForOffer = !this.makingOffer && (pc.signalingState === "stable" || this.settingAnswer);
    const collision = description.type === "offer" && !readyForOffer;
    this.ignoreOffer = !this.polite && collision;
    if (this.ignoreOffer) return;
    this.settingAnswer = description.type === "answer";
    try {
      await pc.setRemoteDescription(description);
    } catch (err) {
      if (description.type !== "offer") throw err;
      // The other side started afresh (e.g. reloaded its page): its new session does not
      // fit our old one, so we start a new connection too and answer that.
      this.rebuild();
      await this.pc.setRemoteDescription(description);
    } finally {
      this.settingAnswer = false;
    }
    if (session) this.remoteSession = session;
    if (description.type === "offer") {
      await this.pc.setLocalDescription();
      this.sendSignal(this.tagged({ description: this.pc.localDescription.toJSON() }, this.session));
    }
  }

  async onCandidate(candidate) {
    try {
      await this.pc.addIceCandidate(candidate ?? undefined);
    } catch (err) {
      if (!this.ignoreOffer) throw err;
    }
  }

  rebuild() {
    this.pc?.close();
    this.pc = null;
    this.makingOffer = false;
    this.createPeerConnection();
  }

  /** Renew the ICE path (after the socket or the other side came back). */
  restartIce() {
    if (!this.pc || this.closed) return;
    // The media path may well have survived the socket; renewing it anyway is cheap and
    // covers a changed network (new address after Wi-Fi to cable).
    this.pc.restartIce();
    // Re-report so that a server that restarted learns the media state again.
    if (this.pc.connectionState === "connected") this.reportMedia("connected");
  }

  close() {
    this.closed = true;
    clearTimeout(this.restartTimer);
    this.pc?.close();
    this.pc = null;
  }
}

/**
 * One side of a call: joins it on the socket, runs perfect negotiation (W3C) with the role
 * the server gives in call.joined (interpreter polite, counsellor impolite), reports the
 * media state with call.media, and restarts ICE after the socket or the path comes back.
 * Events: "remote" {detail: MediaStream}, "media" {detail: connectionState}, "peer" {detail: bool}.
 */
export class CallPeer extends NegotiatedPeer {
  constructor(socket, callId, localStream) {
    super(localStream);
    this.socket = socket;
    this.callId = callId;
    // Only once joined: an early signal must not build the connection before call.joined
    // brought our role and the ICE servers.
    this.signals = new Promise((resolve) => (this.joinedOnce = resolve));
    this.offs = [
      socket.on("signal", (msg) => msg.call_id === this.callId && this.queueSignal(msg.data)),
      socket.on("peer", (msg) => msg.call_id === this.callId && this.onPeer(msg.present)),
      socket.on("hello", () => this.rejoin()),
    ];
  }

  async join() {
    const msg = { type: "call.join", call_id: this.callId };
    const joined = await joinAgainWhileUnavailable(this.socket, msg, () => this.closed);
    this.polite = Boolean(joined.polite);
    this.iceServers = joined.ice_servers ?? [];
    if (!this.pc) this.createPeerConnection();
    this.joinedOnce();
    this.dispatchEvent(new CustomEvent("peer", { detail: Boolean(joined.peer_present) }));
    return joined;
  }

  /** After the socket reconnects: re-attach to the call and renew the ICE path. */
  async rejoin() {
    if (this.closed || !this.pc) return;
    try {
      await this.join();
      this.restartIce();
    } catch {
      /* the call may have ended meanwhile; call.updated says so */
    }
  }

  reportMedia(state) {
    this.lastReported = state;
    this.socket.send({ type: "call.media", call_id: this.callId, state });
  }

  sendSignal(data) {
    // A signal lost while the socket is down is recovered by the ICE restart on reconnect.
    this.socket.send({ type: "signal", call_id: this.callId, data });
  }

  onPeer(present) {
    this.dispatchEvent(new CustomEvent("peer", { detail: present }));
    // The other side came back: renew our path in case theirs changed (new network).
    if (present && this.pc && this.pc.connectionState !== "connected" && !this.polite) this.restartIce();
  }

  close() {
    for (const off of this.offs) off();
    super.close();
  }
}

/** Totals of the inbound video and audio and the selected candidate pair of a connection. */
export async function readStats(pc) {
  const out = {
    framesDecoded: 0,
    framesPerSecond: 0,
    audioBytes: 0,
    audioSamples: 0,
    packetsLost: 0,
    packetsReceived: 0,
    rttMs: null,
    relay: false,
  };
  if (!pc) return out;
  const report = await pc.getStats();
  let pairId = null;
  report.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") {
      out.framesDecoded += s.framesDecoded ?? 0;
      out.framesPerSecond = s.framesPerSecond ?? out.framesPerSecond;
    }
    if (s.type === "inbound-rtp") {
      out.packetsLost += s.packetsLost ?? 0;
      out.packetsReceived += s.packetsReceived ?? 0;
    }
    if (s.type === "inbound-rtp" && s.kind === "audio") {
      out.audioBytes += s.bytesReceived ?? 0;
      // Samples really decoded: concealment fills gaps with made-up audio.
      out.audioSamples += (s.totalSamplesReceived ?? 0) - (s.concealedSamples ?? 0);
    }
    if (s.type === "transport" && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
  });
  if (!pairId)
    report.forEach((s) => s.type === "candidate-pair" && s.nominated && s.state === "succeeded" && (pairId = s.id));
  const pair = pairId && report.get(pairId);
  if (pair) {
    if (pair.currentRoundTripTime != null) out.rttMs = Math.round(pair.currentRoundTripTime * 1000);
    const local = report.get(pair.localCandidateId);
    const remote = report.get(pair.remoteCandidateId);
    out.relay = local?.candidateType === "relay" || remote?.candidateType === "relay";
  }
  return out;
}
