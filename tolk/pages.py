"""The browser pages: each page rendered from one shell (static/pages/shell.html) around its
own body, and the security headers that let those pages load nothing from another origin."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from string import Template

from aiohttp import web

from accounts.access import INTERPRETS, as_interpreter, identify, own_origin
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
    Role.TERMINAL: "/terminal",
}


@dataclass(frozen=True)
class Page:
    """A page: its body is static/pages/NAME.html, its script static/js/NAME.js, its title
    the i18n key NAME.title; `roles` may open it."""

    name: str
    roles: frozenset[Role]


LOGIN = Page("login", frozenset())
JOIN = Page("join", frozenset())
"""The guest's page behind an invitation link: anyone with the link may open it."""
SET_PASSWORD = Page("set-password", frozenset())
"""Opened from a one-time link by someone who cannot log in yet (accounts.password_links)."""
DEVICE = Page("device", frozenset())
"""Opened once on a terminal from its device link, to log it in (accounts.terminals)."""
PAGES: dict[str, Page] = {
    "/counsellor": Page("counsellor", frozenset({Role.COUNSELLOR})),
    "/interpreter": Page("interpreter", frozenset({Role.INTERPRETER})),
    "/finance": Page("finance", frozenset({Role.FINANCE, Role.ADMIN})),
    "/statement": Page("statement", frozenset({Role.FINANCE, Role.ADMIN})),
    "/admin": Page("admin", frozenset({Role.ADMIN})),
    "/check": Page("check", frozenset({Role.COUNSELLOR, Role.INTERPRETER, Role.ADMIN})),
    "/stats": Page("stats", frozenset({Role.MANAGEMENT, Role.ADMIN})),
    "/terminal": Page("terminal", frozenset({Role.TERMINAL})),
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


def render_page(page: Page, pages_dir: Path = STATIC_DIR / "pages") -> bytes:
    """The whole document of a page: the shell with the page's name and body filled in."""
    shell = Template((pages_dir / "shell.html").read_text(encoding="utf-8"))
    body = (pages_dir / f"{page.name}.html").read_text(encoding="utf-8")
    return shell.substitute(page=page.name, main=body).encode()


def _html(document: bytes) -> web.Response:
    return web.Response(
        body=document, content_type="text/html", charset="utf-8", headers=_HTML_HEADERS
    )


def add_pages(app: web.Application) -> None:
    """Serve the pages and static files, and send the security headers on every response."""
    # Rendered once at start-up: a page is the same for everyone, only who may see it differs.
    login_document = render_page(LOGIN)
    set_password_document = render_page(SET_PASSWORD)
    device_document = render_page(DEVICE)
    documents = {path: render_page(page) for path, page in PAGES.items()}
    join_document = render_page(JOIN)

    async def login_page(request: web.Request) -> web.StreamResponse:
        """GET /: the login form, or straight to one's own page when logged in already."""
        identity = await identify(request)
        if identity is not None:
            raise web.HTTPFound(HOME[identity.role])
        return _html(login_document)

    async def role_page(request: web.Request) -> web.StreamResponse:
        """GET /counsellor, /interpreter, ...: the page, for the roles it is made for."""
        identity = await identify(request)
        if identity is None:
            raise web.HTTPFound("/")
        roles = PAGES[request.path].roles
        if identity.role not in roles and not (
            # A colleague who also interprets opens the interpreter's page too.
            Role.INTERPRETER in roles
            and await as_interpreter(identity, request.app.get(INTERPRETS))
        ):
            raise web.HTTPFound(HOME[identity.role])
        return _html(documents[request.path])

    async def join_page(request: web.Request) -> web.StreamResponse:
        """GET /join/{token}: the guest's page; the token is checked when the guest joins."""
        return _html(join_document)

    app.on_response_prepare.append(_security_headers)

    async def set_password_page(request: web.Request) -> web.StreamResponse:
        """GET /set-password: the form a one-time link opens (the secret is after `#`)."""
        return _html(set_password_document)

    async def device_page(request: web.Request) -> web.StreamResponse:
        """GET /device: logs a terminal's device in with the link's secret (after `#`)."""
        return _html(device_document)

    app.router.add_get("/", login_page)
    app.router.add_get("/device", device_page)
    app.router.add_get("/join/{token}", join_page)
    app.router.add_get("/set-password", set_password_page)
    for path in PAGES:
        app.router.add_get(path, role_page)
    app.router.add_static("/static", STATIC_DIR, append_version=False)
