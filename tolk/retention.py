"""Retention: operational data about people is deleted once it has served its purpose.

Requests, offers, calls with their presence rows, interpreters' ended online intervals,
ended login sessions and API tokens go after `TOLK_RETENTION_DAYS`, each batch first added
to the monthly summaries of the statistics (stats.summaries) in the same transaction;
the security event log and the export log after `TOLK_AUDIT_RETENTION_DAYS`; usage
records, which are accounting records, after `TOLK_USAGE_RETENTION_DAYS`. The job runs
hourly under one lease across all instances, deleting in small batches so that no write
transaction holds the database for long.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import and_, delete, or_, select
from sqlalchemy.sql import ColumnElement
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from accounts import audit
from accounts.models import ApiToken, AuditEvent
from accounts.service import purge_expired_sessions
from billing.models import ExportAudit, UsageRecord
from calls.models import Call, CallPresence, CallState
from dispatch.booking_models import Booking
from dispatch.models import InterpretationRequest, Offer
from dispatch.models import RequestState as R
from infra.clock import Clock
from infra.config import Settings
from infra.db import Database
from infra.leases import try_acquire
from interpreters.models import PresenceInterval
from stats import summaries

log = structlog.get_logger(__name__)

BATCH_ROWS = 1000
REQUEST_BATCH = 200
"""Requests per transaction; with their offers, call and presence about 1,000 rows."""
INTERVAL_S = 3600.0
_ENDED_REQUESTS = (R.ACCEPTED, R.CANCELLED, R.EXPIRED, R.FAILED)


@dataclass(frozen=True, slots=True)
class Cutoffs:
    """Rows older than these are deleted."""

    operational: datetime
    audit: datetime
    usage: datetime

    @classmethod
    def of(cls, settings: Settings, now: datetime) -> Cutoffs:
        """The cutoffs the settings give at `now`."""
        return cls(
            now - timedelta(days=settings.retention_days),
            now - timedelta(days=settings.audit_retention_days),
            now - timedelta(days=settings.usage_retention_days),
        )


async def _delete_batches(db: Database, table: Any, key: Any, where: ColumnElement[bool]) -> int:
    """Delete the rows matching `where`, BATCH_ROWS per transaction; returns how many."""
    total = 0
    while True:
        async with db.write() as session:
            batch = select(key).where(where).limit(BATCH_ROWS).scalar_subquery()
            result = await session.exec(delete(table).where(key.in_(batch)))
            deleted = int(result.rowcount or 0)
        total += deleted
        if deleted < BATCH_ROWS:
            return total


async def _purge_requests(db: Database, cutoff: datetime, zone: ZoneInfo) -> dict[str, int]:
    """Delete ended requests older than the cutoff with their offers, their call (when it
    ended before the cutoff too) and its presence rows: a batch of requests at a time,
    each batch one transaction found, summarised and deleted through the indexes."""
    r, c = InterpretationRequest, Call
    old = (
        select(col(r.id))
        .outerjoin(c, col(c.request_id) == col(r.id))
        .where(col(r.state).in_(_ENDED_REQUESTS), col(r.updated_at) < cutoff)
        .where(
            or_(
                col(c.id).is_(None),
                and_(col(c.state) == CallState.ENDED, col(c.ended_at) < cutoff),
            )
        )
        .limit(REQUEST_BATCH)
    )
    done = dict.fromkeys(("call_presence", "call", "offer", "interpretation_request"), 0)
    while True:
        async with db.write() as session:
            conn = await session.connection()
            ids = list((await conn.execute(old)).scalars().all())
            if ids:
                await summaries.summarise_requests(session, ids, zone)
                calls = select(col(c.id)).where(col(c.request_id).in_(ids))
                for table, where in (
                    (CallPresence, col(CallPresence.call_id).in_(calls)),
                    (Call, col(c.request_id).in_(ids)),
                    (Offer, col(Offer.request_id).in_(ids)),
                    (r, col(r.id).in_(ids)),
                ):
                    result = await session.exec(delete(table).where(where))
                    done[str(table.__tablename__)] += int(result.rowcount or 0)
        if len(ids) < REQUEST_BATCH:
            return done


async def _purge_intervals(db: Database, cutoff: datetime, zone: ZoneInfo) -> int:
    """Delete online intervals that ended before the cutoff, summarised first."""
    ended = select(col(PresenceInterval.id)).where(col(PresenceInterval.ended_at) < cutoff)
    total = 0
    while True:
        async with db.write() as session:
            conn = await session.connection()
            ids = list((await conn.execute(ended.limit(BATCH_ROWS))).scalars().all())
            if ids:
                await summaries.summarise_intervals(session, ids, zone)
                await session.exec(
                    delete(PresenceInterval).where(col(PresenceInterval.id).in_(ids))
                )
        total += len(ids)
        if len(ids) < BATCH_ROWS:
            return total


async def purge(db: Database, settings: Settings, now: datetime) -> dict[str, int]:
    """Delete everything past its period; returns the rows deleted per table."""
    cut = Cutoffs.of(settings, now)
    zone = ZoneInfo(settings.timezone)
    # Sealed first: rows of a sealed month are in its summary and go without adding.
    await summaries.seal_months(db, now, zone)
    done = await _purge_requests(db, cut.operational, zone)
    done["presence_interval"] = await _purge_intervals(db, cut.operational, zone)
    # A booked appointment is over a day after it started at the latest (480 minutes).
    done["booking"] = await _delete_batches(
        db, Booking, col(Booking.id), col(Booking.starts_at) < cut.operational - timedelta(days=1)
    )
    async with db.write() as session:
        done["login_session"] = await purge_expired_sessions(
            session, now, settings.session_idle_timeout_s
        )
    done["api_token"] = await _delete_batches(
        db,
        ApiToken,
        col(ApiToken.id),
        or_(
            col(ApiToken.revoked_at) < cut.operational,
            col(ApiToken.expires_at) < cut.operational,
        ),
    )
    done["audit_event"] = await _delete_batches(
        db, AuditEvent, col(AuditEvent.id), col(AuditEvent.at) < cut.audit
    )
    done["export_audit"] = await _delete_batches(
        db, ExportAudit, col(ExportAudit.id), col(ExportAudit.at) < cut.audit
    )
    done["usage_record"] = await _delete_batches(
        db, UsageRecord, col(UsageRecord.call_id), col(UsageRecord.connected_at) < cut.usage
    )
    deleted = {table: n for table, n in done.items() if n}
    if deleted:
        async with db.write() as session:
            await _audit_purge(session, now, deleted)
    return done


async def _audit_purge(session: AsyncSession, now: datetime, deleted: dict[str, int]) -> None:
    await audit.record(session, audit.SYSTEM, audit.Action.DATA_PURGED, now, None, **deleted)


async def purge_in_turn(db: Database, clock: Clock, settings: Settings, instance_id: str) -> None:
    """The hourly job: one instance at a time purges (the others find the lease taken)."""
    now = clock.now()
    async with db.write() as session:
        mine = await try_acquire(session, "retention", instance_id, now, INTERVAL_S * 0.9)
    if mine:
        await purge(db, settings, now)
