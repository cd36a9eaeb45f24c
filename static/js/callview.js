// The call view both counsellor and interpreter see: large remote video, small self view,
// mute, camera off, hang up, a running timer, and the connection quality.
import { fill, h } from "./dom.js";
import { formatClock, onLocaleChange, t, translate } from "./i18n.js";
import { api, CallPeer, readStats } from "./protocol.js";

export class CallView extends EventTarget {
  /** container: an empty <section>; socket: the page's Socket. Events: "ended". */
  constructor(container, socket) {
    super();
    this.container = container;
    this.socket = socket;
    this.peer = null;
    this.stream = null;
    this.call = null;
    this.connectedAtMs = null;
    this.timer = null;
    this.statsTimer = null;
    this.build();
    onLocaleChange(() => this.renderLine());
  }

  build() {
    this.remote = h("video", { class: "remote", autoplay: true, playsinline: true, "aria-label": t("call.remote"), "data-i18n-label": "call.remote" });
    this.self = h("video", { class: "self", autoplay: true, playsinline: true, muted: true, "aria-label": t("call.self"), "data-i18n-label": "call.self" });
    this.self.muted = true;
    this.clock = h("span", { class: "timer", "aria-label": t("call.duration"), "data-i18n-label": "call.duration" }, "00:00");
    this.line = h("span", { class: "muted" });
    this.muteButton = h("button", { type: "button", class: "secondary", "aria-pressed": "false", "data-i18n": "call.mute", onclick: () => this.toggle("audio", this.muteButton) }, t("call.mute"));
    this.cameraButton = h("button", { type: "button", class: "secondary", "aria-pressed": "false", "data-i18n": "call.cameraOff", onclick: () => this.toggle("video", this.cameraButton) }, t("call.cameraOff"));
    this.hangupButton = h("button", { type: "button", class: "danger", "data-i18n": "call.hangup", onclick: () => this.hangup() }, t("call.hangup"));
    fill(
      this.container,
      h("h2", { class: "visually-hidden", "data-i18n": "call.region" }, t("call.region")),
      h("div", { class: "stage" }, this.remote, this.self),
      h("div", { class: "controls" }, this.clock, this.muteButton, this.cameraButton, this.hangupButton, this.line),
    );
    this.container.setAttribute("aria-label", t("call.region"));
  }

  /** Show the view and join the call with the given local stream. */
  async start(call, stream) {
    this.call = call;
    this.stream = stream;
    this.container.hidden = false;
    this.container.dataset.callId = call.id;
    this.container.dataset.framesDecoded = "0";
    translate(this.container);
    this.self.srcObject = stream;
    this.cameraButton.hidden = stream.getVideoTracks().length === 0;
    this.mediaState = "new";
    this.peerPresent = true;
    this.renderLine();
    this.peer = new CallPeer(this.socket, call.id, stream);
    this.peer.addEventListener("remote", (e) => {
      if (this.remote.srcObject !== e.detail) this.remote.srcObject = e.detail;
    });
    this.peer.addEventListener("media", (e) => {
      this.mediaState = e.detail;
      if (e.detail === "connected" && this.connectedAtMs == null) this.connectedAtMs = this.socket.serverNow();
      this.renderLine();
    });
    this.peer.addEventListener("peer", (e) => {
      this.peerPresent = e.detail;
      this.renderLine();
    });
    this.timer = setInterval(() => this.tick(), 1000);
    this.statsTimer = setInterval(() => this.sampleStats(), 1000);
    await this.peer.join();
  }

  /** A call.updated for this call. */
  update(call) {
    this.call = { ...this.call, ...call };
    if (call.connected_at) this.connectedAtMs = Date.parse(call.connected_at);
    if (call.state === "ended") this.finish(call);
    else this.renderLine();
  }

  renderLine() {
    if (!this.call) return;
    let key = "call.connecting";
    if (this.mediaState === "connected") key = "call.connected";
    else if (this.mediaState === "disconnected" || this.socket.state !== "open") key = "call.reconnecting";
    else if (this.mediaState === "failed") key = "call.failed";
    const parts = [t(key)];
    if (!this.peerPresent) parts.push(t("call.peerAway"));
    if (this.relay != null && this.mediaState === "connected") parts.push(t(this.relay ? "call.relay" : "call.direct"));
    this.line.textContent = parts.join(" · ");
    this.container.dataset.media = this.mediaState;
  }

  tick() {
    if (this.connectedAtMs != null) this.clock.textContent = formatClock((this.socket.serverNow() - this.connectedAtMs) / 1000);
  }

  async sampleStats() {
    if (!this.peer?.pc) return;
    const stats = await readStats(this.peer.pc);
    // Tests and support staff read these: proof that the other side's video arrives.
    this.container.dataset.framesDecoded = String(stats.framesDecoded);
    this.container.dataset.relay = String(stats.relay);
    if (this.relay !== stats.relay) {
      this.relay = stats.relay;
      this.renderLine();
    }
  }

  toggle(kind, button) {
    const off = button.getAttribute("aria-pressed") !== "true";
    button.setAttribute("aria-pressed", String(off));
    this.peer?.setTrackEnabled(kind, !off);
  }

  async hangup() {
    if (!this.call) return;
    this.hangupButton.disabled = true;
    try {
      const { call } = await api("POST", `/api/calls/${encodeURIComponent(this.call.id)}/hangup`);
      this.update(call);
    } catch {
      // Over HTTP it failed (e.g. the network); the socket may still carry it.
      this.socket.send({ type: "call.hangup", call_id: this.call.id });
    } finally {
      this.hangupButton.disabled = false;
    }
  }

  /** Tear down media and hide the view; fires "ended" with the final call. */
  finish(call) {
    if (!this.peer) return;
    clearInterval(this.timer);
    clearInterval(this.statsTimer);
    this.peer.close();
    this.peer = null;
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.remote.srcObject = null;
    this.self.srcObject = null;
    this.container.hidden = true;
    this.connectedAtMs = null;
    for (const b of [this.muteButton, this.cameraButton]) b.setAttribute("aria-pressed", "false");
    this.clock.textContent = "00:00";
    const ended = this.call;
    this.call = null;
    this.dispatchEvent(new CustomEvent("ended", { detail: { ...ended, ...call } }));
  }

  get active() {
    return this.call != null;
  }
}
