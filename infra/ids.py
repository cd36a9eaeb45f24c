"""Opaque identifiers: 128 random bits, URL-safe, never parsed by clients."""

import secrets


def new_id() -> str:
    """Return a fresh opaque id."""
    return secrets.token_urlsafe(16)
