"""Password hashing with argon2id, run off the event loop (a hash costs tens of ms)."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

# OWASP's minimum for argon2id: 19 MiB of memory, 2 iterations, 1 lane.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=Type.ID)
# Verifying against this keeps the time of a login with an unknown username the same as
# with a known one, so the answer's timing does not tell which usernames exist.
_DUMMY_HASH = _HASHER.hash("tolk-dummy-password")


def hash_password_sync(password: str) -> str:
    """Hash a password (blocking; for the CLI and seeding)."""
    return _HASHER.hash(password)


async def hash_password(password: str) -> str:
    """Hash a password in a worker thread."""
    return await asyncio.to_thread(_HASHER.hash, password)


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether the password matches; with no hash it spends the same time and says no."""
    return await asyncio.to_thread(_verify, password_hash, password)


def password_problem(password: str, min_length: int, username: str = "") -> str | None:
    """Why a password is too weak, or None when it is acceptable."""
    if len(password) < min_length:
        return f"must have at least {min_length} characters"
    if len(password) > 256:
        return "must have at most 256 characters"
    if username and password.lower() == username.lower():
        return "must differ from the username"
    if len(set(password)) < 4:
        return "is too repetitive"
    return None
