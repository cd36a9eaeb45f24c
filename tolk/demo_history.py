"""Four weeks of made-up history for the demo, so that the statistics page has something to
show: requests on weekdays between 8 and 16 o'clock, most answered, some not, with their
offers, calls and the interpreters' online hours. Never for a production database."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from accounts import service
from accounts.models import User
from calls.models import Call, CallState
from dispatch.models import InterpretationRequest, Offer, OfferState, RequestState
from infra.db import Database
from interpreters.models import PresenceInterval

DAYS = 28
REQUESTS_PER_DAY = 24
# How often each language is asked for, roughly as in a German welcome centre.
DEMAND = {"uk": 8, "ar": 6, "fa-AF": 4, "tr": 2, "ti": 2, "ru": 2, "ro": 1, "kmr": 1}


async def seed_history(
    db: Database,
    now: datetime,
    zone: ZoneInfo,
    counsellors: list[str],
    speakers: dict[str, list[str]],
) -> int:
    """Write the history once (nothing when any request exists); returns the requests made.
    `counsellors` are user names; `speakers` maps a language to interpreter user names."""
    async with db.write() as session:
        if (await session.exec(select(InterpretationRequest.id).limit(1))).first() is not None:
            return 0
        users = await _users(session, [*counsellors, *(n for v in speakers.values() for n in v)])
        ids = {u.username: (u.id, u.organization_id, u.site_id) for u in users}
        rng = random.Random(2026)  # noqa: S311 (made-up demo data, no secret)
        today = now.astimezone(zone).date()
        made = 0
        for back in range(DAYS, 0, -1):
            day = today - timedelta(days=back)
            if day.weekday() >= 5:
                continue
            opening = datetime.combine(day, time(8), zone).astimezone(UTC)
            _online(session, ids, speakers, opening, rng)
            for _ in range(rng.randint(REQUESTS_PER_DAY // 2, REQUESTS_PER_DAY)):
                language = rng.choices(list(DEMAND), weights=list(DEMAND.values()))[0]
                at = opening + timedelta(seconds=rng.uniform(0, 8 * 3600))
                counsellor = ids[rng.choice(counsellors)]
                interpreter = ids[rng.choice(speakers[language])][0]
                await _request(session, rng, language, at, counsellor, interpreter)
                made += 1
    return made


async def _users(session: AsyncSession, names: list[str]) -> list[User]:
    found = []
    for name in sorted(set(names)):
        user = await service.find_user(session, name)
        if user is not None:
            found.append(user)
    return found


def _online(
    session: AsyncSession,
    ids: dict[str, tuple[str, str, str | None]],
    speakers: dict[str, list[str]],
    opening: datetime,
    rng: random.Random,
) -> None:
    for name in sorted({n for names in speakers.values() for n in names}):
        if rng.random() < 0.2:
            continue  # a day off
        start = opening + timedelta(minutes=rng.randint(-30, 60))
        session.add(
            PresenceInterval(
                interpreter_id=ids[name][0],
                started_at=start,
                ended_at=start + timedelta(hours=rng.uniform(4, 8)),
            )
        )


async def _request(
    session: AsyncSession,
    rng: random.Random,
    language: str,
    at: datetime,
    counsellor: tuple[str, str, str | None],
    interpreter: str,
) -> None:
    outcome = rng.random()
    state = (
        RequestState.ACCEPTED
        if outcome < 0.82
        else RequestState.EXPIRED
        if outcome < 0.92
        else RequestState.CANCELLED
    )
    request = InterpretationRequest(
        counsellor_id=counsellor[0],
        organization_id=counsellor[1],
        language=language,
        state=state,
        created_at=at,
        updated_at=at,
        expires_at=at + timedelta(minutes=5),
        site_id=counsellor[2],
    )
    session.add(request)
    await session.flush()  # offers and the call refer to it
    if rng.random() < 0.3:
        missed = rng.choice((OfferState.DECLINED, OfferState.EXPIRED))
        session.add(_offer(request.id, interpreter, at, missed, at + timedelta(seconds=20)))
    if state != RequestState.ACCEPTED:
        return
    accepted = at + timedelta(seconds=rng.lognormvariate(3.0, 0.8))
    connected = accepted + timedelta(seconds=rng.uniform(1, 5))
    call = Call(
        request_id=request.id,
        counsellor_id=counsellor[0],
        interpreter_id=interpreter,
        organization_id=counsellor[1],
        language=language,
        state=CallState.ENDED,
        created_at=accepted,
        connected_at=connected,
        ended_at=connected + timedelta(minutes=rng.uniform(5, 45)),
        end_reason="hangup",
        site_id=counsellor[2],
    )
    request.call_id = call.id
    session.add(_offer(request.id, interpreter, at, OfferState.ACCEPTED, accepted))
    session.add(call)


def _offer(
    request_id: str, interpreter: str, at: datetime, state: OfferState, decided: datetime
) -> Offer:
    return Offer(
        request_id=request_id,
        interpreter_id=interpreter,
        state=state,
        created_at=at,
        expires_at=at + timedelta(seconds=20),
        decided_at=decided,
    )
