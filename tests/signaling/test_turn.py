"""Calls through a real coturn with Tolk's TURN REST credentials, relay candidates only."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from infra.config import Settings
from signaling.ice import ice_servers_for
from signaling.peers.rtc import selected_candidate_types
from tests.signaling.coturn import Coturn, coturn
from tests.signaling.wire import pair

pytestmark = pytest.mark.turn
__all__ = ["coturn"]


def settings_for(turn: Coturn, secret: str | None = None) -> Settings:
    return Settings(
        _env_file=None,
        turn_urls=[turn.url],
        turn_secret=SecretStr(secret or turn.secret),
        turn_ttl_s=600,
    )


class TestRelayedCall:
    async def test_relay_only_call_connects_and_both_sides_decode_video(self, coturn):
        """With only relay candidates, media flows through coturn in both directions."""
        now = datetime.now(UTC)
        settings = settings_for(coturn)
        counsellor, interpreter = pair(
            ice_servers_for(settings, "counsellor-1", now),
            ice_servers_for(settings, "interpreter-1", now),
            relay_only=True,
        )
        try:
            await counsellor.negotiator.offer()
            await counsellor.wait_state("connected", timeout_s=15)
            await interpreter.wait_state("connected", timeout_s=15)
            await counsellor.sink.wait_for_frames("video", count=3, timeout_s=10)
            await interpreter.sink.wait_for_frames("video", count=3, timeout_s=10)
            offer_sdp = counsellor.sent[0]["description"]["sdp"]
            assert "typ relay" in offer_sdp
            assert "typ host" not in offer_sdp
            assert counsellor.negotiator.pc is not None
            assert selected_candidate_types(counsellor.negotiator.pc) == ("relay", "relay")
        finally:
            await counsellor.close()
            await interpreter.close()
        log = coturn.stop()
        for user in ("counsellor-1", "interpreter-1"):
            assert re.search(
                rf"user <\d+:{user}>: incoming packet ALLOCATE processed, success", log
            )


class TestRefusedCredentials:
    async def gather_offer(self, ice_servers) -> tuple[str, str]:
        counsellor, interpreter = pair(ice_servers, ice_servers, relay_only=True)
        try:
            await counsellor.negotiator.offer()
            # Without a relay candidate there is no pair to check: the call never connects
            # (aioice waits for trickled candidates that never come), so bound the wait.
            with pytest.raises(TimeoutError):
                await counsellor.wait_state("connected", timeout_s=3)
            return counsellor.sent[0]["description"]["sdp"], counsellor.negotiator.state
        finally:
            await counsellor.close()
            await interpreter.close()

    async def assert_refused(self, coturn, ice_servers) -> None:
        """No relay candidate, no connection, and coturn logged a 401 and no allocation."""
        sdp, state = await self.gather_offer(ice_servers)
        assert "typ relay" not in sdp
        assert state != "connected"
        log = coturn.stop()
        assert re.search(r"user <\d+:u1>: incoming packet message processed, error 401", log)
        assert "ALLOCATE processed, success" not in log

    async def test_wrong_secret_gets_no_relay(self, coturn):
        """Credentials signed with another secret are refused: no relay, the call fails."""
        servers = ice_servers_for(settings_for(coturn, "not-the-secret"), "u1", datetime.now(UTC))
        await self.assert_refused(coturn, servers)

    async def test_expired_credential_gets_no_relay(self, coturn):
        """A credential whose expiry has passed is refused."""
        long_ago = datetime.now(UTC) - timedelta(hours=2)
        servers = ice_servers_for(settings_for(coturn), "u1", long_ago)
        await self.assert_refused(coturn, servers)
