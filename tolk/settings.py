"""Loading the settings: friendly one-line errors, and the signing secret made on first run."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError

from infra.config import Settings


class StartupError(Exception):
    """Tolk cannot start; the message says why and what to do."""


class SettingsError(Exception):
    """A setting is wrong; the message names the variable and says what is expected."""


def load_settings(**overrides: Any) -> Settings:
    """Read the settings from the environment (and `.env`), or raise SettingsError."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        name = "TOLK_" + str(err["loc"][0]).upper() if err["loc"] else "TOLK_*"
        raise SettingsError(f"{name}: {err['msg']}") from None
    if settings.secret_key is None:
        settings.secret_key = SecretStr(_stored_secret(settings))
    return settings


def secret_path(settings: Settings) -> Path:
    """Where the generated secret is kept: beside the SQLite file, else the working folder."""
    if settings.is_sqlite:
        db_path = settings.database_url.split("///", 1)[1]
        if db_path and db_path != ":memory:":
            return Path(db_path).resolve().parent / "tolk.secret"
    return Path("tolk.secret").resolve()


def _stored_secret(settings: Settings) -> str:
    path = secret_path(settings)
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(48)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value
