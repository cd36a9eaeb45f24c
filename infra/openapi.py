"""Routes declared with the models they validate with, and the OpenAPI 3.1 document built
from those same declarations, so that the description cannot drift from the code."""

from __future__ import annotations

import functools
import inspect
import re
import typing
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from infra.errors import UnsupportedMediaType
from infra.http import json_response, read_json, read_query, refuse_nul_characters

Handler = Callable[..., Awaitable[Any]]
_PATH_PARAM = re.compile(r"{(\w+)(?::[^}]*)?}")

PUBLIC: tuple[str, ...] = ()
"""The roles of an operation anyone may call without logging in."""
ANYONE: tuple[str, ...] = ("any",)
"""The roles of an operation every logged-in user may call."""

Authorize = Callable[[web.Request, tuple[str, ...]], Awaitable[object]]
AUTHORIZE: web.AppKey[Authorize] = web.AppKey("authorize")
"""Checks the caller against a route's declared roles (401, 403) before its input is read
and returns who it is; with no roles (a public route) it only refuses a foreign origin and
returns None. The app shell installs it."""


@dataclass(frozen=True)
class RouteSpec:
    """One HTTP operation as the OpenAPI document shows it."""

    method: str
    path: str
    summary: str
    tag: str
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    roles: tuple[str, ...]
    errors: tuple[int, ...]
    content_types: tuple[str, ...]
    raw_body: str | None


@dataclass
class ApiRoutes:
    """A package's routes. A route's declared roles are what admits its callers: the handler
    runs only for them. The handler's signature says what else it needs (see `route`)."""

    tag: str
    specs: list[RouteSpec] = field(default_factory=list)
    table: web.RouteTableDef = field(default_factory=web.RouteTableDef)

    def route(
        self,
        method: str,
        path: str,
        *,
        roles: tuple[str, ...],
        status: int = 200,
        errors: tuple[int, ...] = (),
        response: type[BaseModel] | None = None,
        content_types: tuple[str, ...] = ("application/json",),
        raw_body: str | None = None,
    ) -> Callable[[Handler], Handler]:
        """Declare an operation and who may call it (PUBLIC, ANYONE or role names).

        The handler's docstring is the operation's summary. The handler takes by name what it
        needs: `request`, `identity`, the path's parameters (as text), `body` and `query`
        (validated against the models they are annotated with). It returns its answer: a
        model (sent as JSON with `status`, and documented as the response), None (an empty
        answer with `status`), or a response it made itself (then `response=` names the
        model it documents)."""

        def register(handler: Handler) -> Handler:
            inputs = _Inputs.of(handler, path)
            answers = inputs.returns if response is None else response
            spec = RouteSpec(
                method.lower(),
                path,
                _summary(handler, path),
                self.tag,
                inputs.body,
                inputs.query,
                answers,
                status,
                tuple(str(role) for role in roles),
                errors,
                content_types,
                raw_body,
            )
            if inputs.identity and not spec.roles:
                raise TypeError(f"{path}: a public operation has no identity to hand its handler")
            wrapper = _admitting(spec, inputs, handler)
            self.table.route(method, path)(wrapper)
            self.specs.append(spec)
            return wrapper

        return register

    def get(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, **kw)


@dataclass(frozen=True)
class _Inputs:
    """What a handler's signature asks for, and the model it returns."""

    request: bool
    identity: bool
    path_params: tuple[str, ...]
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    returns: type[BaseModel] | None

    @classmethod
    def of(cls, handler: Handler, path: str) -> _Inputs:
        names = set(inspect.signature(handler).parameters)
        hints = typing.get_type_hints(handler)
        path_params = tuple(p for p in _PATH_PARAM.findall(path) if p in names)
        unknown = names - {"request", "identity", "body", "query", *path_params}
        if unknown:
            raise TypeError(f"{path}: the handler asks for what no request gives: {unknown}")
        return cls(
            "request" in names,
            "identity" in names,
            path_params,
            _model(hints.get("body")) if "body" in names else None,
            _model(hints.get("query")) if "query" in names else None,
            _model(hints["return"]) if _is_model(hints.get("return")) else None,
        )


def _summary(handler: Handler, path: str) -> str:
    """The handler's docstring as one line: the operation's summary."""
    if not handler.__doc__:
        raise TypeError(f"{path}: the handler's docstring is the operation's summary")
    return " ".join(inspect.cleandoc(handler.__doc__).split())


def _is_model(annotation: object) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _model(annotation: object) -> type[BaseModel]:
    if not _is_model(annotation):
        raise TypeError(f"{annotation!r} is no model to validate with")
    return typing.cast(type[BaseModel], annotation)


def _admitting(spec: RouteSpec, inputs: _Inputs, handler: Handler) -> Handler:
    """The handler behind its route's checks: who asks, then its validated input."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        # Who asks comes first: an anonymous caller learns nothing about the body
        # an operation wants (401, not a 422 listing the fields).
        identity = await request.app[AUTHORIZE](request, spec.roles)
        refuse_nul_characters(dict(request.match_info), "")
        kwargs: dict[str, Any] = {name: request.match_info[name] for name in inputs.path_params}
        if inputs.request:
            kwargs["request"] = request
        if inputs.identity:
            kwargs["identity"] = identity
        if spec.body is not None:
            _require_json(request)
            kwargs["body"] = await read_json(request, spec.body)
        if spec.query is not None:
            kwargs["query"] = read_query(request, spec.query)
        return _answer(await handler(**kwargs), spec.status)

    return wrapper


def _answer(result: web.StreamResponse | BaseModel | None, status: int) -> web.StreamResponse:
    """The HTTP response for what a handler returned."""
    if result is None:
        return web.Response(status=status)
    if isinstance(result, BaseModel):
        return json_response(result, status=status)
    return result


def _require_json(request: web.Request) -> None:
    """A body must be declared as JSON: an HTML form (text/plain, urlencoded, multipart) can be
    posted across sites without the browser asking first; application/json cannot."""
    declared = request.body_exists or "Content-Type" in request.headers
    if declared and request.content_type != "application/json":
        raise UnsupportedMediaType()


_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}
# A 422 names every bad field (infra.errors.InvalidInput); `rows` only for a CSV import.
_INVALID_INPUT_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "fields"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["field", "problem"],
                        "properties": {
                            "field": {"type": "string"},
                            "problem": {"type": "string"},
                            "code": {"type": "string"},
                        },
                    },
                },
                "rows": {"type": "array", "items": {"type": "object"}},
            },
        }
    },
}
_STATUS_TEXT = {
    400: "Bad input",
    401: "Not logged in",
    403: "Wrong role, or bad origin",
    404: "Not found",
    409: "Conflicts with the current state",
    415: "The body is not application/json",
    422: "Invalid input",
    429: "Too many requests (see Retry-After)",
}


@dataclass(frozen=True)
class SocketSpec:
    """The socket's messages both ways, each model by its `type`."""

    path: str
    client: Mapping[str, type[BaseModel]]
    server: Mapping[str, type[BaseModel]]


def build_openapi(
    specs: list[RouteSpec], title: str, version: str, socket: SocketSpec | None = None
) -> dict[str, Any]:
    """The OpenAPI 3.1 document for these routes; the socket's messages, which OpenAPI has
    no words for, go in `x-socket` and their schemas beside the routes' models."""
    messages = (*socket.client.values(), *socket.server.values()) if socket else ()
    refs, schemas = _model_schemas(specs, messages)
    paths: dict[str, dict[str, Any]] = {}
    for spec in specs:
        paths.setdefault(_PATH_PARAM.sub(r"{\1}", spec.path), {})[spec.method] = _operation(
            spec, refs
        )
    sockets = {} if socket is None else {"x-socket": _socket(socket, refs)}
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        **sockets,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "tolk_session"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
        "security": [{"session": []}, {"bearer": []}],
    }


def _model_schemas(
    specs: list[RouteSpec], messages: tuple[type[BaseModel], ...]
) -> tuple[dict[type[BaseModel], dict[str, Any]], dict[str, Any]]:
    """The reference to each body, response and socket message model, and the schemas
    they refer to."""
    models = {m for s in specs for m in (s.body, s.response) if m is not None} | set(messages)
    ordered = sorted(models, key=lambda m: m.__name__)
    keyed, defs = models_json_schema(
        [(m, "validation") for m in ordered], ref_template="#/components/schemas/{model}"
    )
    refs = {m: keyed[(m, "validation")] for m in ordered}
    schemas = dict(defs.get("$defs", {}))
    schemas["Error"] = _ERROR_SCHEMA
    schemas["InvalidInput"] = _INVALID_INPUT_SCHEMA
    return refs, schemas


def _socket(socket: SocketSpec, refs: dict[type[BaseModel], dict[str, Any]]) -> dict[str, Any]:
    """The socket's path and, each way, its messages as a union tagged by `type`."""

    def tagged(models: Mapping[str, type[BaseModel]]) -> dict[str, Any]:
        return {
            "oneOf": [refs[m] for m in models.values()],
            "discriminator": {
                "propertyName": "type",
                "mapping": {kind: refs[m]["$ref"] for kind, m in models.items()},
            },
        }

    return {"path": socket.path, "client": tagged(socket.client), "server": tagged(socket.server)}


def _operation(spec: RouteSpec, refs: dict[type[BaseModel], dict[str, Any]]) -> dict[str, Any]:
    """One operation: its parameters, body, roles and answers."""
    path = _PATH_PARAM.sub(r"{\1}", spec.path)
    operation: dict[str, Any] = {
        "summary": spec.summary,
        "tags": [spec.tag],
        "operationId": f"{spec.method}_{re.sub(r'[^a-z0-9]+', '_', path.lower()).strip('_')}",
        "parameters": _parameters(spec),
        "responses": _responses(spec, refs),
    }
    # x-roles: who may call it ("any": every logged-in user; empty: no login needed).
    operation["x-roles"] = list(spec.roles)
    if spec.roles:
        operation["description"] = "Roles: " + ", ".join(spec.roles)
    if spec.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[spec.body]}},
        }
    if spec.raw_body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {spec.raw_body: {"schema": {"type": "string"}}},
        }
    return operation


def _parameters(spec: RouteSpec) -> list[dict[str, Any]]:
    """The path parameters, then the query's fields."""
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAM.findall(spec.path)
    ]
    if spec.query is not None:
        schema = spec.query.model_json_schema()
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            parameters.append(
                {"name": name, "in": "query", "required": name in required, "schema": prop}
            )
    return parameters


def _responses(spec: RouteSpec, refs: dict[type[BaseModel], dict[str, Any]]) -> dict[str, Any]:
    """The success answer, then every error the operation can give."""
    ok: dict[str, Any] = {"description": "Success"}
    if spec.response is not None:
        ok["content"] = {ct: {"schema": refs[spec.response]} for ct in spec.content_types[:1]}
        ok["content"].update({ct: {} for ct in spec.content_types[1:]})
    responses: dict[str, Any] = {str(spec.status): ok}
    statuses = set(spec.errors)
    if spec.roles:
        statuses |= {401, 403}
    if spec.body or spec.query:
        statuses.add(422)
    if spec.body:
        statuses.add(415)
    for status in sorted(statuses):
        error_schema = "InvalidInput" if status == 422 else "Error"
        responses[str(status)] = {
            "description": _STATUS_TEXT.get(status, "Error"),
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{error_schema}"}}
            },
        }
    return responses
