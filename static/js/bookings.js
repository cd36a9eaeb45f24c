// Booked appointments: the counsellor books an interpreter for a time and starts the
// appointment from the booking; interpreters see the open bookings of their languages,
// claim one and may give it back; admins see those still unclaimed. Each list is read
// again from the server on every `booking.updated` and after a reconnect.
import { $, fill, h } from "./dom.js";
import { languageName, locale, onLocaleChange, t } from "./i18n.js";
import { api } from "./api.js";
import { errorText, notify } from "./shell.js";

const NEWS_KEPT = 3; // a reminder and an escalation may arrive in the same second

/** The booked start in the booking's own time zone, as it was booked. */
export function bookingTime(booking) {
  const when = new Intl.DateTimeFormat(locale(), {
    dateStyle: "medium",
    timeStyle: "short",
    timeZone: booking.time_zone,
  }).format(new Date(booking.starts_at));
  return `${when} (${booking.time_zone})`;
}

function interpreterName(party) {
  if (!party) return t("bookings.nobodyYet");
  return party.display_name ?? t("call.interpreterNumber", { number: party.number ?? "?" });
}

function bookingItem(booking, { who, actions = [] }) {
  return h(
    "li",
    { class: "booking", dataset: { bookingId: booking.id, state: booking.state } },
    h(
      "p",
      { class: "booking-head" },
      h("strong", {}, bookingTime(booking)),
      " · ",
      languageName(booking.language),
      " · ",
      t("bookings.minutes", { n: booking.duration_min }),
      booking.site ? ` · ${booking.site.name}` : null,
    ),
    h(
      "p",
      { class: "muted" },
      t(`bookings.state.${booking.state}`),
      " · ",
      who,
      booking.preferences.audio_only ? ` · ${t("bookings.audioOnly")}` : null,
    ),
    booking.escalated && booking.state === "open"
      ? h("p", { class: "notice warn" }, t("bookings.escalatedNote"))
      : null,
    actions.length ? h("p", { class: "row" }, actions) : null,
  );
}

function renderList(list, none, bookings, item) {
  fill(list, bookings.map(item));
  none.hidden = bookings.length > 0;
}

/** The text of a `booking.updated` worth a notice, or null. */
function newsText(msg, role) {
  const params = { time: bookingTime(msg.booking), language: languageName(msg.booking.language) };
  const key = {
    counsellor: { claimed: "claimed", given_back: "givenBack", escalated: "escalated", reminder: "reminder" },
    interpreter: { cancelled: "cancelled", reminder: "reminder" },
  }[role][msg.reason];
  if (!key) return null;
  if (key === "reminder" && role === "counsellor" && !msg.booking.interpreter) {
    return t("bookings.news.counsellor.reminderOpen", params);
  }
  params.who = interpreterName(msg.booking.interpreter);
  return t(`bookings.news.${role}.${key}`, params);
}

class BookingList {
  constructor(socket, role) {
    this.role = role;
    this.notice = $("#bookings-notice");
    this.mine = [];
    socket.on("booking.updated", (msg) => {
      const text = newsText(msg, role);
      if (text) this.say(() => newsText(msg, role), msg.reason === "reminder" ? "warn" : "ok");
      this.load();
    });
    socket.on("hello", () => this.load());
    onLocaleChange(() => this.render());
  }

  /** Add a message to the bookings' notices (the latest few stay: news often come together). */
  say(text, tone) {
    notify(this.notice, text, tone, { keep: NEWS_KEPT });
  }

  async act(promise) {
    try {
      await promise;
    } catch (err) {
      this.say(() => errorText(err), "bad");
    }
    await this.load();
  }
}

/** The counsellor's bookings: the form, the list, cancel and start. */
export class CounsellorBookings extends BookingList {
  /** `onStart(booking)` starts the appointment's request on the page. */
  constructor(socket, { onStart }) {
    super(socket, "counsellor");
    this.onStart = onStart;
    this.form = $("#booking-form");
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.book();
    });
  }

  /** Offer the roster's languages, by name, in the form. */
  setLanguages(languages) {
    const select = $("#booking-language");
    const chosen = select.value;
    const named = languages.map((l) => [l.tag, languageName(l.tag)]).sort((a, b) => a[1].localeCompare(b[1]));
    fill(
      select,
      named.map(([tag, name]) => h("option", { value: tag }, name)),
    );
    if (chosen) select.value = chosen;
  }

  async book() {
    const body = {
      language: $("#booking-language").value,
      local_start: `${$("#booking-date").value}T${$("#booking-time").value}`,
      duration_min: Number($("#booking-duration").value),
    };
    const gender = $("#booking-gender").value;
    const audioOnly = $("#booking-audio").checked;
    if (gender || audioOnly) body.preferences = { ...(gender ? { gender } : {}), audio_only: audioOnly };
    try {
      const { booking } = await api("POST", "/api/bookings", body);
      this.say(() => t("bookings.booked", { time: bookingTime(booking) }), "ok");
    } catch (err) {
      this.say(() => errorText(err), "bad");
    }
    await this.load();
  }

  async load() {
    try {
      this.mine = (await api("GET", "/api/bookings")).bookings;
    } catch {
      return; // the socket's reconnect reads it again
    }
    this.render();
  }

  render() {
    renderList($("#booking-list"), $("#booking-none"), this.mine, (b) =>
      bookingItem(b, { who: interpreterName(b.interpreter), actions: this.actions(b) }),
    );
  }

  actions(booking) {
    const id = encodeURIComponent(booking.id);
    const actions = [];
    if (booking.state !== "cancelled" && booking.state !== "started") {
      actions.push(
        h("button", { type: "button", class: "good", onclick: () => this.onStart(booking) }, t("bookings.start")),
      );
    }
    if (booking.state === "open" || booking.state === "claimed") {
      actions.push(
        h(
          "button",
          { type: "button", class: "secondary", onclick: () => this.act(api("DELETE", `/api/bookings/${id}`)) },
          t("bookings.cancel"),
        ),
      );
    }
    return actions;
  }
}

/** The interpreter's bookings: the open ones of their languages, and their own. */
export class InterpreterBookings extends BookingList {
  constructor(socket) {
    super(socket, "interpreter");
    this.open = [];
  }

  async load() {
    try {
      const [open, mine] = await Promise.all([api("GET", "/api/bookings/open"), api("GET", "/api/bookings")]);
      this.open = open.bookings;
      this.mine = mine.bookings;
    } catch {
      return;
    }
    this.render();
  }

  render() {
    const who = (b) => `${b.organization.name} · ${b.counsellor.display_name}`;
    renderList($("#open-bookings"), $("#open-none"), this.open, (b) =>
      bookingItem(b, { who: who(b), actions: [this.button(b, "claim", "good")] }),
    );
    renderList($("#booking-list"), $("#booking-none"), this.mine, (b) =>
      bookingItem(b, { who: who(b), actions: b.state === "claimed" ? [this.button(b, "give-back", "secondary")] : [] }),
    );
  }

  button(booking, action, tone) {
    const path = `/api/bookings/${encodeURIComponent(booking.id)}/${action}`;
    const key = action === "claim" ? "bookings.claim" : "bookings.giveBack";
    return h("button", { type: "button", class: tone, onclick: () => this.act(api("POST", path)) }, t(key));
  }
}

/** The admin's "Unbesetzte Termine": escalated bookings nobody claimed. */
export async function showUnclaimed(panel) {
  const list = h("ul", { class: "booking-list", id: "unclaimed-bookings" });
  const none = h("p", { class: "muted" }, t("bookings.unclaimedNone"));
  const reload = async () => {
    let bookings = [];
    try {
      bookings = (await api("GET", "/api/admin/bookings/unclaimed")).bookings;
    } catch (err) {
      fill(list, h("li", { class: "notice bad" }, errorText(err)));
      return;
    }
    renderList(list, none, bookings, (b) =>
      bookingItem(b, { who: `${b.organization.name} · ${b.counsellor.display_name}` }),
    );
  };
  const render = () =>
    fill(
      panel,
      h("h2", {}, t("admin.bookings")),
      h("p", { class: "muted" }, t("bookings.unclaimedHint")),
      h("button", { type: "button", class: "secondary", onclick: reload }, t("bookings.reload")),
      list,
      none,
    );
  render();
  onLocaleChange(() => {
    render();
    reload();
  });
  await reload();
}
