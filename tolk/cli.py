"""The `tolk` command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import SQLAlchemyError

from accounts.models import Role
from infra.clock import SystemClock
from infra.config import Settings
from infra.db import Database, make_engine
from infra.errors import TolkError
from tolk.logging import configure_logging
from tolk.settings import SettingsError, StartupError, load_settings

# Each command imports what only it needs inside its function: a cron job exporting
# usage should not pay for importing aiortc and the whole web app.


def _serve(settings: Settings, _args: argparse.Namespace) -> None:
    _return_large_blocks()
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:  # uvloop is optional on platforms without wheels
        pass
    from aiohttp import web

    from tolk.app import create_app

    app = create_app(settings)
    app.on_startup.append(_tune_gc)
    web.run_app(app, host=settings.host, port=settings.port, access_log=None, print=None)


# A server holding 10,000 sockets has well over a million GC-tracked objects, and a full
# collection walks all of them: a 0.6-0.9 s stall on this machine. A full pass runs once
# the objects promoted to the oldest generation since the last one exceed a quarter of
# it; promotions are the young objects that happen to be alive when a younger generation
# is collected, i.e. mostly the in-flight requests' objects. With Python's default of a
# young collection every 700 allocations, full passes came every ~10-20 s under 20
# requests/s (bench/results/dispatch_latency.md). Every 5,000 promotes few enough that no
# full pass came in any phase of the national-size run or at 20 requests/s with 10,000
# sockets. Not more: a young collection walks every object made since the last one,
# scattered over a heap of hundreds of MB, and its pause grows faster than their number:
# every 50,000 allocations, each held the loop for 30-120 ms (every ~45 s per instance at
# national size), the top of the requests' p99; every 5,000, 2-6 ms, and the generation-1
# pass every 20 of those 13-53 ms (bench/results/scale.md, 2026-12-06). Garbage cycles
# are still collected, later.
# Everything alive once the app has started (modules, the ORM's mappers, compiled
# caches) lives as long as the process: `gc.freeze()` takes it out of every pass. It is
# called once only: freezing later would also freeze sockets' objects, whose cycles
# would then never be collected after the sockets close.
_GC_THRESHOLDS = (5_000, 20, 10)


# glibc maps a block of 128 KiB or more on its own and unmaps it when freed, but after
# freeing one it raises that threshold to the block's size, so the next blocks of that size
# come from the heap of the thread that asks and stay resident after they are freed. Each
# login's password check (argon2id, 19 MiB, on a worker thread) thus left 19 MiB behind
# in every worker thread's heap: 10 logins at once took an instance from 142 to 269 MB.
# A fixed threshold of 1 MiB keeps such blocks mapped on their own: 164 MB after the same
# logins (bench/results/scale.md, "Memory").
# Fixing it also fixes the trim threshold at its 128 KiB start (glibc would have raised it
# with the other, to twice the block): the heap's free top, which glibc trims back to
# 128 KiB, then hovers at that line, and a relayed signal's few KiB, freed at the top and
# asked for again, were handed back to the system and faulted in anew: ~one page fault per
# relayed message, 8 % of the relay's CPU. Trimming only past 2 MiB (glibc's own rule for
# a 1 MiB block) lets the top breathe (bench/results/signaling_relay.md, 2026-12-06 13:40).
_MMAP_THRESHOLD = 1 << 20
_TRIM_THRESHOLD = 2 << 20
# mallopt's parameter numbers, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
_M_TRIM_THRESHOLD = -1


def _return_large_blocks() -> None:
    """Have glibc hand blocks of 1 MiB and more back to the system when they are freed, and
    the heap's free top once it passes 2 MiB."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None:
        return
    libc = ctypes.CDLL(name)
    mallopt = getattr(libc, "mallopt", None)  # glibc only (musl has none)
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
        mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)


async def _tune_gc(_app: Any) -> None:
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(*_GC_THRESHOLDS)


def _migrate(settings: Settings, _args: argparse.Namespace) -> None:
    from tolk import schema

    asyncio.run(schema.upgrade(settings.database_url))
    print(f"database is at schema {schema.head_revision()}")


async def _create_user(settings: Settings, args: argparse.Namespace) -> None:
    from accounts import audit, service
    from accounts.passwords import hash_password_sync

    password = args.password or secrets.token_urlsafe(12)
    db = Database(make_engine(settings.database_url))
    now = SystemClock().now()
    try:
        async with db.write() as session:
            org = await service.get_or_create_organization(session, args.organization, "", now)
            user = await service.create_user(
                session,
                username=args.username,
                password_hash=hash_password_sync(password),
                display_name=args.display_name or args.username,
                role=Role(args.role),
                organization_id=org.id,
                now=now,
            )
            await audit.record(
                session,
                audit.command_line(),
                audit.Action.USER_CREATED,
                now,
                audit.Target("user", user.id, user.username),
                role=user.role.value,
                organization_id=org.id,
            )
    finally:
        await db.close()
    print(f"created {user.role.value} {user.username} in {org.name}")
    if not args.password:
        print(f"password: {password}")


async def _seed_demo(settings: Settings, _args: argparse.Namespace) -> None:
    from tolk.demo import seed_demo

    db = Database(make_engine(settings.database_url))
    try:
        logins = await seed_demo(db, SystemClock().now(), ZoneInfo(settings.timezone))
    finally:
        await db.close()
    print("Demo logins (username / password / role):")
    for login in logins:
        print(f"  {login.username:<16} {login.password:<22} {login.role}")


async def _export_usage(settings: Settings, args: argparse.Namespace) -> None:
    # Imported here: the other commands need none of billing's export machinery.
    from zoneinfo import ZoneInfo

    from accounts import audit
    from billing.export import ExportKind, UsageFilter, export_usage
    from infra.period import check_period, parse_bounds
    from interpreters.languages import normalize_tag

    zone = ZoneInfo(settings.timezone)
    start, end = parse_bounds(args.start, args.end, zone, ("--from", "--to"))
    check_period(start, end)
    language = normalize_tag(args.language) if args.language else None
    usage = UsageFilter(
        start, end, args.organization, language, args.interpreter, site_id=args.site
    )
    out = sys.stdout.buffer

    async def write(chunk: bytes) -> None:
        out.write(chunk)

    db = Database(make_engine(settings.database_url))
    now = SystemClock().now()
    try:
        async with db.write() as session:
            await audit.record(
                session,
                audit.command_line(),
                audit.Action.USAGE_EXPORTED,
                now,
                format=args.format,
                dialect=args.dialect,
                filters=json.loads(usage.describe()),
            )
        await export_usage(
            db,
            usage,
            ExportKind(args.format, args.dialect, args.lang, zone, settings.fast_paths),
            write,
            user_id=None,
            now=now,
            batch_rows=settings.usage_export_batch_rows,
        )
    finally:
        await db.close()
    out.flush()


def _run(
    coro_fn: Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, None]],
) -> Callable[[Settings, argparse.Namespace], None]:
    def run(settings: Settings, args: argparse.Namespace) -> None:
        asyncio.run(_upgraded(settings, coro_fn(settings, args)))

    return run


async def _upgraded(settings: Settings, coro: Coroutine[Any, Any, None]) -> None:
    # Commands that write need the schema; SQLite is upgraded in place, as `serve` does.
    if settings.is_sqlite:
        from tolk import schema

        await schema.upgrade(settings.database_url)
    await coro


def _sim_interpreter(settings: Settings, args: argparse.Namespace) -> None:
    from signaling.peers.rtc import use_host_addresses
    from signaling.peers.sim import SimOptions, run_sim_interpreter

    use_host_addresses(settings.ice_host_addresses)

    options = SimOptions(
        url=args.url,
        username=args.username,
        password=args.password,
        languages=tuple(args.languages or ()),
        accept_delay_s=args.accept_delay,
        hangup_after_s=args.hangup_after,
    )
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C before the loop runs
        asyncio.run(until_stopped(run_sim_interpreter(options)))


async def until_stopped(coro: Coroutine[Any, Any, None]) -> None:
    """Run `coro` until it ends or the first SIGINT or SIGTERM cancels it, once.

    Ctrl-C on `tolk demo` reaches every process of the demo and the demo then sends
    SIGTERM as well: a second cancel would cut short the clean-up the first one started.
    """
    task = asyncio.ensure_future(coro)
    loop = asyncio.get_running_loop()

    def stop() -> None:
        if not task.cancelling():
            task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def _backup(settings: Settings, args: argparse.Namespace) -> None:
    from pathlib import Path

    from tolk.backup import backup_sqlite, sqlite_file

    if not settings.is_sqlite:
        raise StartupError(
            "tolk backup copies an SQLite database; back up PostgreSQL with pg_dump "
            "(docs/operations.md)"
        )
    size = backup_sqlite(sqlite_file(settings.database_url), Path(args.path))
    print(f"backed up to {args.path} ({size} bytes)")


def _demo(settings: Settings, _args: argparse.Namespace) -> None:
    from tolk.launcher import run_demo

    raise SystemExit(run_demo(settings))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `tolk`."""
    parser = argparse.ArgumentParser(prog="tolk", description="Video interpreters on demand.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the service").set_defaults(fn=_serve)
    sub.add_parser("migrate", help="upgrade the database to the newest schema").set_defaults(
        fn=_migrate
    )
    create = sub.add_parser("create-user", help="create a user (and its organisation)")
    create.add_argument("username")
    # A guest has no account; a terminal is added with its device link (POST /api/admin/terminals).
    people = [r.value for r in Role if r not in (Role.GUEST, Role.TERMINAL)]
    create.add_argument("--role", required=True, choices=people)
    create.add_argument("--organization", required=True)
    create.add_argument("--password", help="generated and printed when left out")
    create.add_argument("--display-name")
    create.set_defaults(fn=_run(_create_user))
    sub.add_parser("seed-demo", help="fill an empty database with the demo roster").set_defaults(
        fn=_run(_seed_demo)
    )
    sim = sub.add_parser(
        "sim-interpreter", help="a simulated interpreter that answers calls with a test pattern"
    )
    sim.add_argument("--url", required=True, help="Tolk's address, e.g. http://127.0.0.1:8080")
    sim.add_argument("--username", required=True)
    sim.add_argument("--password", required=True)
    sim.add_argument("--languages", nargs="*", help="shown on the test pattern")
    sim.add_argument("--accept-delay", type=float, default=0.0, metavar="S")
    sim.add_argument("--hangup-after", type=float, default=None, metavar="S")
    sim.set_defaults(fn=_sim_interpreter)
    sub.add_parser(
        "demo", help="serve plus simulated interpreters for uk, ar and fa-AF (Ctrl-C stops)"
    ).set_defaults(fn=_demo)
    backup = sub.add_parser(
        "backup", help="copy the SQLite database to a new file while Tolk keeps running"
    )
    backup.add_argument("path", help="the new file (must not exist)")
    backup.set_defaults(fn=_backup)
    export = sub.add_parser(
        "export-usage", help="write usage records to stdout (as GET /api/usage does)"
    )
    export.add_argument("--from", dest="start", help="date (local start of day) or RFC 3339")
    export.add_argument("--to", dest="end", help="end of the period, exclusive")
    export.add_argument("--format", choices=["json", "csv", "xlsx"], default="csv")
    export.add_argument("--dialect", choices=["de"], help="German Excel CSV")
    export.add_argument("--lang", choices=["de", "en"], default="de", help="XLSX headers")
    export.add_argument("--organization", help="organisation id")
    export.add_argument("--language", help="language tag")
    export.add_argument("--interpreter", help="interpreter user id")
    export.add_argument("--site", help="site id")
    export.set_defaults(fn=_run(_export_usage))
    return parser


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `tolk` console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"tolk: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.log_format, settings.log_level)
    try:
        args.fn(settings, args)
    except (StartupError, TolkError) as exc:
        print(f"tolk: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        print(f"tolk: database error: {cause}", file=sys.stderr)
        raise SystemExit(1) from None
