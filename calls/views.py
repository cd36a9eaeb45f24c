"""A call as its participants see it (`wire.objects.CallView`), built from its rows."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from accounts.models import User
from calls.models import Call
from infra.fields import made_from
from interpreters.models import Interpreter, ShownAs
from interpreters.naming import roster_setting
from wire.objects import CallView, PartyView


class CallResponse(BaseModel):
    call: CallView


def call_view(
    call: Call,
    counsellor: User,
    interpreter: User,
    *,
    profile: Interpreter | None = None,
    shown_as: ShownAs = ShownAs.NAME,
    **billing: Any,
) -> CallView:
    """A call as both participants see it; billing adds its figures as keywords once ended.
    The interpreter is named by name or by number, as the centre's setting says."""
    duration = None
    if call.connected_at is not None and call.ended_at is not None:
        duration = max(0, int((call.ended_at - call.connected_at).total_seconds()))
    return made_from(
        CallView,
        call,
        counsellor=PartyView(id=counsellor.id, display_name=counsellor.display_name),
        interpreter=interpreter_party(interpreter, profile, shown_as),
        duration_s=duration,
        **billing,
    )


def interpreter_party(
    interpreter: User, profile: Interpreter | None, shown_as: ShownAs
) -> PartyView:
    """An interpreter as counsellors see them: by name or by number, as the centre says,
    with their agency."""
    by_name = shown_as == ShownAs.NAME
    return PartyView(
        id=interpreter.id,
        display_name=interpreter.display_name if by_name else None,
        agency=profile.agency if profile else None,
        number=None if by_name or profile is None else profile.number,
    )


async def load_call_view(session: AsyncSession, call: Call, **billing: Any) -> CallView:
    """The view of a call, reading its two participants' names, the interpreter's agency
    and number, and whether the centre names interpreters by name or number."""
    users = await session.exec(
        select(User).where(col(User.id).in_([call.counsellor_id, call.interpreter_id]))
    )
    by_id = {u.id: u for u in users}
    profile = await session.get(Interpreter, call.interpreter_id)
    setting = await roster_setting(session)
    return call_view(
        call,
        by_id[call.counsellor_id],
        by_id[call.interpreter_id],
        profile=profile,
        shown_as=setting.interpreter_shown_as,
        **billing,
    )
