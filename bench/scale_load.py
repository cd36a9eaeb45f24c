"""The people of `bench.scale`: interpreters and counsellors as protocol clients (no media)
over real sockets through the balancer, asking, offering, accepting, signalling, holding and
hanging up at a given rate, and what each of them measured.

Run by `bench.scale` as its own process (`python -m bench.scale_load SETUP.json`); it says
where it is on stdout (`CONNECTED`, `PHASE rate start|end`, `RESULT {...}`) and waits for a
line on stdin before each phase, so that the orchestrator can read the servers' counters
at those moments.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import ssl
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import asyncpg
import orjson

from bench.wsclient import WsClient, open_client

CANDIDATES_PER_SIDE = 24
"""Each side sends its description and this many candidates: ~50 signals per call."""
SIGNAL_GAP_S = 0.04
"""Between one side's candidates, as a browser gathers them."""
SDP_BODY = (
    "s=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\na=msid-semantic: WMS stream\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n" + "a=x-bench:padding\r\n" * 160
)[:3000]
"""An offer or answer of a camera call with audio and video: ~3 KB."""
CHOOSING_S = (1.0, 3.0)
"""How long a counsellor's page shows the languages before one is asked for."""
EXPECTED_CONFLICTS = frozenset(
    {"offer_taken", "offer_revoked", "offer_expired", "offer_declined", "not_cancellable"}
)
"""409s that are the race a person can lose, not errors: two accept, a cancel meets an accept."""


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile by nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def quantile_interval(
    values: list[float], q: float = 0.99, confidence: float = 0.9
) -> tuple[float | None, float | None]:
    """Two samples that hold the q-quantile between them with `confidence`, whatever the
    distribution (order statistics); None for a side too few samples can bound: 240
    samples give no upper bound of p99 at 90 %, about 300 do."""
    n, ordered = len(values), sorted(values)
    if not n:
        return None, None
    # below[k] = P(K <= k) for K ~ Binomial(n, q), the number of samples under the quantile;
    # built down from P(K = n) = q**n, which stays a normal float for any run's size.
    pmf = [0.0] * (n + 1)
    pmf[n] = q**n
    for k in range(n, 0, -1):
        pmf[k - 1] = pmf[k] * k / (n - k + 1) * (1 - q) / q
    below = list(itertools.accumulate(pmf))
    tail = (1 - confidence) / 2
    low = max((r for r in range(1, n + 1) if below[r - 1] <= tail), default=None)
    high = min((r for r in range(1, n + 1) if below[r - 1] >= 1 - tail), default=None)
    return (ordered[low - 1] if low else None), (ordered[high - 1] if high else None)


@dataclass
class Phase:
    """What one traffic phase measured."""

    rate: float
    offer_ms: list[float] = field(default_factory=list)
    accept_ms: list[float] = field(default_factory=list)
    signal_ms: dict[str, list[float]] = field(
        default_factory=lambda: {"cross": [], "same": [], "unknown": []}
    )
    counts: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    lag_ms: list[float] = field(default_factory=list)
    """How late this process's own loop woke for its 10 ms ticks: time it adds to every
    latency it measures, which the instances did not spend."""

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rate": self.rate, "counts": dict(self.counts)}
        out["errors"] = dict(self.errors)
        for name, values in (
            ("offer", self.offer_ms),
            ("accept", self.accept_ms),
            ("lag", self.lag_ms),
        ):
            out[f"{name}_p50"], out[f"{name}_p99"] = (
                percentile(values, 0.5),
                percentile(values, 0.99),
            )
            out[f"{name}_n"] = len(values)
            out[f"{name}_p99_interval"] = quantile_interval(values)
        for kind, values in self.signal_ms.items():
            out[f"signal_{kind}_p50"] = percentile(values, 0.5)
            out[f"signal_{kind}_p99"] = percentile(values, 0.99)
            out[f"signal_{kind}_n"] = len(values)
        return out


@dataclass(eq=False)
class User:
    """One person with one socket."""

    role: str
    token: str
    user_id: str = ""
    ws: WsClient | None = None
    status: str = "offline"
    engaged: bool = False
    """In a request, an offer or a call: left alone by presence changes and reconnects."""
    offer_id: str | None = None
    """An interpreter's latest offer: what is done with an older one (a ring-out's end, a
    refused accept) no longer frees them, who may be in the next call by then."""
    closing: bool = False
    reconnecting: bool = False
    greeted: asyncio.Future[None] | None = None
    in_front: bool = False
    """A counsellor whose page is in front: it watches the language figures while idle."""
    watching: bool | None = None
    """What the socket last said in `languages.watch` (None: nothing since it opened)."""


@dataclass(eq=False)
class CallRun:
    """One call as both sides see it: signals sent and received per direction."""

    call_id: str
    request_id: str
    phase: Phase
    counsellor: User
    interpreter: User
    sent: Counter[str] = field(default_factory=Counter)
    received: Counter[str] = field(default_factory=Counter)
    sent_at: dict[tuple[str, int], float] = field(default_factory=dict)
    started: bool = False
    ended: bool = False


@dataclass(eq=False)
class RequestRun:
    """One request from POST to its end."""

    counsellor: User
    phase: Phase
    started: float
    request_id: str = ""
    offered_at: float | None = None
    accept_sent: dict[str, float] = field(default_factory=dict)
    """When each interpreter who accepted sent the accept, by user id."""
    done: asyncio.Event = field(default_factory=asyncio.Event)


TICK_S = 0.01


class Crowd:
    """Everybody, and the traffic they make."""

    def __init__(self, setup: dict[str, Any]) -> None:
        self.setup = setup
        self.rng = random.Random(setup["seed"])
        self.port = setup["port"]
        self.base = f"https://127.0.0.1:{self.port}"
        self.tls = ssl.create_default_context(cafile=setup["cafile"])
        self.interpreters = [User("interpreter", t) for t in setup["interpreters"]]
        self.counsellors = [User("counsellor", t) for t in setup["counsellors"]]
        for user in self.counsellors:
            user.in_front = self.rng.random() < setup["watching"]
        self.by_id: dict[str, User] = {}
        self.requests: dict[str, RequestRun] = {}
        self.early_offers: dict[str, float] = {}
        self.calls: dict[str, CallRun] = {}
        self.rooms: dict[tuple[str, str], str] = {}
        """(call id, user id) -> instance, read from the call rooms' rows."""
        self.phase = Phase(0)
        self.http: aiohttp.ClientSession | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        self.room_reads = 0

    # --- sockets ---------------------------------------------------------------------

    async def connect(self, user: User) -> None:
        """Open the user's socket and wait for `hello`."""
        user.greeted = asyncio.get_running_loop().create_future()
        headers = {"Authorization": f"Bearer {user.token}"}
        ws = await open_client(self.port, "/ws", headers, self.on_text(user), self.tls)
        ws.on_close = self.on_close(user, ws)
        user.ws = ws
        await asyncio.wait_for(user.greeted, 60)
        if user.role == "counsellor":
            # As the page does after every `hello`: says whether it shows the figures.
            user.watching = None
            self.watch(user, user.in_front and not user.engaged)

    async def connect_all(self, users: list[User], at_once: int) -> None:
        gate = asyncio.Semaphore(at_once)

        async def one(user: User) -> None:
            async with gate:
                await self.connect(user)
                if user.role == "interpreter":
                    self.send(user, {"type": "presence", "status": "available"})
                    user.status = "available"

        await asyncio.gather(*(one(u) for u in users))

    def on_close(self, user: User, ws: WsClient) -> Any:
        def closed(exc: Exception | None) -> None:
            if user.ws is ws and not user.closing:
                self.phase.errors["socket_closed"] += 1
                user.ws = None

        return closed

    def watch(self, user: User, on: bool) -> None:
        """The counsellor's page starts or stops showing the language figures."""
        if user.watching is not on:
            user.watching = on
            self.send(user, {"type": "languages.watch", "watch": on})

    def send(self, user: User, message: dict[str, Any]) -> None:
        if user.ws is None:
            self.phase.errors["send_without_socket"] += 1
            return
        user.ws.send(orjson.dumps(message))

    def on_text(self, user: User) -> Any:
        def on_text(payload: bytes) -> None:
            if payload.startswith(b'{"type":"languages.updated"'):
                self.phase.counts["languages_updated"] += 1
                return
            if payload.startswith(b'{"type":"signal"'):
                self.on_signal(user, payload, time.perf_counter())
                return
            message = orjson.loads(payload)
            handler = self.HANDLERS.get(message.get("type"))
            if handler is not None:
                handler(self, user, message, time.perf_counter())

        return on_text

    # --- what arrives ----------------------------------------------------------------

    def on_hello(self, user: User, message: dict[str, Any], now: float) -> None:
        user.user_id = message["user"]["id"]
        self.by_id[user.user_id] = user
        if user.greeted is not None and not user.greeted.done():
            user.greeted.set_result(None)

    def on_error(self, user: User, message: dict[str, Any], now: float) -> None:
        self.phase.errors["socket_error_" + str(message.get("code"))] += 1

    def on_presence(self, user: User, message: dict[str, Any], now: float) -> None:
        user.status = message["status"]
        if message.get("reason") == "missed_offers":
            # A person who let two offers ring out comes back after a while.
            self.phase.counts["set_away_missed"] += 1
            self.later(self.rng.uniform(5, 15), self.come_back(user))

    def on_offer(self, user: User, message: dict[str, Any], now: float) -> None:
        offer = message["offer"]
        run = self.requests.get(offer["request_id"])
        if run is None:
            if offer["request_id"] not in self.early_offers:
                self.early_offers[offer["request_id"]] = now
            return
        if run.offered_at is None:
            run.offered_at = now
            run.phase.offer_ms.append((now - run.started) * 1000)
        user.engaged = True
        user.offer_id = offer["id"]
        roll = self.rng.random()
        if roll < self.setup["ring_out"]:
            self.phase.counts["rang_out"] += 1
            self.later(25, self.release(user, offer["id"]))
        elif roll < self.setup["ring_out"] + self.setup["decline"]:
            self.later(self.rng.uniform(1, 3), self.decline(user, offer["id"]))
        else:
            self.later(self.rng.uniform(*self.setup["accept_delay"]), self.accept(user, run, offer))

    def on_revoked(self, user: User, message: dict[str, Any], now: float) -> None:
        self.phase.counts["offer_revoked"] += 1

    def on_call(self, user: User, message: dict[str, Any], now: float) -> None:
        call = message["call"]
        run = self.requests.get(call["request_id"])
        if run is None or user is not run.counsellor:
            if call["state"] == "ended" and user.role == "interpreter":
                self.end_call_for(user, call["id"])
            return
        if call["state"] == "connecting" and call["id"] not in self.calls:
            sent = run.accept_sent.get(call["interpreter"]["id"])
            if sent is not None:
                run.phase.accept_ms.append((now - sent) * 1000)
            else:
                self.phase.errors["call_without_accept"] += 1
            interpreter = self.by_id.get(call["interpreter"]["id"])
            if interpreter is None:
                self.phase.errors["call_of_unknown_interpreter"] += 1
                return
            self.calls[call["id"]] = CallRun(
                call["id"], run.request_id, run.phase, user, interpreter
            )
            self.send(user, {"type": "call.join", "call_id": call["id"]})
        elif call["state"] == "ended":
            self.end_call_for(user, call["id"])

    def on_joined(self, user: User, message: dict[str, Any], now: float) -> None:
        if message.get("peer_present"):
            self.start_signals(user, message["call_id"])

    def on_peer(self, user: User, message: dict[str, Any], now: float) -> None:
        if message.get("present"):
            self.start_signals(user, message["call_id"])

    def on_request(self, user: User, message: dict[str, Any], now: float) -> None:
        request = message["request"]
        run = self.requests.get(request["id"])
        if run is not None and request["state"] in ("cancelled", "expired", "failed"):
            self.phase.counts["request_" + request["state"]] += 1
            if request["state"] != "cancelled":
                self.phase.errors["request_" + request["state"]] += 1
            self.finish(run)

    HANDLERS: ClassVar[dict[str, Callable[[Crowd, User, dict[str, Any], float], None]]] = {
        "hello": on_hello,
        "error": on_error,
        "presence.updated": on_presence,
        "offer": on_offer,
        "offer.revoked": on_revoked,
        "call.updated": on_call,
        "call.joined": on_joined,
        "peer": on_peer,
        "request.updated": on_request,
    }

    # --- signals -----------------------------------------------------------------------

    def start_signals(self, user: User, call_id: str) -> None:
        run = self.calls.get(call_id)
        # The counsellor (impolite side) makes the offer once the interpreter is in the room.
        if run is None or user is not run.counsellor or run.started:
            return
        run.started = True
        self.later(0, self.signal_side(run, "c2i"))

    async def signal_side(self, run: CallRun, direction: str) -> None:
        sender = run.counsellor if direction == "c2i" else run.interpreter
        kind = "offer" if direction == "c2i" else "answer"
        for seq in range(CANDIDATES_PER_SIDE + 1):
            if run.ended:
                return
            if seq == 0:
                sdp = f"v=0\r\no=- {seq} 2 IN IP4 127.0.0.1\r\n{SDP_BODY}"
                data: dict[str, Any] = {"description": {"type": kind, "sdp": sdp}}
            else:
                line = f"candidate:{seq} 1 udp 2122260223 192.0.2.{seq} {50000 + seq} typ host"
                data = {
                    "candidate": {
                        "candidate": line,
                        "sdpMid": "0",
                        "sdpMLineIndex": 0,
                        "usernameFragment": str(seq),
                    }
                }
            run.sent_at[(direction, seq)] = time.perf_counter()
            run.sent[direction] += 1
            self.send(sender, {"type": "signal", "call_id": run.call_id, "data": data})
            await asyncio.sleep(SIGNAL_GAP_S * self.rng.uniform(0.5, 1.5))
        self.send(sender, {"type": "call.media", "call_id": run.call_id, "state": "connected"})
        if direction == "c2i":
            self.later(self.rng.uniform(*self.setup["hold"]), self.hang_up(run))

    def on_signal(self, user: User, payload: bytes, now: float) -> None:
        message = orjson.loads(payload)
        run = self.calls.get(message["call_id"])
        if run is None:
            self.phase.errors["signal_for_unknown_call"] += 1
            return
        direction = "c2i" if user is run.interpreter else "i2c"
        data = message["data"]
        if "description" in data:
            seq = int(data["description"]["sdp"].split(" ", 2)[1])
        else:
            seq = int(data["candidate"]["usernameFragment"])
        sent = run.sent_at.pop((direction, seq), None)
        if sent is None:
            self.phase.errors["signal_twice_or_unsent"] += 1
            return
        run.received[direction] += 1
        if direction == "c2i":
            run.phase.signal_ms[self.placement(run)].append((now - sent) * 1000)
            if seq == 0:
                self.later(0, self.signal_side(run, "i2c"))

    def placement(self, run: CallRun) -> str:
        """`cross` when the two sockets are on different instances, `same` when on one."""
        a = self.rooms.get((run.call_id, run.counsellor.user_id))
        b = self.rooms.get((run.call_id, run.interpreter.user_id))
        if a is None or b is None:
            return "unknown"
        return "same" if a == b else "cross"

    async def read_rooms(self, dsn: str, stop: asyncio.Event) -> None:
        """Which instance holds each joined socket, from the rooms' rows, once a second."""
        conn = await asyncpg.connect(dsn)
        try:
            while not stop.is_set():
                rows = await conn.fetch("SELECT call_id, user_id, instance_id FROM call_presence")
                self.room_reads += 1
                for row in rows:
                    self.rooms[(row["call_id"], row["user_id"])] = row["instance_id"]
                await asyncio.sleep(0.5)
        finally:
            await conn.close()

    # --- what people do ----------------------------------------------------------------

    def later(self, delay: float, work: Coroutine[Any, Any, None]) -> None:
        """Run a step after `delay` seconds, as a task the run owns."""

        async def run() -> None:
            try:
                await asyncio.sleep(delay)
            except asyncio.CancelledError:
                work.close()  # the run ended first
                raise
            try:
                await work
            except Exception as exc:  # a broken step is counted, the run goes on
                self.phase.errors["step_failed_" + type(exc).__name__] += 1
                print(f"step failed: {exc!r}", file=sys.stderr)

        task = asyncio.get_running_loop().create_task(run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def call_api(self, user: User, method: str, path: str, body: Any = None) -> Any:
        """An HTTP call through the balancer; a 409 race counts apart, others as errors."""
        assert self.http is not None
        headers = {"Authorization": f"Bearer {user.token}"}
        async with self.http.request(method, self.base + path, json=body, headers=headers) as r:
            reply = await r.json() if r.status != 204 else None
        if r.status < 300:
            return reply
        code = (reply or {}).get("error", {}).get("code")
        if r.status == 409 and code in EXPECTED_CONFLICTS:
            self.phase.counts["conflict_" + code] += 1
        else:
            self.phase.errors[f"http_{r.status}_{code}"] += 1
        return None

    async def ask(self, counsellor: User, language: str) -> None:
        counsellor.engaged = True
        # The page comes to the front and shows the languages, then the request hides them.
        self.watch(counsellor, True)
        await asyncio.sleep(self.rng.uniform(*CHOOSING_S))
        self.watch(counsellor, False)
        run = RequestRun(counsellor, self.phase, time.perf_counter())
        reply = await self.call_api(counsellor, "POST", "/api/requests", {"language": language})
        if reply is None:
            self.finish(run)
            return
        run.request_id = reply["request"]["id"]
        self.requests[run.request_id] = run
        self.phase.counts["requests"] += 1
        early = self.early_offers.pop(run.request_id, None)
        if early is not None and run.offered_at is None:
            run.offered_at = early
            run.phase.offer_ms.append((early - run.started) * 1000)
        if self.rng.random() < self.setup["cancel"]:
            self.later(self.rng.uniform(1, 3), self.cancel(run))

    async def cancel(self, run: RequestRun) -> None:
        if not run.accept_sent and not run.done.is_set():
            self.phase.counts["cancels"] += 1
            await self.call_api(run.counsellor, "DELETE", f"/api/requests/{run.request_id}")

    async def accept(self, user: User, run: RequestRun, offer: dict[str, Any]) -> None:
        if run.done.is_set():
            await self.release(user, offer["id"])
            return
        # The counsellor may hear of the call before this reply arrives.
        run.accept_sent[user.user_id] = time.perf_counter()
        reply = await self.call_api(user, "POST", f"/api/offers/{offer['id']}/accept")
        if reply is None:
            await self.release(user, offer["id"])
            return
        self.phase.counts["accepts"] += 1
        self.send(user, {"type": "call.join", "call_id": reply["call"]["id"]})

    async def decline(self, user: User, offer_id: str) -> None:
        self.phase.counts["declines"] += 1
        await self.call_api(user, "POST", f"/api/offers/{offer_id}/decline")
        await self.release(user, offer_id)

    async def release(self, user: User, offer_id: str) -> None:
        if user.offer_id == offer_id:
            user.engaged = False

    async def come_back(self, user: User) -> None:
        if user.ws is not None and user.status == "away":
            self.phase.counts["presence_changes"] += 1
            self.send(user, {"type": "presence", "status": "available"})

    async def hang_up(self, run: CallRun) -> None:
        self.send(run.counsellor, {"type": "call.hangup", "call_id": run.call_id})

    def end_call_for(self, user: User, call_id: str) -> None:
        run = self.calls.get(call_id)
        if run is None:
            return
        if user is run.interpreter:
            user.engaged = False
            return
        if run.ended:
            return
        run.ended = True
        lost = sum(run.sent.values()) - sum(run.received.values())
        run.phase.counts["calls"] += 1
        run.phase.counts["signals_sent"] += sum(run.sent.values())
        run.phase.counts["lost_signals"] += lost
        request = self.requests.get(run.request_id)
        if request is not None:
            self.finish(request)

    def finish(self, run: RequestRun) -> None:
        run.counsellor.engaged = False
        if run.counsellor.ws is not None:
            self.watch(run.counsellor, run.counsellor.in_front)
        run.done.set()

    async def toggle_presence(self) -> None:
        """An interpreter free of offers and calls steps away for a while, or comes back."""
        free = [
            u
            for u in self.rng.sample(self.interpreters, 20)
            if not u.engaged and not u.reconnecting and u.ws
        ]
        if not free:
            return
        user = free[0]
        if user.status == "available":
            self.phase.counts["presence_changes"] += 1
            user.engaged = True  # not offered meanwhile: stays out of the requests' way
            self.send(user, {"type": "presence", "status": "away"})
            user.status = "away"
            self.later(self.rng.uniform(10, 40), self.back_from_break(user))

    async def back_from_break(self, user: User) -> None:
        user.engaged = False
        await self.come_back(user)

    async def reconnect(self) -> None:
        """Someone's socket drops and comes back (a laptop lid, a flaky network)."""
        pool = self.counsellors if self.rng.random() < 0.6 else self.interpreters
        user = self.rng.choice(pool)
        if user.engaged or user.reconnecting or user.ws is None:
            return
        user.reconnecting = True
        user.closing = True
        old, user.ws = user.ws, None
        if old.transport is not None:
            old.transport.close()
        await asyncio.sleep(0.5)
        user.closing = False
        try:
            await self.connect(user)
        except (OSError, TimeoutError) as exc:
            self.phase.errors["reconnect_failed_" + type(exc).__name__] += 1
        else:
            self.phase.counts["reconnects"] += 1
        user.reconnecting = False

    async def run_phase(
        self, phase: Phase, seconds: float, drain_s: float, mark: Callable[[], Awaitable[None]]
    ) -> None:
        """Requests at `phase.rate` per second for `seconds`, with presence changes and
        reconnects at their own rates; then wait for what is under way to end."""
        self.phase = phase
        languages = self.setup["languages"]
        started = time.perf_counter()
        ticks = {"ask": 0, "presence": 0, "reconnect": 0}
        rates = {
            "ask": phase.rate,
            "presence": self.setup["presence_rate"],
            "reconnect": self.setup["reconnect_rate"],
        }
        while (elapsed := time.perf_counter() - started) < seconds:
            for kind, rate in rates.items():
                while rate > 0 and ticks[kind] < elapsed * rate:
                    ticks[kind] += 1
                    if kind == "ask":
                        idle = [
                            u
                            for u in self.rng.sample(self.counsellors, 20)
                            if not u.engaged and not u.reconnecting
                        ]
                        if idle and idle[0].ws is not None:
                            self.later(0, self.ask(idle[0], self.rng.choice(languages)))
                        else:
                            phase.errors["no_free_counsellor"] += 1
                    elif kind == "presence":
                        self.later(0, self.toggle_presence())
                    else:
                        self.later(0, self.reconnect())
            tick = time.perf_counter()
            await asyncio.sleep(TICK_S)
            phase.lag_ms.append((time.perf_counter() - tick - TICK_S) * 1000)
        await mark()  # the steady part ends: what follows is what was under way ending
        open_runs = [r for r in self.requests.values() if r.phase is phase]
        try:
            async with asyncio.timeout(drain_s):
                await asyncio.gather(*(r.done.wait() for r in open_runs))
        except TimeoutError:
            pass
        for run in open_runs:
            if run.offered_at is None and not run.done.is_set():
                phase.errors["request_never_offered"] += 1
            elif run.offered_at is None:
                phase.counts["cancelled_while_queued"] += 1
            if not run.done.is_set():
                phase.errors["request_unfinished"] += 1


async def main() -> None:
    setup = json.loads(Path(sys.argv[1]).read_text())  # noqa: ASYNC240 (before any load)
    crowd = Crowd(setup)
    stdin = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)

    def say(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    connector = aiohttp.TCPConnector(limit=0, ssl=crowd.tls)
    stop_rooms = asyncio.Event()
    async with aiohttp.ClientSession(connector=connector) as http:
        crowd.http = http
        opened = time.perf_counter()
        # Interpreters first, each going available: counsellors then open on a full roster.
        await crowd.connect_all(crowd.interpreters, setup["connect_at_once"])
        half = len(crowd.counsellors) // 2
        await crowd.connect_all(crowd.counsellors[:half], setup["connect_at_once"])
        # The instances' RSS here and at the end tells what the later sockets cost each,
        # without what the first ones also paid once (pools, caches, allocator arenas).
        say(f"HALF {len(crowd.by_id)}")
        await stdin.readline()
        await crowd.connect_all(crowd.counsellors[half:], setup["connect_at_once"])
        say(f"CONNECTED {len(crowd.by_id)} {time.perf_counter() - opened:.1f}")
        await stdin.readline()
        rooms = loop.create_task(crowd.read_rooms(setup["dsn"], stop_rooms))
        phases = []
        for rate in setup["rates"]:
            say(f"PHASE {rate} start")
            await stdin.readline()
            phase = Phase(rate)
            reads = crowd.room_reads

            async def sent(rate: float = rate, phase: Phase = phase, reads: int = reads) -> None:
                # The room reads are this process's own transactions in the window.
                phase.counts["room_reads"] = crowd.room_reads - reads
                phase.counts["languages_in_window"] = phase.counts["languages_updated"]
                say(f"PHASE {rate} sent")
                await stdin.readline()

            await crowd.run_phase(phase, setup["seconds"], setup["drain_s"], sent)
            say(f"PHASE {rate} end")
            await stdin.readline()
            phases.append(phase.summary())
        stop_rooms.set()
        await rooms
        for task in list(crowd.tasks):
            task.cancel()
        for user in crowd.interpreters + crowd.counsellors:
            user.closing = True
            if user.ws is not None and user.ws.transport is not None:
                user.ws.transport.close()
    say("RESULT " + json.dumps({"phases": phases, "room_reads": crowd.room_reads}))


if __name__ == "__main__":
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    asyncio.run(main())
