"""`tolk backup`: an online, consistent copy of the SQLite database, taken with SQLite's
own backup API while the service keeps running."""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path

from tolk.settings import StartupError


def sqlite_file(database_url: str) -> Path:
    """The file of a `sqlite+aiosqlite:///path.db` URL."""
    path = database_url.split("///", 1)[1] if "///" in database_url else ""
    if not path or path == ":memory:":
        raise StartupError("TOLK_DATABASE_URL: an in-memory database cannot be backed up")
    return Path(path)


def backup_sqlite(source: Path, target: Path) -> int:
    """Copy the database at `source` into the new file `target`; returns its size.

    One read transaction copies every page: in WAL mode it sees one committed moment and
    never blocks the server's writers. The copy is written beside the target and renamed
    at the end, so `target` is either absent or complete, and it is one self-contained
    file (rollback journal, no -wal beside it).
    """
    if not source.is_file():
        raise StartupError(f"TOLK_DATABASE_URL: there is no database at {source}")
    if target.exists():
        raise StartupError(f"{target} exists already: choose a new file")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(partial)) as dst:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")
        (verdict,) = dst.execute("PRAGMA quick_check").fetchone()
    if verdict != "ok":
        partial.unlink(missing_ok=True)
        raise StartupError(f"the copy failed its check ({verdict}); nothing was written")
    os.replace(partial, target)
    return target.stat().st_size
