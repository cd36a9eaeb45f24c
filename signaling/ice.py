"""ICE servers handed to peers: STUN and TURN from settings, with TURN REST API credentials.

Minimal version written for call rooms (`call.joined` carries the list); the ICE/TURN work
of issue 5 owns this module and may replace it, keeping `ice_servers_for`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from typing import Any

from infra.config import Settings


def turn_credentials(secret: str, user_id: str, expires_unix: int) -> tuple[str, str]:
    """TURN REST API credentials: username `<expiry>:<user id>`, base64 HMAC-SHA1 password."""
    username = f"{expires_unix}:{user_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def ice_servers_for(settings: Settings, user_id: str, now: datetime) -> list[dict[str, Any]]:
    """The RTCIceServer list for one user: STUN as is, TURN with time-limited credentials."""
    servers: list[dict[str, Any]] = []
    if settings.stun_urls:
        servers.append({"urls": list(settings.stun_urls)})
    if settings.turn_urls and settings.turn_secret is not None:
        expires = int(now.timestamp()) + settings.turn_ttl_s
        username, credential = turn_credentials(
            settings.turn_secret.get_secret_value(), user_id, expires
        )
        servers.append(
            {"urls": list(settings.turn_urls), "username": username, "credential": credential}
        )
    return servers
