"""Epochs: numbers that grow whenever rows of some kind may change in this process, so that
a cache filled from those rows can tell that it may be out of date."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session


class Epoch:
    """Grows when a flush makes `touches(session)` true, and again at that session's
    commit: something read between the two must not count as current. Bulk statements,
    which no flush sees, call `changed(session)` themselves."""

    def __init__(self, name: str, touches: Callable[[Session], bool]) -> None:
        self.value = 0
        self._key = f"tolk_epoch_{name}"
        self._touches = touches
        event.listen(Session, "before_flush", self._on_flush)
        event.listen(Session, "after_commit", self._on_commit)
        event.listen(Session, "after_rollback", self._on_rollback)

    def changed(self, session: Session) -> None:
        """Rows of this kind change in `session`: grow now and at its commit."""
        self.value += 1
        session.info[self._key] = True

    def _on_flush(self, session: Session, _context: object, _instances: object) -> None:
        if self._touches(session):
            self.changed(session)

    def _on_commit(self, session: Session) -> None:
        if session.info.pop(self._key, False):
            self.value += 1

    def _on_rollback(self, session: Session) -> None:
        session.info.pop(self._key, None)
