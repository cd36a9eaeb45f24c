"""aiortc plumbing shared by Tolk's peers: the configuration built from Tolk's ICE list,
and what can be learnt about a connection's path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aioice.ice
from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
)
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from aiortc.stats import RTCInboundRtpStreamStats, RTCRemoteInboundRtpStreamStats


def rtc_configuration(
    ice_servers: list[dict[str, Any]], relay_only: bool = False
) -> RTCConfiguration:
    """An RTCConfiguration from Tolk's ICE list, given explicitly even when empty.

    Without an explicit list aiortc adds Google's public STUN server; Tolk never lets a
    peer talk to a server the operator did not configure.
    """
    servers = [
        RTCIceServer(
            urls=server["urls"],
            username=server.get("username"),
            credential=server.get("credential"),
        )
        for server in ice_servers
    ]
    policy = RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL
    return RTCConfiguration(iceServers=servers, iceTransportPolicy=policy)


def use_host_addresses(addresses: list[str]) -> None:
    """Gather host candidates only on these addresses in this process (no-op when empty).

    aioice never offers a loopback address; a demo or a test on one machine without any
    other interface needs it, so the list replaces aioice's own choice process-wide.
    """
    if not addresses:
        return
    chosen = list(addresses)

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in chosen if (use_ipv6 if ":" in a else use_ipv4)]

    aioice.ice.get_host_addresses = host_addresses


def selected_candidate_types(pc: RTCPeerConnection) -> tuple[str, str] | None:
    """The (local, remote) candidate types of the pair in use, or None before one is chosen.

    aiortc does not publish its selected pair; this reads aioice's nominated pair and
    returns None if that internal shape ever changes.
    """
    try:
        for transceiver in pc.getTransceivers():
            connection = transceiver.receiver.transport.transport._connection
            for pair in connection._nominated.values():
                return pair.protocol.local_candidate.type, pair.remote_candidate.type
    except AttributeError:
        return None
    return None


@dataclass(frozen=True)
class PathReport:
    """What a peer knows about its media path: round-trip time, loss, relay use."""

    state: str
    rtt_ms: float | None
    packets_received: int
    packets_lost: int
    loss_percent: float | None
    local_candidate: str | None
    remote_candidate: str | None

    @property
    def relay(self) -> bool | None:
        """Whether a TURN server carries the media (None until a path is chosen)."""
        if self.local_candidate is None or self.remote_candidate is None:
            return None
        return "relay" in (self.local_candidate, self.remote_candidate)

    def as_dict(self) -> dict[str, Any]:
        """The report as the wire shows it."""
        return {
            "state": self.state,
            "rtt_ms": self.rtt_ms,
            "packets_received": self.packets_received,
            "packets_lost": self.packets_lost,
            "loss_percent": self.loss_percent,
            "relay": self.relay,
            "local_candidate": self.local_candidate,
            "remote_candidate": self.remote_candidate,
        }


async def path_report(pc: RTCPeerConnection) -> PathReport:
    """Measure the path from the connection's RTCP statistics."""
    report = await pc.getStats()
    rtts: list[float] = []
    received = lost = 0
    for stats in report.values():
        if isinstance(stats, RTCRemoteInboundRtpStreamStats) and stats.roundTripTime:
            rtts.append(stats.roundTripTime)
        elif isinstance(stats, RTCInboundRtpStreamStats):
            received += stats.packetsReceived
            lost += max(0, stats.packetsLost)
    total = received + lost
    pair = selected_candidate_types(pc)
    return PathReport(
        state=pc.connectionState,
        rtt_ms=round(max(rtts) * 1000, 1) if rtts else None,
        packets_received=received,
        packets_lost=lost,
        loss_percent=round(100 * lost / total, 2) if total else None,
        local_candidate=pair[0] if pair else None,
        remote_candidate=pair[1] if pair else None,
    )
