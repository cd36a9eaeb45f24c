"""Tolk's settings: one typed model read from `TOLK_*` variables and an optional `.env`.

The model lives in `infra` because every layer's edge reads it from the app; loading it
(secret file, friendly errors) is the app shell's job, in `tolk.settings`.
"""

from __future__ import annotations

import re
from ipaddress import ip_network
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from infra.clock import is_time_zone

LogFormat = Literal["auto", "console", "json"]
_ORIGIN = re.compile(
    r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?"
)
MatchingPolicyName = Literal["longest_idle", "ring_all", "fewest_minutes_today"]


class Settings(BaseSettings):
    """Every tunable number and address of a Tolk instance."""

    model_config = SettingsConfigDict(
        env_prefix="TOLK_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    database_url: str = "sqlite+aiosqlite:///./tolk.db"
    redis_url: str | None = None
    redis_namespace: str = Field(default="tolk", pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    """Prefix of every Redis key and channel, so that several Tolks can share one Redis."""
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    secret_key: SecretStr | None = None
    log_format: LogFormat = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    public_origin: str | None = None
    """The origin browsers use to reach Tolk (`https://tolk.example.org`); by default the
    origin of the request itself (its Host header)."""
    allowed_origins: list[str] = Field(default_factory=list)
    """Further origins allowed to make state-changing requests and open sockets."""
    trusted_proxies: list[str] = Field(default_factory=list)
    """Addresses or networks of reverse proxies whose forwarded headers (client address,
    scheme, host) are believed; from any other peer those headers are ignored."""
    timezone: str = "Europe/Berlin"
    metrics_token: SecretStr | None = None
    metrics_networks: list[str] = Field(default_factory=lambda: ["127.0.0.0/8", "::1/128"])
    """Clients in these networks read /metrics without the token: by default only this host."""

    # accounts
    session_idle_timeout_s: int = Field(default=8 * 3600, gt=0)
    session_absolute_timeout_s: int = Field(default=24 * 3600, gt=0)
    cookie_secure: bool | None = None
    """Mark the session cookie Secure; by default only when the request came over https."""
    login_max_failures_per_user: int = Field(default=5, gt=0)
    login_max_failures_per_address: int = Field(default=20, gt=0)
    login_failure_window_s: int = Field(default=300, gt=0)
    password_min_length: int = Field(default=10, ge=8)
    password_link_hours: int = Field(default=72, ge=1, le=720)
    """How long a one-time "set your password" link works."""
    terminal_link_hours: int = Field(default=72, ge=1, le=720)
    """How long a terminal's one-time device link works."""
    terminal_session_days: int = Field(default=365, ge=1, le=3660)
    """How long a terminal stays logged in after its device link was opened (no idle end)."""
    terminal_idle_reset_s: int = Field(default=90, ge=1, le=3600)
    """A terminal's page goes back to its start screen after this long without a touch
    (outside a call)."""
    api_token_days: int = Field(default=90, ge=1, le=366)
    """How long an API token works when its issuer names no period."""
    identity_cache_s: float = Field(default=5.0, ge=0)
    """How long a resolved token or cookie is reused without a database read (0: never).
    Changes made on another instance (logout, revocation) take up to this long to apply."""

    # retention (personal data)
    retention_days: int = Field(default=90, ge=1)
    """Requests, offers, calls, ended sessions and tokens are deleted after this long."""
    audit_retention_days: int = Field(default=365, ge=1)
    """Security events and the export log are deleted after this long."""
    usage_retention_days: int = Field(default=3653, ge=1)
    """Usage records (accounting records: ten years under German tax law) after this long."""

    # sockets
    ws_heartbeat_s: float = Field(default=15.0, gt=0)
    ws_max_frame_bytes: int = Field(default=64 * 1024, gt=0)
    ws_messages_per_second: float = Field(default=50.0, gt=0)
    ws_burst: int = Field(default=200, gt=0)
    ws_send_queue: int = Field(default=256, gt=0)
    fast_paths: bool = True
    """SQLite's, the socket hub's and the machine CSV's fast paths (infra/sqlite_fast.py,
    signaling/turns.py, signaling/lean_socket.py, billing/sqltext.py); off, the plain paths
    beside them, which answer the same."""

    # roster and presence
    presence_grace_s: int = Field(default=30, ge=0)
    languages_interval_s: float = Field(default=1.0, gt=0, le=60)
    """All instances together send `languages.updated` at most once this often. Each goes
    to every socket that watches the figures (the pages that show them now): with many
    thousands of those, a longer interval is what keeps that fan-out affordable."""

    # dispatch
    matching_policy: MatchingPolicyName = "longest_idle"
    offer_wave_size: int = Field(default=3, gt=0)
    offer_timeout_s: int = Field(default=20, gt=0)
    preference_relax_s: int = Field(default=30, ge=0)
    request_max_wait_s: int = Field(default=300, gt=0)
    open_requests_per_counsellor: int = Field(default=2, gt=0)
    """Requests one counsellor may have queued or being offered at once."""
    missed_offers_before_away: int = Field(default=2, gt=0)
    wrap_up_s: int = Field(default=30, ge=0)
    sweep_interval_s: float = Field(default=1.0, gt=0)

    # bookings
    booking_escalate_before_s: int = Field(default=2 * 3600, ge=0)
    """An unclaimed booking is shown to the admins and widened this long before it starts."""
    booking_give_back_before_s: int = Field(default=4 * 3600, ge=0)
    """An interpreter may give a claimed booking back until this long before it starts."""
    booking_reminders_s: list[int] = Field(default_factory=lambda: [24 * 3600, 15 * 60])
    """Reminders go out this long before a booking starts (seconds, any order)."""
    booking_start_early_s: int = Field(default=15 * 60, ge=0)
    """How long before its start a booking's call may be started."""

    # calls
    call_rejoin_grace_s: int = Field(default=60, ge=0)
    call_connect_timeout_s: int = Field(default=45, gt=0)
    signal_hold_s: int = Field(default=60, ge=30)
    invitation_ttl_s: int = Field(default=7200, gt=0)
    """How long a guest's invitation link to a consultation room stays usable."""
    stun_urls: list[str] = Field(default_factory=list)
    turn_urls: list[str] = Field(default_factory=list)
    turn_secret: SecretStr | None = None
    turn_ttl_s: int = Field(default=6 * 3600, gt=0)
    ice_host_addresses: list[str] = Field(default_factory=list)
    """Addresses Tolk's own aiortc peers (the simulated interpreters) gather host candidates
    on; empty: every address of the machine except loopback (aioice's choice)."""

    # pre-call check (the server's aiortc echo peers)
    precall_max_peers: int = Field(default=4, ge=0)
    precall_counsellor_slots: int = Field(default=2, ge=0)
    """Echo peers only counsellors may use; interpreters and admins share the rest."""
    """Echo peers at once on one instance; each costs about a quarter of a core."""
    precall_max_s: int = Field(default=60, gt=0)
    """An echo peer is closed this long after it was opened."""

    # billing
    billing_default_currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    """Currency of usage records of calls for which no tariff applies (billed 0)."""
    usage_export_batch_rows: int = Field(default=5000, ge=100, le=100_000)
    """Rows fetched per round trip when streaming a usage export."""

    @field_validator(
        "secret_key", "metrics_token", "turn_secret", "redis_url", "public_origin", mode="before"
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # `TOLK_METRICS_TOKEN=` left empty in an environment file means "not set": as an
        # empty token it would match a request without any Authorization header.
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("use sqlite+aiosqlite:///path.db or postgresql+asyncpg://user@host/db")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if not is_time_zone(value):
            raise ValueError("use an IANA time zone such as Europe/Berlin")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("use redis://host:port/db")
        return value

    @field_validator("public_origin")
    @classmethod
    def _an_origin(cls, value: str | None) -> str | None:
        origin = None if value is None else value.rstrip("/")
        if origin is not None and not _ORIGIN.fullmatch(origin):
            raise ValueError("use an origin such as https://tolk.example.org (no path)")
        return origin

    @field_validator("trusted_proxies", "metrics_networks")
    @classmethod
    def _addresses_or_networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ip_network(item)
            except ValueError:
                raise ValueError(
                    f"{item!r} is no address or network (use e.g. 127.0.0.1 or 10.0.0.0/8)"
                ) from None
        return value

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is the embedded SQLite file."""
        return self.database_url.startswith("sqlite")
