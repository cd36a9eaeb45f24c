"""How an interpreter is named to counsellors: the number each profile is given when it is
made, and the centre's choice of name or number (`RosterSetting`)."""

from __future__ import annotations

from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from infra.counters import add_one
from interpreters.models import RosterSetting, ShownAs

SETTING_ID = 1


async def roster_setting(session: AsyncSession) -> RosterSetting:
    """The centre's roster settings (the defaults when none were ever stored)."""
    return await session.get(RosterSetting, SETTING_ID) or RosterSetting(id=SETTING_ID)


async def next_interpreter_number(session: AsyncSession) -> int:
    """The number for a new profile: one more than the last one given, never given twice."""
    # Raised in the row: two profiles made at once (two admins, two instances) get different
    # numbers; a deleted profile's is not reused.
    number = await add_one(
        session,
        col(RosterSetting.last_interpreter_number),
        col(RosterSetting.id) == SETTING_ID,
    )
    if number is None:  # the row is made by the migration; a hand-made schema may lack it
        session.add(RosterSetting(id=SETTING_ID, last_interpreter_number=1))
        await session.flush()
        return 1
    return number


async def set_shown_as(session: AsyncSession, shown_as: ShownAs) -> RosterSetting:
    """Whether counsellors see the interpreter's name or number from now on."""
    setting = await roster_setting(session)
    setting.interpreter_shown_as = shown_as
    session.add(setting)
    await session.flush()
    return setting
