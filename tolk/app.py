"""The app factory: one place that builds Tolk from its parts, for production and tests."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from accounts.access import IDENTITY_CACHE, INTERPRETS, TOKEN_USES, IdentityCache, authorize
from accounts.audit_routes import api as audit_api
from accounts.hooks import USER_DEACTIVATED_HOOKS
from accounts.keys import LOGIN_THROTTLE, OPERATIONS
from accounts.models import Role
from accounts.routes import api as accounts_api
from accounts.scopes import SOCKET, Operations
from accounts.site_routes import api as sites_api
from accounts.terminal_routes import api as terminals_api
from accounts.throttle import LoginThrottle
from billing.routes import api as billing_api
from billing.usage import record_usage
from calls.ending import CALL_ENDING, CallEnding
from calls.hooks import CALL_ENDED_HOOKS
from calls.lifecycle import count_live_calls
from calls.models import CallState
from calls.routes import api as calls_api
from dispatch.announce import PUBLISHER, NewsPublisher
from dispatch.booking_routes import api as bookings_api
from dispatch.booking_sweep import sweep_bookings_due
from dispatch.listeners import offer_queued_on_presence, sweep_due, withdraw_on_deactivation
from dispatch.queue import queue_figures
from dispatch.room_routes import api as rooms_api
from dispatch.routes import api as dispatch_api
from infra.appkeys import BUS, CLOCK, DATABASE, INSTANCE_ID, SETTINGS
from infra.bus import Bus, LocalBus, open_bus
from infra.clock import Clock, SystemClock
from infra.config import Settings
from infra.db import Database, make_engine
from infra.forwarded import TrustedProxies
from infra.headers import install_answer_headers
from infra.http import error_middleware, request_context_middleware
from infra.ids import new_id
from infra.jobs import Jobs
from infra.loop_watch import LoopWatch
from infra.metrics import METRICS, Metrics, metrics_middleware
from infra.openapi import AUTHORIZE, ApiRoutes, SocketSpec, build_openapi
from infra.outages import Unavailable
from infra.tasks import Tasks
from interpreters.events import PresenceNews
from interpreters.jobs import refresh_presence, sweep_presence
from interpreters.keys import PRESENCE_NEWS, QUEUE_FIGURES
from interpreters.live import LanguageBroadcaster, figures_message
from interpreters.routes import api as roster_api
from interpreters.service import has_active_profile
from signaling.consultations import install_consultations
from signaling.figures import FIGURE_WATCHERS, SPREAD_S, FigureWatchers, Pacing
from signaling.hub import Hub
from signaling.keys import HUB
from signaling.mirror import RoomServices
from signaling.precall import ECHO_PEERS, EchoPeers
from signaling.presence import presence_hooks
from signaling.rooms import FAST_RELAY, ROOMS, FastRelay, Rooms
from signaling.routes import api as signaling_api
from signaling.socket import close_all_sockets, websocket
from signaling.state import resync_after_gap, send_changes, send_current_state
from stats.routes import api as stats_api
from tolk import retention, schema
from tolk.health import OPENAPI
from tolk.health import routes as health_routes
from tolk.pages import add_pages
from tolk.settings import StartupError
from wire import message_models
from wire.client import AnyClientMessage
from wire.server import AnyServerMessage

log = structlog.get_logger(__name__)

JOBS = web.AppKey("jobs", Jobs)
API_ROUTES: tuple[ApiRoutes, ...] = (
    accounts_api,
    audit_api,
    sites_api,
    terminals_api,
    roster_api,
    signaling_api,
    dispatch_api,
    rooms_api,
    bookings_api,
    calls_api,
    billing_api,
    stats_api,
)


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    search_path: str | None = None,
) -> web.Application:
    """Build the application; resources open on start-up and close on clean-up."""
    app = web.Application(middlewares=_middlewares(settings), client_max_size=4 * 1024 * 1024)
    _hold_parts(app, settings, clock or SystemClock())
    app.cleanup_ctx.extend(
        [
            _loop_watch_ctx,
            _login_throttle_ctx,
            functools.partial(_database_ctx, search_path=search_path),
            _bus_ctx,
            _scheduler_ctx,
            _calls_ctx,
            _echo_peers_ctx,
        ]
    )
    # aiohttp waits (up to 60 s) for open handlers before the cleanup contexts run; an open
    # socket is such a handler, so sockets must be told to go away before that wait. Jobs
    # stop starting first: closing thousands of sockets holds the loop for seconds, and
    # every job due meanwhile would be logged as missed.
    app.on_shutdown.extend([_pause_jobs, close_all_sockets])
    for api in API_ROUTES:
        app.router.add_routes(api.table)
    app.router.add_routes(health_routes)
    app.router.add_get("/ws", websocket)
    add_pages(app)
    install_answer_headers(app)
    return app


def _middlewares(settings: Settings) -> list[Middleware]:
    middlewares: list[Middleware] = [request_context_middleware, metrics_middleware]
    if settings.trusted_proxies:
        # First, so that every later middleware and handler sees the client, not the proxy.
        middlewares.insert(0, TrustedProxies(settings.trusted_proxies).middleware)
    return [*middlewares, error_middleware]


def _hold_parts(app: web.Application, settings: Settings, clock: Clock) -> None:
    """The parts that need no start-up: settings, clock, checks, hooks and documents."""
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[INSTANCE_ID] = new_id()
    app[METRICS] = Metrics()
    app[AUTHORIZE] = authorize
    app[LOGIN_THROTTLE] = LoginThrottle(
        per_user=settings.login_max_failures_per_user,
        per_address=settings.login_max_failures_per_address,
        window_s=settings.login_failure_window_s,
        redis_url=settings.redis_url,
        namespace=settings.redis_namespace,
    )
    if settings.identity_cache_s > 0:
        app[IDENTITY_CACHE] = IdentityCache(settings.identity_cache_s)
    app[TOKEN_USES] = Tasks()
    app[QUEUE_FIGURES] = queue_figures
    app[INTERPRETS] = lambda user_id: has_active_profile(app[DATABASE], user_id)
    app[USER_DEACTIVATED_HOOKS] = []
    app[CALL_ENDED_HOOKS] = []
    app[CALL_ENDED_HOOKS].append(
        functools.partial(
            record_usage,
            zone=ZoneInfo(settings.timezone),
            default_currency=settings.billing_default_currency,
        )
    )
    app[OPERATIONS] = operations()
    app[OPENAPI] = build_openapi(
        [spec for routes in API_ROUTES for spec in routes.specs],
        "Tolk",
        "1",
        SocketSpec("/ws", message_models(AnyClientMessage), message_models(AnyServerMessage)),
    )


async def _database_ctx(app: web.Application, search_path: str | None) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    await _ensure_schema(settings, search_path)
    engine = make_engine(
        settings.database_url, search_path=search_path, fast_sqlite=settings.fast_paths
    )
    db = Database(engine)
    app[DATABASE] = db
    yield
    await app[TOKEN_USES].settled()
    await db.close()


async def _bus_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, clock, db = app[SETTINGS], app[CLOCK], app[DATABASE]
    try:
        bus = await open_bus(
            settings.redis_url, settings.redis_namespace, outbox_s=settings.signal_hold_s
        )
    except Exception as exc:
        raise StartupError(f"TOLK_REDIS_URL: Redis is not reachable ({exc})") from None
    app[BUS] = bus
    hub = app[HUB] = Hub(
        bus,
        settings.ws_heartbeat_s,
        now=clock.now,
        lookback_s=settings.signal_hold_s,
        fast_writes=settings.fast_paths,
    )
    hub.start()
    opened, closed = presence_hooks(db, clock, app[INSTANCE_ID], settings.presence_grace_s)
    hub.on_attach.append(opened)
    hub.on_disconnect.append(closed)
    broadcaster = LanguageBroadcaster(
        db, bus, lambda: app[QUEUE_FIGURES], clock, interval_s=settings.languages_interval_s
    )
    await broadcaster.start()
    watchers = await _start_figure_watchers(app, hub, bus)
    presence = app[PRESENCE_NEWS] = PresenceNews(bus, broadcaster)
    publisher = app[PUBLISHER] = NewsPublisher(bus, presence, app[METRICS])
    presence.listeners.append(
        functools.partial(offer_queued_on_presence, db, clock, settings, publisher)
    )
    # Requests still waiting of a user deactivated (or a terminal revoked) end at once.
    app[USER_DEACTIVATED_HOOKS].append(
        functools.partial(withdraw_on_deactivation, db, clock, settings, publisher)
    )
    hooks = app[CALL_ENDED_HOOKS]
    app[CALL_ENDING] = CallEnding(db, clock, settings, bus, presence, hooks)
    hub.on_connect.append(send_current_state(db, clock))
    app[METRICS].before_scrape.append(
        functools.partial(_read_live_figures, app[METRICS], hub, bus, db)
    )
    hub.on_resync.append(send_changes(db))
    bus.on_reconnect(resync_after_gap(clock, hub, broadcaster))
    # Figures skipped while the database was away go out once it answers again (even if
    # equal to the last ones sent: a page may have asked meanwhile and been refused).
    db.outages.on_recovered.append(broadcaster.resend)
    _watch_outages(app[METRICS], db, bus, hub)
    yield
    await broadcaster.close()
    await watchers.close()
    await close_all_sockets(app)
    await bus.close()


async def _start_figure_watchers(app: web.Application, hub: Hub, bus: Bus) -> FigureWatchers:
    """Which sockets here get the live language figures (signaling/figures.py)."""
    db, clock = app[DATABASE], app[CLOCK]
    watchers = app[FIGURE_WATCHERS] = FigureWatchers(
        bus,
        lambda: figures_message(db, app[QUEUE_FIGURES], clock),
        clock,
        # Spread well within the time between two publications.
        pacing=Pacing(spread_s=min(SPREAD_S, app[SETTINGS].languages_interval_s / 4)),
    )
    await watchers.start()
    hub.on_attach.append(watchers.attached)
    hub.on_disconnect.append(watchers.detached)
    app[METRICS].readings.gauge(
        "tolk_sockets_watching_languages",
        "Sockets on this instance that get the live language figures",
        lambda: watchers.count,
    )
    return watchers


async def _pause_jobs(app: web.Application) -> None:
    app[JOBS].pause()


async def _scheduler_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, clock, db = app[SETTINGS], app[CLOCK], app[DATABASE]
    jobs = app[JOBS] = Jobs(AsyncIOScheduler(timezone="UTC"))
    jobs.every(settings.sweep_interval_s, sweep_presence, db, clock, app[PRESENCE_NEWS])
    jobs.every(settings.ws_heartbeat_s, refresh_presence, db, clock, settings, app[INSTANCE_ID])
    jobs.every(settings.sweep_interval_s, sweep_due, db, clock, settings, app[PUBLISHER])
    jobs.every(settings.sweep_interval_s, sweep_bookings_due, db, clock, settings, app[PUBLISHER])
    jobs.every(retention.INTERVAL_S, retention.purge_in_turn, db, clock, settings, app[INSTANCE_ID])
    if db.dialect == "sqlite":
        # Keeps SQLite's write-ahead log short, outside any request (see Database.checkpoint).
        jobs.every(1.0, db.checkpoint, name="checkpoint_database")
    jobs.scheduler.start()
    yield
    await jobs.stop()


async def _loop_watch_ctx(app: web.Application) -> AsyncIterator[None]:
    metrics = app[METRICS]
    async with LoopWatch(metrics.loop_lag, metrics.gc_pause).watching():
        yield


async def _login_throttle_ctx(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[LOGIN_THROTTLE].close()


async def _echo_peers_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[ECHO_PEERS] = EchoPeers(
        settings.precall_max_peers, settings.precall_max_s, settings.precall_counsellor_slots
    )
    yield
    await app[ECHO_PEERS].close_all()


async def _calls_ctx(app: web.Application) -> AsyncIterator[None]:
    settings, hub = app[SETTINGS], app[HUB]
    services = RoomServices(
        bus=app[BUS],
        db=app[DATABASE],
        clock=app[CLOCK],
        settings=settings,
        instance_id=app[INSTANCE_ID],
    )
    rooms = app[ROOMS] = Rooms(services)
    if settings.fast_paths:
        app[FAST_RELAY] = FastRelay(rooms, app[METRICS])
        if isinstance(app[BUS], LocalBus):
            # One instance: the hub holds every socket a signal can be for.
            rooms.hand_over = hub.hand_over
    hub.on_connect.append(rooms.on_connect)
    hub.on_disconnect.append(rooms.leave_all)
    # News of who is in a call may be lost in a gap of the bus: the rooms re-read it.
    app[BUS].on_reconnect(lambda _down_s: rooms.refresh_soon())
    consultations = install_consultations(app, services)
    hub.on_connect.append(consultations.on_connect)
    hub.on_disconnect.append(consultations.leave_all)
    jobs = app[JOBS]
    # Seen-times twice per heartbeat: a killed instance loses at most one heartbeat.
    seen = jobs.every(settings.ws_heartbeat_s / 2, rooms.heartbeat, name="call_heartbeat")
    sweep = jobs.every(settings.sweep_interval_s, app[CALL_ENDING].sweep, name="sweep_calls")
    room_seen = jobs.every(
        settings.ws_heartbeat_s / 2, consultations.heartbeat, name="consultation_heartbeat"
    )
    room_sweep = jobs.every(settings.sweep_interval_s, consultations.sweep, app, name="sweep_rooms")
    yield
    seen.remove()
    sweep.remove()
    room_seen.remove()
    room_sweep.remove()
    await jobs.wait(5)
    await rooms.close()
    await consultations.close()


async def _read_live_figures(metrics: Metrics, hub: Hub, bus: Bus, db: Database) -> None:
    """The gauges read at scrape time: sockets per role, live calls, bus reconnects."""
    by_role = hub.sockets_by_role()
    for role in Role:
        metrics.sockets.labels(role.value).set(by_role.get(role.value, 0))
    metrics.bus_reconnected(bus.stats.reconnects)
    try:
        async with db.read() as session:
            live = await count_live_calls(session)
    except Unavailable:
        return  # the metrics still answer; tolk_database_up says why these did not move
    for state in (CallState.CONNECTING, CallState.CONNECTED):
        metrics.calls_live.labels(state.value).set(live.get(state.value, 0))


def _watch_outages(metrics: Metrics, db: Database, bus: Bus, hub: Hub) -> None:
    """The state of the database and the bus, and what their outages cost, at /metrics."""
    readings = metrics.readings
    readings.gauge(
        "tolk_database_up", "1 when the database answered its last use", lambda: db.outages.is_up
    )
    readings.counter(
        "tolk_database_outages", "Times the database became unreachable", lambda: db.outages.count
    )
    readings.gauge(
        "tolk_bus_connected",
        "1 while the bus's subscription is in force",
        lambda: bus.stats.connected,
    )
    readings.counter(
        "tolk_bus_publish_retries",
        "Messages that waited in the bus outbox during an outage and were sent later",
        lambda: bus.stats.publish_retries,
    )
    readings.counter(
        "tolk_bus_publish_dropped",
        "Messages dropped from the bus outbox (too old or too many)",
        lambda: bus.stats.publish_dropped,
    )
    readings.counter(
        "tolk_socket_resyncs",
        "Open sockets re-read from the database after a gap in the bus",
        lambda: hub.resyncs,
    )


def operations() -> Operations:
    """Every operation an API token's scope can name: the API's, by tag, and the socket."""
    ops = Operations()
    for routes in API_ROUTES:
        for spec in routes.specs:
            ops.add(spec.method, spec.path, spec.tag, spec.roles)
    ops.add("GET", "/ws", SOCKET, ("any",))
    return ops


async def _ensure_schema(settings: Settings, search_path: str | None) -> None:
    url = settings.database_url
    head = schema.head_revision()
    try:
        current = await schema.current_revision(url, search_path)
    except Exception as exc:
        raise StartupError(f"TOLK_DATABASE_URL: cannot open the database ({exc})") from None
    if current == head:
        return
    if settings.is_sqlite:
        log.info("schema_upgrade", from_revision=current, to_revision=head)
        await schema.upgrade(url, search_path)
        return
    raise StartupError(
        f"the database schema is at {current or 'nothing'}, this Tolk needs {head}: "
        "run `tolk migrate` first"
    )
