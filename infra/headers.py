"""Headers that every answer carries, whichever code wrote it: no caching of anything but
the static files, and the security headers on the 400s aiohttp writes itself."""

from __future__ import annotations

import functools

from aiohttp import web

# For answers that are no page of ours: they may load nothing and be framed nowhere.
PROTOCOL_ERROR_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
STATIC_PREFIX = "/static/"


async def keep_out_of_caches(request: web.Request, response: web.StreamResponse) -> None:
    """Answers may hold personal data (a login, /api/me, an export), so neither the browser
    nor a proxy on the way may keep them; only the static files, which hold none, may be."""
    if isinstance(response, web.WebSocketResponse) or request.path.startswith(STATIC_PREFIX):
        return
    response.headers.setdefault("Cache-Control", "no-store")


class _Request(web.Request):
    """A request whose answer gets the protocol-error headers when it never reached the
    router: aiohttp answers a request line or header it cannot parse with a 400 of its own,
    which passes no middleware and no `on_response_prepare` of the app."""

    async def _prepare_hook(self, response: web.StreamResponse) -> None:
        if self._match_info is None:
            for name, value in PROTOCOL_ERROR_HEADERS.items():
                response.headers.setdefault(name, value)
            return
        await super()._prepare_hook(response)


def install_answer_headers(app: web.Application) -> None:
    """Send these headers on every answer of `app`, aiohttp's own 400s included."""
    app.on_response_prepare.append(keep_out_of_caches)
    # aiohttp builds each request with the app's factory; only its class is ours (aiohttp
    # is pinned exactly in pyproject.toml, so this private hook cannot move under us).
    app._make_request = functools.partial(app._make_request, _cls=_Request)  # type: ignore[method-assign]
