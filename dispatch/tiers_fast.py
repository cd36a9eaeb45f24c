"""A fast path for the pool tiers every wave is planned with: kept for a few seconds per
database instead of read at every wave, one round trip fewer on a new request's way to its
first offer.

The tiers change when an admin changes a pool, or an interpreter joins or leaves one or is
(de)activated: rarely. Such a change made by this process is seen at the next wave (the
pools' epoch grows at the ORM's flush of a pool, or of an interpreter's pool or active
flag, and again at its commit). One made by another instance reaches this one's waves
within `KEEP_S`; until then a wave is planned with the tiers as they were, so a tier that
has just lost its last member is found empty and the next is asked at once, and one that
has just gained members is asked from the next reading on. The plain path beside it, the
query at every wave, is what `TOLK_FAST_PATHS=false` takes; tests/dispatch/test_tiers_fast.py
holds the two to the same tiers.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from time import monotonic

from sqlalchemy import Connection, inspect
from sqlalchemy.orm import Session
from sqlalchemy.pool import Pool

from dispatch import candidates
from dispatch.policy import Tier
from infra.epochs import Epoch
from interpreters.models import Interpreter, InterpreterPool

KEEP_S = 5.0
"""How long tiers read once are used without reading them again."""


def _moved(interpreter: Interpreter) -> bool:
    attrs = inspect(interpreter).attrs
    return bool(attrs.pool_id.history.has_changes() or attrs.active.history.has_changes())


def _pools_touched(session: Session) -> bool:
    if any(isinstance(o, Interpreter | InterpreterPool) for o in (*session.new, *session.deleted)):
        return True
    # Presence changes make interpreters dirty too; only their pool and active flag count.
    return any(
        isinstance(o, InterpreterPool) or (isinstance(o, Interpreter) and _moved(o))
        for o in session.dirty
    )


POOLS = Epoch("pools", _pools_touched)
"""Grows with every change of this process to pools and their members."""


@dataclass(frozen=True, slots=True)
class _Kept:
    tiers: tuple[Tier, ...]
    until: float
    epoch: int


# Per connection pool, that is per database an app uses: tests run many apps in a process.
_kept: weakref.WeakKeyDictionary[Pool, _Kept] = weakref.WeakKeyDictionary()


def pool_tiers(conn: Connection) -> Sequence[Tier]:
    """`candidates.pool_tiers`, read at most once per `KEEP_S` unless pools changed here."""
    key, now, epoch = conn.engine.pool, monotonic(), POOLS.value
    kept = _kept.get(key)
    if kept is not None and kept.until > now and kept.epoch == epoch:
        return kept.tiers
    tiers = tuple(candidates.pool_tiers(conn))
    # Kept under the epoch of before the read: a change committed meanwhile has grown it.
    _kept[key] = _Kept(tiers, now + KEEP_S, epoch)
    return tiers
