// The socket for the pages (docs/protocol.md): reconnects by itself, pings, and matches
// replies to requests by their `ref`.
import { ApiError } from "./api.js";

const CLOSE_LOGGED_OUT = 4401;

/**
 * The socket to /ws. Reconnects by itself with exponential back-off and jitter; `request()`
 * sends a message with a `ref` and resolves with the reply that carries it.
 * Events: "state" {detail: "connecting"|"open"|"reconnecting"|"closed"}, "hello", "loggedout",
 * and one event per message type (e.g. "offer", "request.updated", "signal").
 */
export class Socket extends EventTarget {
  constructor(url = defaultSocketUrl()) {
    super();
    this.url = url;
    this.ws = null;
    this.state = "closed";
    this.attempt = 0;
    this.pending = new Map();
    this.refCounter = 0;
    this.heartbeatS = 15;
    this.hello = null;
    this.clockOffsetMs = 0;
    this.stopped = false;
    this.retryTimer = null;
    this.pingTimer = null;
    this.lastSeen = 0;
    this.watchingLanguages = null; // what the page said of the live figures: null, true, false
  }

  start() {
    this.stopped = false;
    this.open();
    // Reconnect at once when the network comes back or the tab wakes up.
    window.addEventListener("online", () => this.retryNow());
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) this.retryNow();
    });
    return this;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    this.ws?.close(1000, "bye");
    this.setState("closed");
  }

  setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: state }));
  }

  open() {
    clearTimeout(this.retryTimer);
    this.setState(this.attempt === 0 ? "connecting" : "reconnecting");
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.addEventListener("message", (event) => this.receive(event.data));
    ws.addEventListener("close", (event) => this.closed(ws, event));
  }

  retryNow() {
    if (!this.stopped && this.state === "reconnecting" && this.ws?.readyState !== WebSocket.CONNECTING) {
      this.attempt = Math.min(this.attempt, 1);
      this.open();
    }
  }

  closed(ws, event) {
    if (ws !== this.ws) return;
    clearInterval(this.pingTimer);
    for (const { reject, timer } of this.pending.values()) {
      clearTimeout(timer);
      reject(new ApiError(0, "disconnected", "socket closed"));
    }
    this.pending.clear();
    if (this.stopped) return;
    if (event.code === CLOSE_LOGGED_OUT) {
      this.stopped = true;
      this.setState("closed");
      this.dispatchEvent(new CustomEvent("loggedout"));
      return;
    }
    this.attempt += 1;
    // 0.5 s, 1 s, 2 s ... up to 15 s, each with up to 50 % random jitter so that a whole
    // welcome centre does not reconnect in the same millisecond after a server restart.
    const base = Math.min(15000, 500 * 2 ** (this.attempt - 1));
    const delay = base * (0.5 + Math.random() * 0.5);
    this.setState("reconnecting");
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  receive(data) {
    this.lastSeen = Date.now();
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (msg.type === "hello") {
      this.hello = msg;
      this.heartbeatS = msg.heartbeat_s || 15;
      if (msg.server_time) this.clockOffsetMs = Date.parse(msg.server_time) - Date.now();
      this.attempt = 0;
      this.startHeartbeat();
      this.setState("open");
      // A new socket watches the figures: a page that does not want them says so again, and
      // one that does asks for them at once (it may have missed changes while away).
      if (this.watchingLanguages !== null) this.send({ type: "languages.watch", watch: this.watchingLanguages });
      this.dispatchEvent(new CustomEvent("hello", { detail: msg }));
      return;
    }
    if (msg.ref && this.pending.has(msg.ref)) {
      const { resolve, reject, timer } = this.pending.get(msg.ref);
      clearTimeout(timer);
      this.pending.delete(msg.ref);
      if (msg.type === "error") reject(new ApiError(0, msg.code, msg.message, msg));
      else resolve(msg);
    }
    this.dispatchEvent(new CustomEvent(msg.type, { detail: msg }));
  }

  startHeartbeat() {
    clearInterval(this.pingTimer);
    // The browser answers the server's pings by itself but cannot see them; our own ping
    // notices a dead connection (e.g. a laptop lid closed) within three intervals.
    this.pingTimer = setInterval(() => {
      if (Date.now() - this.lastSeen > 3 * this.heartbeatS * 1000) {
        this.ws?.close(4000, "silent");
        this.closed(this.ws, { code: 4000 });
        return;
      }
      this.send({ type: "ping" });
    }, this.heartbeatS * 1000);
  }

  /** Send a message now; false when the socket is not open (the caller decides). */
  send(msg) {
    if (this.ws?.readyState !== WebSocket.OPEN || this.state !== "open") return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  /** Whether the page shows the live language figures now: only then does the server send
   * `languages.updated` (and, on a change to true, the current figures at once). */
  watchLanguages(wanted) {
    if (wanted === this.watchingLanguages) return;
    this.watchingLanguages = wanted;
    this.send({ type: "languages.watch", watch: wanted });
  }

  /** Send with a fresh `ref`; resolves with the reply, rejects with ApiError on error. */
  request(msg, timeoutMs = 10000) {
    const ref = `r${++this.refCounter}`;
    return new Promise((resolve, reject) => {
      if (!this.send({ ...msg, ref })) {
        reject(new ApiError(0, "disconnected", "socket not open"));
        return;
      }
      const timer = setTimeout(() => {
        this.pending.delete(ref);
        reject(new ApiError(0, "timeout", "no reply"));
      }, timeoutMs);
      this.pending.set(ref, { resolve, reject, timer });
    });
  }

  /** Listen to one message type; returns a function that stops listening. */
  on(type, fn) {
    const handler = (event) => fn(event.detail);
    this.addEventListener(type, handler);
    return () => this.removeEventListener(type, handler);
  }

  /** The server's clock now, in ms (offer deadlines are in server time). */
  serverNow() {
    return Date.now() + this.clockOffsetMs;
  }
}

export function defaultSocketUrl() {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
}
