"""ICE servers handed to peers: Tolk's STUN and TURN servers, with TURN credentials per the
TURN REST API (time-limited HMAC), so the shared secret itself never leaves the server.

coturn checks them with `use-auth-secret` and `static-auth-secret=<the same secret>`:
username `<unix expiry>:<user id>`, credential base64(HMAC-SHA1(secret, username)).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from typing import Any

from infra.config import Settings


def turn_credential(secret: str, username: str) -> str:
    """The TURN REST API password for a username: base64 of HMAC-SHA1 with the secret."""
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def turn_username(user_id: str, expires_at: int) -> str:
    """The TURN REST API username: `<unix expiry>:<user id>`."""
    return f"{expires_at}:{user_id}"


def ice_servers_for(settings: Settings, user_id: str, now: datetime) -> list[dict[str, Any]]:
    """The RTCIceServer list for one user, now: STUN as is, TURN with fresh credentials.

    An empty list is a valid answer (a LAN needs no STUN); peers must still pass it
    explicitly, because aiortc adds Google's public STUN server when given none.
    """
    servers: list[dict[str, Any]] = []
    if settings.stun_urls:
        servers.append({"urls": list(settings.stun_urls)})
    if settings.turn_urls and settings.turn_secret is not None:
        username = turn_username(user_id, int(now.timestamp()) + settings.turn_ttl_s)
        servers.append(
            {
                "urls": list(settings.turn_urls),
                "username": username,
                "credential": turn_credential(settings.turn_secret.get_secret_value(), username),
            }
        )
    return servers
