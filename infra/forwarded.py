"""The client behind a reverse proxy: only a trusted proxy may tell Tolk the client's
address, scheme and host (`X-Forwarded-For`/`-Proto`/`-Host`, or `Forwarded`).

Everything downstream (the login throttle, the cookie's Secure flag, the Origin check,
HSTS, the address in logs) reads `request.remote`, `request.scheme` and `request.host`,
so this middleware runs first and is the only place that reads those headers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

from aiohttp import hdrs, web
from aiohttp_remotes import XForwardedFiltered
from aiohttp_remotes.exceptions import UntrustedIP
from aiohttp_remotes.utils import check_ip, parse_trusted_element

from infra.http import Handler

_Rule = IPv4Address | IPv6Address | IPv4Network | IPv6Network
_SEEN_AS = web.RequestKey("seen_as", web.Request)


def as_forwarded(request: web.Request) -> web.Request:
    """The request as the trusted proxy described it (or itself).

    Handlers already get that request; `on_response_prepare` hooks get aiohttp's own, so
    they ask here for the client's scheme and host.
    """
    seen: web.Request = request.get(_SEEN_AS, request)
    return seen


def _node_address(node: str) -> str:
    """The address of an RFC 7239 node: `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]:4711`."""
    node = node.strip()
    if node.startswith("["):
        return node[1:].split("]", 1)[0]
    if node.count(":") == 1:
        return node.split(":", 1)[0]
    return node


def _trusted(rules: Sequence[_Rule], value: str | None) -> bool:
    if not value:
        return False
    try:
        check_ip(rules, ip_address(_node_address(value)))
    except (UntrustedIP, ValueError):
        return False
    return True


class TrustedProxies:
    """A middleware honouring forwarded headers from the given addresses or networks only.

    aiohttp-remotes' strict middlewares refuse a request that did not pass the proxy (and
    a health check made on the host itself is such a request); its filtered one believes
    any peer. So the peer is checked here, and the library reads the headers of trusted
    peers: the client is the right-most address that is not itself a trusted proxy.
    """

    def __init__(self, proxies: Sequence[str]) -> None:
        self._rules: list[_Rule] = parse_trusted_element(proxies)
        self._x_forwarded = XForwardedFiltered(self._rules)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Rewrite the request's remote, scheme and host when its peer is a trusted proxy."""
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if not peer or not _trusted(self._rules, str(peer[0])):
            return await handler(request)

        async def seen_as(forwarded: web.Request) -> web.StreamResponse:
            request[_SEEN_AS] = forwarded
            return await handler(forwarded)

        if hdrs.X_FORWARDED_FOR in request.headers:
            return await self._x_forwarded.middleware(request, seen_as)
        if hdrs.FORWARDED in request.headers:
            return await seen_as(self._from_forwarded(request))
        return await handler(request)

    def _from_forwarded(self, request: web.Request) -> web.Request:
        # aiohttp parses RFC 7239; the hop to believe is the right-most one whose `for` is
        # not one of our proxies (a client may prepend anything it likes).
        hops = list(request.forwarded)
        chosen = None
        for hop in reversed(hops):
            chosen = hop
            if not _trusted(self._rules, hop.get("for")):
                break
        if chosen is None:
            return request
        overrides: dict[str, str] = {}
        client = chosen.get("for")
        # An obfuscated identifier (`for=_hidden`) names no address: the peer's stays.
        with contextlib.suppress(ValueError):
            overrides["remote"] = str(ip_address(_node_address(client or "")))
        if chosen.get("proto") in ("http", "https"):
            overrides["scheme"] = chosen["proto"]
        if chosen.get("host"):
            overrides["host"] = chosen["host"]
        return request.clone(**overrides)  # type: ignore[arg-type]
