"""API tokens as an admin issues and revokes them: who may hold one, with which scopes,
and the security events they leave."""

from __future__ import annotations

from datetime import timedelta

from accounts import service
from accounts.audit import Action, AuditedChange, Target
from accounts.errors import NotAMachineAccount, TerminalAccount, TokenNeedsLogin
from accounts.models import Role
from accounts.scopes import Operations
from accounts.views import Identity
from infra.errors import NotFound


def require_login(identity: Identity) -> None:
    """Refuse (403) a caller who came with a token: a leaked token must not be able to mint
    or revoke tokens, only a person logged in."""
    if identity.token_id is not None:
        raise TokenNeedsLogin()


async def issue_token(
    change: AuditedChange,
    operations: Operations,
    *,
    owner_id: str,
    name: str,
    scopes: list[str],
    days: int,
    issued_by: Identity,
) -> service.NewToken:
    """A token for the issuer themselves or a machine account, valid for `days`, with scopes
    that reach something the owner's role may do."""
    require_login(issued_by)
    owner = await service.get_user(change.session, owner_id)
    if owner.id != issued_by.user_id and not owner.machine:
        raise NotAMachineAccount(field="user_id")
    if owner.role == Role.TERMINAL:
        # Its device link is its one way in: a token would be a second, unaudited device.
        raise TerminalAccount(field="user_id")
    if not owner.active:
        raise NotFound("No such active user.")
    checked = operations.check_scopes(scopes, owner.role)
    new = await service.issue_api_token(
        change.session,
        owner.id,
        name,
        change.now,
        expires_at=change.now + timedelta(days=days),
        scopes=checked,
        created_by=issued_by.user_id,
    )
    await change.record(
        Action.TOKEN_ISSUED,
        Target("token", new.id, new.row.name),
        user_id=owner.id,
        username=owner.username,
        scopes=sorted(checked),
        expires_at=new.row.expires_at.isoformat(),
    )
    return new


async def revoke_token(change: AuditedChange, token_id: str, revoked_by: Identity) -> None:
    """Revoke a token at once, by a person logged in."""
    require_login(revoked_by)
    token = await service.revoke_api_token(change.session, token_id, change.now)
    await change.record(
        Action.TOKEN_REVOKED, Target("token", token.id, token.name), user_id=token.user_id
    )
