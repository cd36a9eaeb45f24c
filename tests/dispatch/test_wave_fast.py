"""A new request and its first offers written in one statement on PostgreSQL
(dispatch/wave_fast.py) store what the plain path beside it stores."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Connection
from sqlmodel import col, select

from dispatch import service
from dispatch.models import InterpretationRequest, Offer, RequestState
from infra.config import Settings
from infra.db import Database
from tests.factories import Factory, make_interpreter


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
async def test_a_request_and_its_offers_are_written_alike_on_both_paths(
    factory: Factory, db: Database, settings: Settings, fast: bool
) -> None:
    """The request is stored as given, its offers pending until the wave's deadline, and an
    interpreter already holding a pending offer is skipped (a request whose every candidate
    was taken is stored all the same, without offers)."""
    counsellor = await factory.user()
    a, b, c = [await make_interpreter(factory, ["uk"]) for _ in range(3)]
    now = factory.clock.now()
    deadline = now + timedelta(seconds=30)
    chosen = settings.model_copy(update={"fast_paths": fast})

    def ask(conn: Connection, to: list[str]) -> tuple[str, list[str]]:
        req = InterpretationRequest(
            counsellor_id=counsellor.id,
            organization_id=counsellor.organization_id,
            language="uk",
            state=RequestState.OFFERING,
            created_at=now,
            updated_at=now,
            expires_at=now + timedelta(minutes=10),
            wave_deadline=deadline,
            waves=1,
            audio_only=True,
        )
        made = service._insert_offers(conn, req, to, now, deadline, chosen, with_request=True)
        assert all(offer_id for offer_id, _ in made)
        return req.id, [interpreter for _, interpreter in made]

    first, first_offered = await db.write_sync(ask, [a.id, b.id])
    second, second_offered = await db.write_sync(ask, [b.id, c.id])
    third, third_offered = await db.write_sync(ask, [a.id, c.id])
    assert (first_offered, second_offered, third_offered) == ([a.id, b.id], [c.id], [])
    async with db.read() as session:
        requests = {r.id: r for r in (await session.exec(select(InterpretationRequest))).all()}
        offers = (await session.exec(select(Offer).order_by(col(Offer.interpreter_id)))).all()
    assert set(requests) == {first, second, third}
    for req in requests.values():
        assert (req.state, req.waves, req.audio_only, req.counsellor_id) == (
            "offering",
            1,
            True,
            counsellor.id,
        )
        assert (req.created_at, req.wave_deadline) == (now, deadline)
    assert sorted((o.request_id, o.interpreter_id) for o in offers) == sorted(
        [(first, a.id), (first, b.id), (second, c.id)]
    )
    for offer in offers:
        assert (offer.state, offer.created_at, offer.expires_at) == ("pending", now, deadline)
