// The counsellor's consultation room: open it, invite the client by link and QR code, see
// them arrive, ask for an interpreter into it (the page's language list does the asking),
// and end it for everyone.
import { $, fill, h } from "./dom.js";
import { formatDateTime, onLocaleChange, t } from "./i18n.js";
import { api } from "./api.js";
import { joinErrorText, openMedia } from "./peer.js";
import { RoomView } from "./roomview.js";
import { errorText, notify } from "./shell.js";

/**
 * The room part of the counsellor's page. `onPick(on)` shows or hides the language list
 * for asking an interpreter into the room; `onEnded()` is told when the room is over.
 */
export class Consultation {
  constructor(socket, { noticeArea, onPick, onEnded, onChange = () => {} }) {
    this.socket = socket;
    this.onChange = onChange;
    this.noticeArea = noticeArea;
    this.onPick = onPick;
    this.onEnded = onEnded;
    this.room = null;
    this.invitation = null;
    this.opening = false;
    this.panel = $("#room-panel");
    this.view = new RoomView($("#room"), socket, { role: "counsellor", line: false });
    this.view.addEventListener("leave", () => this.hangup());
    this.view.addEventListener("joined", () => this.render());
    this.view.addEventListener("change", () => this.render());
    $("#room-open").addEventListener("click", () => this.open());
    $("#invite").addEventListener("click", () => this.invite());
    $("#invite-copy").addEventListener("click", () => this.copy());
    $("#room-interpreter").addEventListener("click", () => this.onPick(true));
    socket.on("room.updated", (msg) => this.onRoom(msg.room));
    onLocaleChange(() => this.render());
  }

  get id() {
    return this.room?.id ?? null;
  }

  get active() {
    return this.room != null;
  }

  /** "Raum für Fernberatung öffnen": the room, the camera, and at once an invitation. */
  async open() {
    if (this.room || this.opening) return;
    this.opening = true;
    const since = performance.now();
    notify(this.noticeArea, "");
    try {
      let room;
      try {
        room = (await api("POST", "/api/rooms")).room;
      } catch (err) {
        // A room of ours is open already (another tab, a reload): take that one.
        const openId = err.body?.error?.room_id;
        if (err.code !== "room_open" || !openId) throw err;
        room = (await api("GET", `/api/rooms/${encodeURIComponent(openId)}`)).room;
      }
      await this.enter(room, since);
      if (!room.participants.some((p) => p.role === "guest")) await this.invite();
    } catch (err) {
      notify(this.noticeArea, () => joinErrorText(err), "bad");
    } finally {
      this.opening = false;
    }
  }

  /** Show the room and join its media. */
  async enter(room, since = performance.now()) {
    if (this.room) return;
    this.room = room;
    this.render();
    let stream;
    try {
      stream = await openMedia();
    } catch (err) {
      this.room = null;
      this.render();
      throw err;
    }
    await this.view.start(room.id, stream, { since });
    this.view.update(room);
    this.render();
  }

  async invite() {
    if (!this.room) return;
    try {
      const guestBefore = [...this.view.participants.values()].find((p) => p.role === "guest")?.id;
      const made = await api("POST", `/api/rooms/${encodeURIComponent(this.room.id)}/invitations`);
      this.invitation = { ...made, guestBefore };
    } catch (err) {
      notify(this.noticeArea, () => errorText(err), "bad");
      return;
    }
    this.render();
    $("#invite-link").select();
  }

  async copy() {
    const link = $("#invite-link");
    try {
      await navigator.clipboard.writeText(link.value);
    } catch {
      // Without clipboard permission the selected text can still be copied by hand.
      link.select();
      document.execCommand?.("copy");
    }
    notify($("#invite-copied"), () => t("room.copied"), "ok");
  }

  async hangup() {
    if (!this.room) return;
    const id = this.room.id;
    try {
      const { room } = await api("POST", `/api/rooms/${encodeURIComponent(id)}/hangup`);
      this.onRoom(room);
    } catch {
      this.socket.send({ type: "room.leave", room_id: id });
    }
  }

  onRoom(room) {
    if (room.state === "ended") {
      if (room.id === this.room?.id) this.finish(room);
      return;
    }
    if (!this.room) {
      // Our open room, told on (re)connect: go back into it.
      if (room.counsellor?.id && !this.opening) this.enter(room).catch(() => {});
      return;
    }
    if (room.id !== this.room.id) return;
    this.room = room;
    this.view.update(room);
    this.render();
  }

  finish(room) {
    this.view.finish();
    this.room = null;
    this.invitation = null;
    this.onPick(false);
    this.render();
    notify(this.noticeArea, () => t(room.end_reason === "lost" ? "room.lost" : "room.ended"), "ok");
    this.onEnded();
  }

  /** Whether the room has an interpreter or one is being asked for. */
  interpreterState() {
    const present = this.view.participants;
    const interpreters = [...present.values()].filter((p) => p.role === "interpreter");
    if (interpreters.length > 1) return "handover";
    if (interpreters.some((p) => p.present)) return "present";
    if (interpreters.length) return "coming";
    return "none";
  }

  render() {
    const open = this.room != null;
    $("#remote").hidden = open;
    this.panel.hidden = !open;
    // In a room the page is the room: its heading says so, the panel's own goes.
    const title = $("main h1");
    title.dataset.i18n = open ? "room.title" : "counsellor.title";
    title.textContent = t(title.dataset.i18n);
    this.onChange();
    if (!open) return;
    const guest = [...this.view.participants.values()].find((p) => p.role === "guest");
    // The link is used once a client came in by it: no need to show it any more.
    if (guest?.present && this.invitation && guest.id !== this.invitation.guestBefore) this.invitation = null;
    const inv = this.invitation;
    $("#invitation").hidden = !inv;
    if (inv) {
      $("#invite-link").value = inv.url;
      $("#invitation").dataset.expiresAt = inv.expires_at;
      $("#invite-qr").src = inv.qr_svg_url;
      $("#invite-qr").alt = t("room.qr");
      $("#invite-expires").textContent = t("room.expires", { when: formatDateTime(inv.expires_at) });
    }
    $("#invite").textContent = t(inv ? "room.inviteAgain" : "room.invite");
    // A room holds one guest: no new link while the client is in it.
    $("#invite").hidden = Boolean(guest);
    const state = this.interpreterState();
    $("#room-interpreter").hidden = state !== "none";
    const line = $("#room-status");
    line.dataset.guest = guest ? (guest.present ? "present" : "away") : "none";
    line.dataset.interpreter = state;
    fill(
      line,
      h("span", {}, t(guest ? (guest.present ? "room.guestHere" : "room.guestAway") : "room.guestWaiting")),
      " · ",
      h("span", {}, t("room.interpreter." + state)),
    );
  }
}
