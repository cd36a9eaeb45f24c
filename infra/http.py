"""The HTTP edge shared by every package's routes: JSON in and out, and one error mapping."""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog
from aiohttp import web
from pydantic import BaseModel, ValidationError

from infra import jsonio
from infra.errors import InvalidInput, TolkError, TooManyRequests
from infra.outages import Unavailable, is_unreachable

log = structlog.get_logger(__name__)

M = TypeVar("M", bound=BaseModel)
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON response encoded with orjson (datetimes as RFC 3339 `Z`)."""
    return web.Response(
        body=jsonio.dumps(data),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    """The contract's error object."""
    return {"error": {"code": code, "message": message, **details}}


def validation_problems(exc: ValidationError) -> list[dict[str, str]]:
    """Each problem of a validation error as {field, problem}."""
    return [
        {
            "field": ".".join(str(p) for p in err["loc"]) or "body",
            "problem": err["msg"],
            "code": err["type"],
        }
        for err in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


def invalid_input(exc: ValidationError) -> InvalidInput:
    """Turn a pydantic error into the 422 that names each bad field."""
    problems = validation_problems(exc)
    first = problems[0] if problems else {"field": "body", "problem": "invalid"}
    return InvalidInput(f"{first['field']}: {first['problem']}", fields=problems)


async def read_json(request: web.Request, model: type[M]) -> M:
    """Parse and validate the request body against a model, or raise a 422 naming the field."""
    raw = await request.read()
    try:
        parsed = model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise invalid_input(exc) from None
    if b"\\u0000" in raw:  # JSON must escape a NUL; only then is there one to look for
        refuse_nul_characters(parsed.model_dump(), "")
    return parsed


def read_query(request: web.Request, model: type[M]) -> M:
    """Validate the query string against a model, or raise a 422 naming the parameter."""
    query = dict(request.query)
    refuse_nul_characters(query, "")
    try:
        return model.model_validate(query)
    except ValidationError as exc:
        raise invalid_input(exc) from None


def nul_character_at(value: Any, path: str) -> str | None:
    """Where in a parsed value a text holds a NUL character, if anywhere (`a.b.0`)."""
    if isinstance(value, str):
        return path or "body" if "\x00" in value else None
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        key_path = f"{path}.{key}" if path else str(key)
        if isinstance(key, str) and "\x00" in key:
            return key_path
        found = nul_character_at(item, key_path)
        if found is not None:
            return found
    return None


def refuse_nul_characters(value: Any, path: str) -> None:
    """422 naming the field whose text holds a NUL character: no text of Tolk's has one,
    and PostgreSQL cannot store one (the query would fail with a 500)."""
    field = nul_character_at(value, path)
    if field is not None:
        raise InvalidInput(f"{field}: may not contain NUL characters", field=field)


def error_response(exc: TolkError) -> web.Response:
    """The HTTP response for a domain error."""
    headers = {}
    if isinstance(exc, TooManyRequests | Unavailable):
        headers["Retry-After"] = str(exc.retry_after_s)
    return json_response({"error": exc.to_wire()}, status=exc.status, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map domain errors and aiohttp's HTTP errors to the contract's JSON error body."""
    try:
        return await handler(request)
    except TolkError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
            exc.status, "http_error"
        )
        return json_response(
            error_body(code, exc.reason),
            status=exc.status,
            headers={k: v for k, v in exc.headers.items() if k.lower() == "allow"},
        )
    except Exception as exc:
        if is_unreachable(exc):  # a path that uses the engine itself, not a session
            return error_response(Unavailable())
        log.exception("unhandled_error", path=request.path, method=request.method)
        return json_response(
            error_body("internal_error", "Something went wrong on our side."), status=500
        )


@web.middleware
async def request_context_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bind a request id and the client's address to every log line of this request, and
    return the id as a header (the address is the proxy's client when it is trusted)."""
    given = request.headers.get("X-Request-Id", "")
    request_id = given if _REQUEST_ID.fullmatch(given) else secrets.token_hex(8)
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id, client=request.remote)
    response = await handler(request)
    if not response.prepared:
        response.headers["X-Request-Id"] = request_id
    return response
