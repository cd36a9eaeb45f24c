// The screen of a consultation room, alike for counsellor, guest and interpreter: one tile
// per participant (video, name, role, who is speaking), microphone and camera toggles, and
// the way out (hang up for the counsellor, leave for the others).
import { fill, h } from "./dom.js";
import { languageName, t, translate } from "./i18n.js";
import { MediaView } from "./mediaview.js";
import { RoomMesh } from "./mesh.js";

const STATS_EVERY_MS = 500;
const ROLE_ORDER = { counsellor: 0, guest: 1, interpreter: 2 };

export class RoomView extends MediaView {
  /** container: an empty <section>; socket: the page's Socket; role: this side's role.
   * Events: "leave" (the way-out button; the page decides what it means), "joined",
   * "change" (who is in the room, or their presence, changed). */
  constructor(container, socket, { role, extraControls = [], line = true } = {}) {
    super(container, socket, role);
    this.mesh = null;
    this.roomId = null;
    this.tiles = new Map(); // participant id -> {box, video, name, state}
    this.participants = new Map();
    this.timer = null;
    this.build(extraControls);
    // The counsellor's page says who is in the room in its own status line.
    this.line.hidden = !line;
  }

  build(extraControls) {
    this.grid = h("div", { class: "room-grid" });
    this.line = h("p", { class: "room-line", role: "status", "aria-live": "polite" });
    this.muteButton = h("button", { type: "button", class: "toggle", onclick: () => this.toggle("audio") });
    this.cameraButton = h("button", { type: "button", class: "toggle", onclick: () => this.toggle("video") });
    this.leaveButton = h("button", {
      type: "button",
      class: "danger hangup",
      onclick: () => this.dispatchEvent(new CustomEvent("leave")),
    });
    fill(
      this.container,
      h("h2", { class: "visually-hidden", "data-i18n": "room.region" }, t("room.region")),
      this.line,
      this.grid,
      h("div", { class: "room-controls" }, this.muteButton, this.cameraButton, ...extraControls, this.leaveButton),
    );
  }

  /** Show the room and enter it with `stream`; `since` (performance.now()) is when the
   * person asked for it, to measure the time to the first frame of each other side. */
  async start(roomId, stream, { since = null } = {}) {
    this.roomId = roomId;
    this.stream = stream;
    this.since = since;
    this.muted = false;
    this.cameraOff = false;
    this.container.hidden = false;
    this.container.dataset.roomId = roomId;
    delete this.container.dataset.firstFrameMs;
    document.body.classList.add("in-room");
    translate(this.container);
    // Our participant id is our user id (a guest's `g…` id): known before room.joined,
    // so that news of the room that comes first does not show us as someone else.
    this.selfId = this.socket.hello?.user?.id ?? null;
    this.mesh = new RoomMesh(this.socket, roomId, stream);
    this.mesh.addEventListener("joined", (e) => {
      for (const p of e.detail.participants ?? []) this.participants.set(p.id, p);
      this.selfId = e.detail.self_id;
      this.render();
      this.dispatchEvent(new CustomEvent("joined", { detail: e.detail }));
    });
    this.mesh.addEventListener("participant", ({ detail }) => {
      if (detail.left) this.participants.delete(detail.participant.id);
      else this.participants.set(detail.participant.id, detail.participant);
      this.render();
      this.dispatchEvent(new CustomEvent("change"));
    });
    this.mesh.addEventListener("remote", ({ detail }) => {
      const tile = this.tile(detail.id);
      if (tile.video.srcObject !== detail.stream) tile.video.srcObject = detail.stream;
      this.watchFirstFrame(tile);
    });
    this.mesh.addEventListener("media", ({ detail }) => {
      const tile = this.tiles.get(detail.id);
      if (tile) tile.box.dataset.media = detail.state;
      this.render();
    });
    this.timer = setInterval(() => this.sampleStats(), STATS_EVERY_MS);
    this.render();
    this.leaveButton.focus();
    await this.mesh.join();
  }

  /** Replace what we know of the room (room.updated): who belongs in it now. */
  update(room) {
    if (!this.mesh || room.id !== this.roomId) return;
    this.participants = new Map(room.participants.map((p) => [p.id, p]));
    this.render();
    this.dispatchEvent(new CustomEvent("change"));
  }

  tile(id) {
    let tile = this.tiles.get(id);
    if (tile) return tile;
    const self = id === this.selfId;
    const video = h("video", { autoplay: true, playsinline: true, muted: self });
    video.muted = self;
    const name = h("span", { class: "tile-name" });
    const speaking = h("span", { class: "tile-speaking" });
    const box = h(
      "figure",
      { class: "tile", dataset: { participantId: id, framesDecoded: "0", self: String(self) } },
      video,
      h("figcaption", {}, name, speaking),
    );
    tile = { box, video, name, speaking };
    this.tiles.set(id, tile);
    return tile;
  }

  watchFirstFrame(tile) {
    if (tile.watching || !tile.video.requestVideoFrameCallback) return;
    tile.watching = true;
    tile.video.requestVideoFrameCallback(() => {
      // Tests and the benchmark read these: when the first frame of this participant came.
      tile.box.dataset.firstFrameAt = String(Date.now());
      if (this.since != null) tile.box.dataset.firstFrameMs = String(Math.round(performance.now() - this.since));
    });
  }

  /** The participant's name and role in words, e.g. "Olena · Dolmetscher*in · Ukrainisch". */
  label(p) {
    const name =
      p.display_name ||
      (p.number != null ? t("call.interpreterNumber", { number: p.number }) : t("room.role." + p.role));
    const parts = [name, t("room.role." + p.role)];
    if (p.language && p.role !== "counsellor") parts.push(languageName(p.language));
    if (p.id === this.selfId) parts.push(t("room.you"));
    return [...new Set(parts)].join(" · ");
  }

  render() {
    if (!this.mesh) return;
    const shown = [...this.participants.values()].sort(
      (a, b) => (a.id === this.selfId) - (b.id === this.selfId) || ROLE_ORDER[a.role] - ROLE_ORDER[b.role],
    );
    for (const p of shown) {
      const tile = this.tile(p.id);
      const self = p.id === this.selfId;
      tile.box.dataset.self = String(self);
      tile.video.muted = self;
      if (self && tile.video.srcObject !== this.stream) tile.video.srcObject = this.stream;
      tile.box.dataset.role = p.role;
      tile.box.dataset.present = String(Boolean(p.present));
      tile.name.textContent = this.label(p);
      tile.video.setAttribute("aria-label", this.label(p));
      tile.box.classList.toggle("absent", !p.present);
    }
    for (const [id, tile] of this.tiles) {
      if (!this.participants.has(id) && !this.mesh.links.has(id)) {
        tile.video.srcObject = null;
        this.tiles.delete(id);
      }
    }
    this.grid.replaceChildren(...shown.map((p) => this.tile(p.id).box));
    this.grid.dataset.count = String(shown.length);
    const others = shown.filter((p) => p.id !== this.selfId);
    const waiting = others.filter((p) => !p.present).length;
    this.line.textContent = others.length
      ? t(waiting ? "room.someoneAway" : "room.together", { n: others.length + 1 })
      : t("room.alone");
    this.muteButton.textContent = t(this.muted ? "call.micOff" : "call.micOn");
    this.muteButton.setAttribute("aria-pressed", String(Boolean(this.muted)));
    const hasVideo = (this.stream?.getVideoTracks().length ?? 0) > 0;
    this.cameraButton.hidden = !hasVideo;
    this.cameraButton.textContent = t(this.cameraOff ? "call.camOff" : "call.camOn");
    this.cameraButton.setAttribute("aria-pressed", String(Boolean(this.cameraOff)));
    this.leaveButton.textContent = t(this.role === "counsellor" ? "room.hangup" : "room.leave");
  }

  async sampleStats() {
    if (!this.mesh) return;
    const figures = await this.mesh.figures();
    for (const [id, tile] of this.tiles) {
      const f = figures.get(id);
      if (!f) continue;
      // Tests and support staff read these: proof that each participant's media arrives.
      if (f.framesDecoded != null) tile.box.dataset.framesDecoded = String(f.framesDecoded);
      if (f.audioSamples != null) tile.box.dataset.audioSamples = String(f.audioSamples);
      tile.box.dataset.speaking = String(f.speaking);
      tile.speaking.textContent = f.speaking ? t("room.speaking") : "";
    }
  }

  /** Tear down media and hide the room. */
  finish() {
    clearInterval(this.timer);
    this.mesh?.close();
    this.mesh = null;
    this.stopStream();
    for (const tile of this.tiles.values()) tile.video.srcObject = null;
    this.tiles.clear();
    this.participants.clear();
    this.grid.replaceChildren();
    this.container.hidden = true;
    this.roomId = null;
    document.body.classList.remove("in-room");
  }

  get active() {
    return this.mesh != null;
  }
}
