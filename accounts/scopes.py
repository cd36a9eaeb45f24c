"""What an API token may be used for: its scopes, checked against the operation asked for.

A scope is `*` (whatever its user's role allows), `socket` (the `/ws` socket: calls,
presence, signalling), an area of the API (an OpenAPI tag: `billing`, `accounts`, ...) or
an area's reading operations only (`billing:read`: GET). A token never grants more than
its user's role: the role check of each operation applies as well.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from accounts.errors import InvalidScope
from accounts.models import Role

ALL = "*"
SOCKET = "socket"
_READING = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Operation:
    """An operation as a scope sees it: its area and the roles that may use it."""

    area: str
    roles: tuple[str, ...]


@dataclass
class Operations:
    """Every operation of the app by (method, path template), filled by the app shell."""

    by_route: dict[tuple[str, str], Operation] = field(default_factory=dict)

    def add(self, method: str, path: str, area: str, roles: Iterable[str]) -> None:
        """Declare an operation."""
        self.by_route[(method.upper(), path)] = Operation(area, tuple(roles))

    def areas(self) -> set[str]:
        """Every area a scope may name."""
        return {op.area for op in self.by_route.values()}

    def check_scopes(self, scopes: Iterable[str], role: Role) -> frozenset[str]:
        """The scopes, if each is known and reaches some operation `role` may use."""
        wanted = frozenset(scopes)
        for scope in wanted:
            if scope == ALL:
                continue
            area, _, mode = scope.partition(":")
            reachable = [
                op
                for (method, _path), op in self.by_route.items()
                if op.area == area and (not mode or method in _READING)
            ]
            if mode not in ("", "read") or not reachable:
                raise InvalidScope(f"unknown scope {scope!r}", field="scopes")
            if not any(_role_may(op.roles, role) for op in reachable):
                raise InvalidScope(
                    f"scope {scope!r} reaches nothing a {role.value} may do", field="scopes"
                )
        return wanted


def _role_may(roles: tuple[str, ...], role: Role) -> bool:
    return not roles or "any" in roles or role.value in roles


def parse_scopes(stored: str) -> frozenset[str]:
    """Scopes as stored (space-separated)."""
    return frozenset(stored.split())


def allows(scopes: frozenset[str], operation: Operation | None, method: str) -> bool:
    """Whether a token with these scopes may use this operation (None: not an API route)."""
    if ALL in scopes:
        return True
    if operation is None:
        return False
    return operation.area in scopes or (
        method.upper() in _READING and f"{operation.area}:read" in scopes
    )
