"""HTTP routes of signalling: ICE servers for peers, and the pre-call echo check."""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field

from accounts.models import Role
from accounts.views import Identity
from infra.appkeys import CLOCK, SETTINGS
from infra.http import json_response
from infra.openapi import ANYONE, ApiRoutes
from signaling.ice import ice_servers_for
from signaling.precall import ECHO_PEERS
from wire.objects import IceServer

api = ApiRoutes(tag="signaling")
# Who makes calls: nobody else needs an echo peer, which costs a quarter of a core.
CALLERS = (Role.COUNSELLOR, Role.INTERPRETER, Role.ADMIN)


class IceServersResponse(BaseModel):
    ice_servers: list[IceServer]
    ttl_s: int


@api.get("/api/ice-servers", roles=ANYONE, response=IceServersResponse)
async def ice_servers(request: web.Request, identity: Identity) -> web.Response:
    """STUN and TURN servers, with time-limited TURN credentials"""
    settings = request.app[SETTINGS]
    servers = ice_servers_for(settings, identity.user_id, request.app[CLOCK].now())
    return json_response({"ice_servers": servers, "ttl_s": settings.turn_ttl_s})


class PrecallOffer(BaseModel):
    type: Literal["offer"] = "offer"
    sdp: str = Field(min_length=10, max_length=64 * 1024)


class PrecallAnswer(BaseModel):
    id: str
    type: Literal["answer"]
    sdp: str
    expires_in_s: int


class PrecallReport(BaseModel):
    id: str
    state: str
    rtt_ms: float | None
    packets_received: int
    packets_lost: int
    loss_percent: float | None
    relay: bool | None
    local_candidate: str | None
    remote_candidate: str | None
    expires_in_s: int


@api.post("/api/precall", roles=CALLERS, status=201, errors=(429,))
async def start_precall(
    request: web.Request, identity: Identity, body: PrecallOffer
) -> PrecallAnswer:
    """Start a connection test: the server echoes the browser's camera and microphone"""
    settings = request.app[SETTINGS]
    # The echo peer needs no relay of its own (it is on a public address, or on the LAN of
    # its users); STUN lets it learn its public address behind a NAT.
    servers: list[dict[str, Any]] = (
        [{"urls": list(settings.stun_urls)}] if settings.stun_urls else []
    )
    peer, sdp = await request.app[ECHO_PEERS].open(
        identity.user_id, body.sdp, servers, counsellor=identity.role == Role.COUNSELLOR
    )
    return PrecallAnswer(id=peer.id, type="answer", sdp=sdp, expires_in_s=peer.remaining_s)


@api.get("/api/precall/{precall_id}", roles=CALLERS, errors=(404,))
async def precall_report(
    request: web.Request, identity: Identity, precall_id: str
) -> PrecallReport:
    """The path measured by a running connection test"""
    peer = request.app[ECHO_PEERS].get(precall_id, identity.user_id)
    report = await peer.report()
    return PrecallReport(id=peer.id, **report.as_dict(), expires_in_s=peer.remaining_s)


@api.delete("/api/precall/{precall_id}", roles=CALLERS, status=204, errors=(404,))
async def stop_precall(request: web.Request, identity: Identity, precall_id: str) -> None:
    """End a connection test"""
    echoes = request.app[ECHO_PEERS]
    peer = echoes.get(precall_id, identity.user_id)
    await echoes.close(peer.id)
