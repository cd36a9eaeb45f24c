// A consultation room's media: one RTCPeerConnection per other participant (a full mesh),
// each with perfect negotiation as a two-party call has (peer.js), addressed with
// `signal {room_id, to}` and reported with `room.media` (docs/protocol.md).
import { joinAgainWhileUnavailable, NegotiatedPeer, readStats } from "./peer.js";

/** Audio level (0..1) above which a participant counts as speaking. */
const SPEAKING_LEVEL = 0.02;

/** The connection to one other participant of the room. */
class RoomLink extends NegotiatedPeer {
  constructor(mesh, peerId, polite) {
    super(mesh.localStream, { polite, iceServers: mesh.iceServers });
    this.mesh = mesh;
    this.peerId = peerId;
  }

  sendSignal(data) {
    // A signal lost while the socket is down is recovered by the ICE restart on reconnect.
    this.mesh.socket.send({ type: "signal", room_id: this.mesh.roomId, to: this.peerId, data });
  }

  reportMedia(state) {
    this.lastReported = state;
    this.mesh.socket.send({ type: "room.media", room_id: this.mesh.roomId, peer: this.peerId, state });
  }
}

/**
 * This side of a room: joins it with room.join (again after every reconnect), keeps one
 * RoomLink per present participant, politeness as room.joined's `polite_to` says.
 * Events: "joined" {detail: room.joined}, "participant" {detail: {participant, left}},
 * "remote" {detail: {id, stream}}, "media" {detail: {id, state}}.
 */
export class RoomMesh extends EventTarget {
  constructor(socket, roomId, localStream) {
    super();
    this.socket = socket;
    this.roomId = roomId;
    this.localStream = localStream;
    this.selfId = null;
    this.iceServers = [];
    this.politeTo = new Set();
    this.participants = new Map(); // id -> participant, as the server last told
    this.links = new Map(); // id -> RoomLink
    this.away = new Set(); // ids seen absent since: their return renews the link
    this.closed = false;
    // Signals wait until room.joined has told our id, our politeness and the ICE servers.
    this.ready = new Promise((resolve) => (this.joinedOnce = resolve));
    this.offs = [
      socket.on("signal", (msg) => msg.room_id === this.roomId && this.onSignal(msg)),
      socket.on("room.participant", (msg) => msg.room_id === this.roomId && this.onParticipant(msg)),
      socket.on("hello", () => this.rejoin()),
    ];
  }

  async join() {
    const msg = { type: "room.join", room_id: this.roomId };
    const joined = await joinAgainWhileUnavailable(this.socket, msg, () => this.closed);
    this.selfId = joined.self_id;
    this.iceServers = joined.ice_servers ?? [];
    this.politeTo = new Set(joined.polite_to ?? []);
    this.participants = new Map((joined.participants ?? []).map((p) => [p.id, p]));
    this.joinedOnce();
    for (const p of this.participants.values()) if (p.present && p.id !== this.selfId) this.link(p.id);
    this.dispatchEvent(new CustomEvent("joined", { detail: joined }));
    return joined;
  }

  /** After the socket reconnects: re-attach to the room and renew every ICE path. */
  async rejoin() {
    if (this.closed || !this.selfId) return;
    try {
      await this.join();
      for (const link of this.links.values()) link.restartIce();
    } catch {
      /* the room may have ended meanwhile; room.updated says so */
    }
  }

  /** The link to participant `id`, made when first needed. */
  link(id) {
    let link = this.links.get(id);
    if (link) return link;
    link = new RoomLink(this, id, this.politeTo.has(id));
    link.addEventListener("remote", (e) => this.emit("remote", { id, stream: e.detail }));
    link.addEventListener("media", (e) => this.emit("media", { id, state: e.detail }));
    this.links.set(id, link);
    // Tracks added here make "negotiationneeded": the impolite side offers.
    link.createPeerConnection();
    return link;
  }

  drop(id) {
    this.links.get(id)?.close();
    this.links.delete(id);
    this.emit("media", { id, state: "closed" });
  }

  async onSignal(msg) {
    await this.ready;
    if (this.closed || msg.from === this.selfId) return;
    this.link(msg.from).queueSignal(msg.data);
  }

  onParticipant({ participant, polite, left }) {
    const id = participant.id;
    if (id === this.selfId) return;
    this.participants.set(id, participant);
    if (polite) this.politeTo.add(id);
    else this.politeTo.delete(id);
    if (left) {
      this.participants.delete(id);
      this.away.delete(id);
      this.drop(id);
    } else if (!participant.present) {
      // Maybe only its socket: the media path may well go on meanwhile.
      this.away.add(id);
    } else if (this.away.delete(id) && !this.politeTo.has(id)) {
      // It came back, perhaps as a new page with new connections: the impolite side
      // starts the pair afresh (a page that kept its connection answers the new offer
      // by starting afresh too, as a two-party call does).
      this.drop(id);
      this.link(id);
    } else {
      this.link(id);
    }
    this.emit("participant", { participant, left: Boolean(left) });
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** Per participant id: decoded video frames, audio, the path, and whether they speak
   * (audio level from getStats()); under this side's own id its microphone's level. */
  async figures() {
    const out = new Map();
    await Promise.all(
      [...this.links].map(async ([id, link]) => {
        if (!link.pc) return;
        const stats = await readStats(link.pc);
        const level = await audioLevel(link.pc, "inbound-rtp");
        out.set(id, { ...stats, level, speaking: level > SPEAKING_LEVEL, state: link.pc.connectionState });
      }),
    );
    const anyLink = [...this.links.values()].find((link) => link.pc);
    const own = anyLink ? await audioLevel(anyLink.pc, "media-source") : 0;
    const micOn = this.localStream?.getAudioTracks().some((t) => t.enabled) ?? false;
    if (this.selfId) out.set(this.selfId, { level: own, speaking: micOn && own > SPEAKING_LEVEL });
    return out;
  }

  /** Leave the room's media (the page says room.leave or hangs up itself). */
  close() {
    this.closed = true;
    for (const off of this.offs) off();
    for (const link of this.links.values()) link.close();
    this.links.clear();
  }
}

/** Per connection, each audio stat's energy and duration as last read (see audioLevel). */
const energyRead = new WeakMap();

/** The loudest audio level of a connection's stats of `type` (inbound-rtp: what we hear
 * from the other side; media-source: our own microphone). Where the stats count audio
 * energy, the level over the whole time since the last reading counts too: the momentary
 * level alone, read twice a second, misses a short word (or a test's short beep) between
 * two readings. */
async function audioLevel(pc, type) {
  let level = 0;
  const read = energyRead.get(pc) ?? new Map();
  energyRead.set(pc, read);
  try {
    (await pc.getStats()).forEach((s) => {
      if (s.type !== type || s.kind !== "audio") return;
      level = Math.max(level, s.audioLevel ?? 0);
      if (s.totalAudioEnergy == null || s.totalSamplesDuration == null) return;
      const before = read.get(s.id);
      read.set(s.id, { energy: s.totalAudioEnergy, duration: s.totalSamplesDuration });
      const span = before ? s.totalSamplesDuration - before.duration : 0;
      // The energy is the sum of level² × seconds: its root mean over the span is a level.
      if (span > 0) level = Math.max(level, Math.sqrt(Math.max(0, s.totalAudioEnergy - before.energy) / span));
    });
  } catch {
    /* a closed connection has no stats */
  }
  return level;
}
