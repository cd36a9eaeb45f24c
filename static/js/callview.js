// The call screen both counsellor and interpreter see: the other side's video filling the
// window, a small self view, and over them who is on the call, the timer, the connection
// quality, microphone and camera toggles and "Auflegen".
import { fill, h } from "./dom.js";
import { formatClock, languageName, t, translate } from "./i18n.js";
import { api } from "./api.js";
import { MediaView } from "./mediaview.js";
import { CallPeer, readStats } from "./peer.js";

/** A call's states in the only order they can happen: a view never moves backwards. */
const CALL_RANK = { connecting: 0, connected: 1, ended: 2 };

/** True when `next` is the same call as `shown` and not older than it. */
export function isNewerCall(next, shown) {
  if (!next || !shown || next.id !== shown.id) return false;
  return (CALL_RANK[next.state] ?? 0) >= (CALL_RANK[shown.state] ?? 0);
}

/** Keep the newest state the server told of a call in `calls` (a Map by call id); false
 * when `call` is older than what is known (news and HTTP replies arrive in any order). */
export function rememberCall(calls, call) {
  const known = calls.get(call.id);
  if (known && !isNewerCall(call, known)) return false;
  calls.set(call.id, known ? { ...known, ...call } : call);
  return true;
}

/** How long a call may take to connect before the view says so and offers a way out. */
export const STALLED_AFTER_MS = 10000;

export class CallView extends MediaView {
  /** container: an empty <section>; socket: the page's Socket; hangupKey: the i18n key of
   * the hang-up button ("Beenden" on a terminal).
   * Events: "ended" {detail: call}, "stalled" (not connected in time), "firstframe". */
  constructor(container, socket, { role = "counsellor", hangupKey = "call.hangup" } = {}) {
    super(container, socket, role);
    this.hangupKey = hangupKey;
    this.peer = null;
    this.call = null;
    this.connectedAtMs = null;
    this.timers = [];
    this.stats = null;
    this.build();
  }

  build() {
    this.remote = h("video", {
      class: "remote",
      autoplay: true,
      playsinline: true,
      "aria-label": t("call.remote"),
      "data-i18n-label": "call.remote",
    });
    this.self = h("video", {
      class: "self",
      autoplay: true,
      playsinline: true,
      muted: true,
      "aria-label": t("call.self"),
      "data-i18n-label": "call.self",
    });
    this.self.muted = true;
    this.remotePlaceholder = h("div", { class: "placeholder remote-placeholder", hidden: true });
    this.selfPlaceholder = h("div", { class: "placeholder self-placeholder", hidden: true });
    this.selfBadge = h("span", { class: "self-badge", hidden: true });
    this.who = h("p", { class: "who-line" });
    this.clock = h(
      "span",
      { class: "timer", role: "timer", "aria-label": t("call.duration"), "data-i18n-label": "call.duration" },
      "00:00",
    );
    this.line = h("span", { class: "line" });
    this.quality = h("span", { class: "quality", hidden: true });
    this.banner = h("div", { class: "call-banner", role: "alert", hidden: true });
    this.retryButton = h("button", {
      type: "button",
      class: "good",
      hidden: true,
      onclick: () => this.dispatchEvent(new CustomEvent("retry")),
    });
    this.bannerText = h("p", {});
    this.banner.append(this.bannerText, this.retryButton);
    this.muteButton = h("button", {
      type: "button",
      class: "toggle",
      "aria-pressed": "false",
      onclick: () => this.toggle("audio"),
    });
    this.cameraButton = h("button", {
      type: "button",
      class: "toggle",
      "aria-pressed": "false",
      onclick: () => this.toggle("video"),
    });
    this.hangupButton = h("button", { type: "button", class: "danger hangup", onclick: () => this.hangup() });
    fill(
      this.container,
      h("h2", { class: "visually-hidden", "data-i18n": "call.region" }, t("call.region")),
      h(
        "div",
        { class: "stage" },
        this.remote,
        this.remotePlaceholder,
        h("div", { class: "self-box" }, this.self, this.selfPlaceholder, this.selfBadge),
        h("div", { class: "call-top" }, this.who, h("p", { class: "meta" }, this.clock, this.line, this.quality)),
        this.banner,
        h("div", { class: "controls" }, this.muteButton, this.cameraButton, this.hangupButton),
      ),
    );
    this.container.setAttribute("aria-label", t("call.region"));
  }

  /** Show the view and join the call with the given local stream; `since` is when the
   * person asked for it (performance.now()), to measure the time to the first frame. */
  async start(call, stream, { since = null, organization = "" } = {}) {
    this.call = call;
    this.organization = organization;
    this.stream = stream;
    this.since = since;
    this.connectedAtMs = call.connected_at ? Date.parse(call.connected_at) : null;
    this.container.hidden = false;
    document.body.classList.add("in-call");
    const data = this.container.dataset;
    data.callId = call.id;
    data.framesDecoded = "0";
    data.audioSamples = "0";
    data.audioOnly = String(Boolean(call.audio_only));
    delete data.setupMs;
    translate(this.container);
    this.self.srcObject = stream;
    this.muted = false;
    this.cameraOff = false;
    this.hasVideo = stream.getVideoTracks().length > 0;
    this.mediaState = "new";
    this.everConnected = false;
    this.stalled = false;
    this.peerPresent = true;
    this.stats = null;
    this.render();
    this.hangupButton.focus();
    this.peer = new CallPeer(this.socket, call.id, stream);
    this.peer.addEventListener("remote", (e) => {
      if (this.remote.srcObject !== e.detail) this.remote.srcObject = e.detail;
      this.watchFirstFrame();
      this.render();
    });
    this.peer.addEventListener("media", (e) => {
      this.mediaState = e.detail;
      if (e.detail === "connected") {
        this.everConnected = true;
        this.stalled = false;
        if (this.connectedAtMs == null) this.connectedAtMs = this.socket.serverNow();
      }
      this.render();
    });
    this.peer.addEventListener("peer", (e) => {
      this.peerPresent = e.detail;
      this.render();
    });
    const callId = call.id;
    this.timers = [
      setInterval(() => this.tick(), 1000),
      setInterval(() => this.sampleStats(), 1000),
      setTimeout(() => {
        if (this.call?.id === callId && !this.everConnected) {
          this.stalled = true;
          this.render();
          this.dispatchEvent(new CustomEvent("stalled"));
        }
      }, STALLED_AFTER_MS),
    ];
    await this.peer.join();
  }

  watchFirstFrame() {
    const video = this.remote;
    const callId = this.call?.id;
    // One watch per call (an audio-only call's watch never fires; the next call's counts).
    if (this.frameWatchFor === callId || !video.requestVideoFrameCallback) return;
    this.frameWatchFor = callId;
    video.requestVideoFrameCallback(() => {
      if (this.call?.id !== callId || this.container.dataset.setupMs) return;
      // Tests and the benchmark read this: from the click to the first decoded frame.
      if (this.since != null) this.container.dataset.setupMs = String(Math.round(performance.now() - this.since));
      this.dispatchEvent(new CustomEvent("firstframe"));
    });
  }

  /** A call.updated (or an HTTP reply) for the call on screen; older news is ignored. */
  update(call) {
    if (!isNewerCall(call, this.call)) return;
    this.call = { ...this.call, ...call };
    if (call.connected_at) this.connectedAtMs = Date.parse(call.connected_at);
    if (call.state === "ended") this.finish(this.call);
    else this.render();
  }

  /** Who is on the other side: name (or number, as the centre chose), agency and language
   * for the counsellor; the organisation for the interpreter. */
  whoText() {
    const call = this.call;
    const language = call.language ? languageName(call.language) : "";
    if (this.role === "counsellor") {
      const other = call.interpreter ?? {};
      const who =
        other.display_name ||
        (other.number != null ? t("call.interpreterNumber", { number: other.number }) : t("role.interpreter"));
      return [who, other.agency, language].filter(Boolean).join(" · ");
    }
    const other = call.counsellor ?? {};
    return [other.display_name, this.organization, language].filter(Boolean).join(" · ");
  }

  render() {
    if (!this.call) return;
    let key = "call.connecting";
    if (this.mediaState === "connected") key = "call.connected";
    else if (this.everConnected || this.socket.state !== "open") key = "call.reconnecting";
    else if (this.mediaState === "failed") key = "call.failed";
    const parts = [t(key)];
    if (!this.peerPresent) parts.push(t("call.peerAway"));
    this.line.textContent = parts.join(" · ");
    this.who.textContent = this.whoText();
    this.container.dataset.media = this.mediaState;
    // Over the video: a drop after it worked, or a call that never connected.
    const troubled = this.everConnected && this.mediaState !== "connected";
    this.banner.hidden = !(troubled || this.stalled);
    this.container.dataset.banner = troubled ? "disturbed" : this.stalled ? "stalled" : "";
    this.bannerText.textContent = troubled
      ? t("call.disturbed")
      : t(this.role === "counsellor" ? "call.stalled" : "call.stalledInterpreter");
    this.retryButton.hidden = !(this.stalled && !troubled && this.role === "counsellor");
    this.retryButton.textContent = t("call.retry");
    const audioOnly = Boolean(this.call.audio_only) || !this.remote.srcObject?.getVideoTracks().length;
    this.remotePlaceholder.hidden = !audioOnly;
    this.remotePlaceholder.textContent = this.call.audio_only
      ? t("call.audioOnly")
      : t(this.everConnected ? "call.noVideo" : "call.connecting");
    this.remote.classList.toggle("hidden-video", audioOnly);
    this.selfPlaceholder.hidden = this.hasVideo && !this.cameraOff;
    this.selfPlaceholder.textContent = this.hasVideo ? t("call.cameraIsOff") : t("call.audioOnlySelf");
    this.selfBadge.hidden = !this.muted;
    this.selfBadge.textContent = t("call.micIsOff");
    this.muteButton.textContent = t(this.muted ? "call.micOff" : "call.micOn");
    this.muteButton.setAttribute("aria-pressed", String(this.muted));
    this.cameraButton.hidden = !this.hasVideo;
    this.cameraButton.textContent = t(this.cameraOff ? "call.camOff" : "call.camOn");
    this.cameraButton.setAttribute("aria-pressed", String(this.cameraOff));
    this.hangupButton.textContent = t(this.hangupKey);
    this.renderQuality();
  }

  /** The connection quality in words, from getStats(): round trip, loss, direct or relay. */
  renderQuality() {
    const s = this.stats;
    if (!s || this.mediaState !== "connected" || s.rttMs == null) {
      this.quality.hidden = true;
      return;
    }
    const loss =
      s.packetsReceived + s.packetsLost > 0 ? (100 * s.packetsLost) / (s.packetsReceived + s.packetsLost) : 0;
    const level = s.rttMs > 400 || loss > 5 ? "bad" : s.rttMs > 200 || loss > 2 ? "fair" : "good";
    this.quality.hidden = false;
    this.quality.dataset.level = level;
    this.quality.textContent = `${t("call.quality." + level)} · ${t(s.relay ? "call.relay" : "call.direct")}`;
    this.quality.title = t("call.qualityDetail", { rtt: s.rttMs, loss: loss.toFixed(1) });
  }

  tick() {
    if (this.connectedAtMs != null)
      this.clock.textContent = formatClock((this.socket.serverNow() - this.connectedAtMs) / 1000);
  }

  async sampleStats() {
    if (!this.peer?.pc) return;
    const stats = await readStats(this.peer.pc);
    if (!this.call) return;
    this.stats = stats;
    // Tests and support staff read these: proof that the other side's media arrives.
    const data = this.container.dataset;
    data.framesDecoded = String(stats.framesDecoded);
    data.audioSamples = String(stats.audioSamples);
    data.relay = String(stats.relay);
    this.renderQuality();
  }

  async hangup() {
    if (!this.call) return;
    const id = this.call.id;
    this.hangupButton.disabled = true;
    try {
      // The reply goes through update(): when call.updated (ended) came first, it is old news.
      const { call } = await api("POST", `/api/calls/${encodeURIComponent(id)}/hangup`);
      this.update(call);
    } catch {
      // Over HTTP it failed (e.g. the network); the socket may still carry it.
      this.socket.send({ type: "call.hangup", call_id: id });
    } finally {
      this.hangupButton.disabled = false;
    }
  }

  /** Tear down media and hide the view; fires "ended" with the final call. */
  finish(call) {
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    this.peer?.close();
    this.peer = null;
    this.stopStream();
    this.remote.srcObject = null;
    this.self.srcObject = null;
    this.container.hidden = true;
    document.body.classList.remove("in-call");
    this.connectedAtMs = null;
    this.clock.textContent = "00:00";
    this.call = null;
    this.dispatchEvent(new CustomEvent("ended", { detail: call }));
  }

  get active() {
    return this.call != null;
  }
}
