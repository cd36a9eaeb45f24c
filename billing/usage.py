"""Writing the usage record of an ended call: once, inside the transaction that ended it."""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from accounts.models import Organization, Site, User
from billing.models import Tariff, UsageRecord
from billing.rules import (
    TariffTerms,
    charge,
    choose_tariff,
    duration_seconds,
    local_date,
    split_languages,
)
from calls.models import Call
from infra.db import conflict_insert, dialect_of
from infra.fields import made_from
from interpreters.models import Interpreter, InterpreterPool, PoolTier

log = structlog.get_logger(__name__)

DEFAULT_ZONE = ZoneInfo("Europe/Berlin")
DEFAULT_CURRENCY = "EUR"
NO_TARIFF = ""
"""The tariff name of a record billed without any tariff (amount 0, flagged in the log)."""


def tariff_terms(row: Tariff) -> TariffTerms:
    """The rules' view of a tariff row."""
    return made_from(TariffTerms, row, languages=split_languages(row.languages))


async def record_usage(
    session: AsyncSession,
    call: Call,
    *,
    zone: ZoneInfo = DEFAULT_ZONE,
    default_currency: str = DEFAULT_CURRENCY,
) -> None:
    """Bill an ended call: write its one usage record (a CallEndedHook; idempotent).

    Calls that never connected are not billed. A second call for the same call (a double
    hangup, two instances) inserts nothing: the call id is the record's primary key and
    the insert does nothing on conflict, so a call can never be billed twice.
    """
    if call.connected_at is None or call.ended_at is None:
        return
    in_house = await _by_staff(session, call.interpreter_id)
    tariff = await _tariff_for(session, call, local_date(call.connected_at, zone), in_house)
    duration_s = duration_seconds(call.connected_at, call.ended_at)
    billable_s, amount, currency = _bill(call, duration_s, tariff, default_currency, in_house)
    values = await _record_values(session, call, tariff)
    values |= {
        "duration_s": duration_s,
        "billable_s": billable_s,
        "amount_cents": amount,
        "currency": currency,
        # One record per interpreter segment of a consultation, each billed once as a call.
        "room_id": call.room_id,
        "in_house": in_house,
    }
    statement = (
        conflict_insert(UsageRecord, dialect_of(session))
        .values(**values)
        .on_conflict_do_nothing(index_elements=["call_id"])
    )
    result = await session.exec(statement)
    if result.rowcount:
        log.info("usage_recorded", call_id=call.id, billable_s=billable_s, amount_cents=amount)


async def _by_staff(session: AsyncSession, interpreter_id: str) -> bool:
    """Whether the interpreter is in-house staff: in a pool of the in-house tier when the
    call ends."""
    tier = await session.exec(
        select(InterpreterPool.tier)
        .join(Interpreter, col(Interpreter.pool_id) == col(InterpreterPool.id))
        .where(col(Interpreter.user_id) == interpreter_id)
    )
    return tier.first() == PoolTier.IN_HOUSE


async def _tariff_for(
    session: AsyncSession, call: Call, started_on: date, in_house: bool
) -> TariffTerms | None:
    """The tariff that bills a call begun on `started_on` (the call's local date)."""
    rows = await session.exec(
        select(Tariff).where(
            or_(
                col(Tariff.organization_id).is_(None),
                Tariff.organization_id == call.organization_id,
            ),
            col(Tariff.valid_from) <= started_on,
        )
    )
    return choose_tariff(
        [tariff_terms(t) for t in rows.all()],
        call.organization_id,
        call.language,
        started_on,
        in_house,
    )


def _bill(
    call: Call,
    duration_s: int,
    tariff: TariffTerms | None,
    default_currency: str,
    in_house: bool,
) -> tuple[int, int, str]:
    """Billable seconds, amount in cents and currency; without a tariff the call is billed
    at 0 and the log says so (a staff call without one is free, as intended)."""
    if tariff is None:
        if not in_house:
            log.warning(
                "usage_without_tariff", call_id=call.id, organization_id=call.organization_id
            )
        return duration_s, 0, default_currency
    billed = charge(duration_s, tariff)
    return billed.billable_s, billed.amount_cents, tariff.currency


async def _record_values(
    session: AsyncSession, call: Call, tariff: TariffTerms | None
) -> dict[str, Any]:
    """The record's columns that name the call, its parties and its tariff, as they are
    now (a record keeps the names it was billed under)."""
    org = await session.get(Organization, call.organization_id)
    interpreter = await session.get(User, call.interpreter_id)
    site = await session.get(Site, call.site_id) if call.site_id else None
    return {
        "call_id": call.id,
        "connected_at": call.connected_at,
        "ended_at": call.ended_at,
        "language": call.language,
        "organization_id": call.organization_id,
        "organization": org.name if org else "",
        "cost_center": org.cost_center if org else "",
        "counsellor_id": call.counsellor_id,
        "interpreter_id": call.interpreter_id,
        "interpreter": interpreter.display_name if interpreter else "",
        "tariff_id": tariff.id if tariff else None,
        "tariff": tariff.name if tariff else NO_TARIFF,
        "end_reason": call.end_reason or "hangup",
        "site_id": call.site_id,
        "site": site.name if site else "",
    }
