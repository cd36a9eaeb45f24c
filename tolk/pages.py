"""The browser pages: each role's page served from static/, and the security headers that
let those pages load nothing from another origin."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from accounts.access import identify, own_origin
from accounts.models import Role
from infra.appkeys import SETTINGS
from infra.forwarded import as_forwarded

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

# The page each role lands on after logging in.
HOME: dict[Role, str] = {
    Role.COUNSELLOR: "/counsellor",
    Role.INTERPRETER: "/interpreter",
    Role.FINANCE: "/finance",
    Role.ADMIN: "/admin",
    Role.MANAGEMENT: "/stats",
}

# path -> (file in static/, roles that may open it)
PAGES: dict[str, tuple[str, frozenset[Role]]] = {
    "/counsellor": ("counsellor.html", frozenset({Role.COUNSELLOR})),
    "/interpreter": ("interpreter.html", frozenset({Role.INTERPRETER})),
    "/finance": ("finance.html", frozenset({Role.FINANCE, Role.ADMIN})),
    "/admin": ("admin.html", frozenset({Role.ADMIN})),
    "/check": ("check.html", frozenset({Role.COUNSELLOR, Role.INTERPRETER, Role.ADMIN})),
}

_HTML_HEADERS = {"Cache-Control": "no-store"}


def content_security_policy(public_origin: str | None) -> str:
    """Our own origin only; media from the camera; the socket to ourselves."""
    connect = "connect-src 'self'"
    if public_origin:
        # 'self' covers ws(s) of the same host in current browsers; the explicit socket
        # origin is for browsers that still read CSP Level 2 literally. It comes from the
        # settings only: a Host header is the client's to choose and never goes in here.
        connect += " ws" + public_origin.removeprefix("http")
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data: blob:",
            "media-src 'self' blob: mediastream:",
            connect,
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    if isinstance(response, web.WebSocketResponse):
        # A socket is no document: these headers would only cost memory on every socket.
        return
    headers = response.headers
    headers.setdefault(
        "Content-Security-Policy", content_security_policy(request.app[SETTINGS].public_origin)
    )
    if own_origin(as_forwarded(request)).startswith("https://"):
        # Browsers heed this only over https: from then on they never try plain http.
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault(
        "Permissions-Policy", "camera=(self), microphone=(self), display-capture=(), geolocation=()"
    )


def _page_file(name: str) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / name, headers=_HTML_HEADERS)


async def login_page(request: web.Request) -> web.StreamResponse:
    """GET /: the login form, or straight to one's own page when logged in already."""
    identity = await identify(request)
    if identity is not None:
        raise web.HTTPFound(HOME[identity.role])
    return _page_file("index.html")


async def role_page(request: web.Request) -> web.StreamResponse:
    """GET /counsellor, /interpreter, ...: the page, for the roles it is made for."""
    name, roles = PAGES[request.path]
    identity = await identify(request)
    if identity is None:
        raise web.HTTPFound("/")
    if identity.role not in roles:
        raise web.HTTPFound(HOME[identity.role])
    return _page_file(name)


def add_pages(app: web.Application) -> None:
    """Serve the pages and static files, and send the security headers on every response."""
    app.on_response_prepare.append(_security_headers)
    app.router.add_get("/", login_page)
    for path in PAGES:
        app.router.add_get(path, role_page)
    app.router.add_static("/static", STATIC_DIR, append_version=False)
