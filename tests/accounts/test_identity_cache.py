"""Recently resolved tokens and cookies are reused, and never outlive a logout, revocation
or deactivation made on this instance."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import col, select

from accounts.models import ApiToken, Role, User


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class TestIdentityCache:
    async def test_revoked_token_is_refused_right_after_use(self, client, factory):
        """A token used a moment ago stops working as soon as an admin revokes it."""
        admin = await factory.user(Role.ADMIN)
        token = await factory.token(await factory.user())
        other = await factory.new_client()
        assert (await other.get("/api/me", headers=_bearer(token))).status == 200
        async with factory.db.read() as session:
            token_id = (await session.exec(select(ApiToken.id))).one()
        await factory.login(admin)
        resp = await client.delete(f"/api/admin/tokens/{token_id}", headers=factory.headers())
        assert resp.status == 204
        assert (await other.get("/api/me", headers=_bearer(token))).status == 401
        await other.close()

    async def test_logout_ends_a_cookie_used_a_moment_ago(self, client, factory):
        """The old cookie value is refused right after logout, though it was just used."""
        await factory.login(await factory.user())
        cookie = client.session.cookie_jar.filter_cookies(client.make_url("/"))[
            "tolk_session"
        ].value
        other = await factory.new_client()
        other.session.cookie_jar.update_cookies({"tolk_session": cookie})
        assert (await other.get("/api/me")).status == 200
        assert (await client.delete("/api/session", headers=factory.headers())).status == 204
        assert (await other.get("/api/me")).status == 401
        await other.close()

    async def test_deactivation_stops_token_and_cookie_used_a_moment_ago(self, client, factory):
        """A deactivated user's token and cookie are refused at once, though just used."""
        admin = await factory.user(Role.ADMIN)
        user = await factory.user()
        token = await factory.token(user)
        other = await factory.new_client()
        await factory.login(user, other)
        assert (await other.get("/api/me")).status == 200
        assert (await other.get("/api/me", headers=_bearer(token))).status == 200
        await factory.login(admin)
        resp = await client.patch(
            f"/api/admin/users/{user.id}", json={"active": False}, headers=factory.headers()
        )
        assert resp.status == 200
        assert (await other.get("/api/me", headers=_bearer(token))).status == 401
        other.session.cookie_jar.clear()
        assert (await other.get("/api/me", headers=_bearer(token))).status == 401
        await other.close()

    async def test_renaming_shows_at_once(self, client, factory):
        """A new display name shows on the user's next request, not seconds later."""
        admin = await factory.user(Role.ADMIN)
        user = await factory.user()
        token = await factory.token(user)
        assert (await client.get("/api/me", headers=_bearer(token))).status == 200
        await factory.login(admin)
        resp = await client.patch(
            f"/api/admin/users/{user.id}", json={"display_name": "Renamed"},
            headers=factory.headers(),
        )  # fmt: skip
        assert resp.status == 200
        other = await factory.new_client()
        me = await (await other.get("/api/me", headers=_bearer(token))).json()
        assert me["user"]["display_name"] == "Renamed"
        await other.close()

    async def test_change_elsewhere_applies_within_the_cache_time(
        self, client, factory, clock, settings
    ):
        """A revocation this instance did not make (another instance's) applies within seconds."""
        token = await factory.token(await factory.user())
        assert (await client.get("/api/me", headers=_bearer(token))).status == 200
        # As another instance would: a plain UPDATE this process's ORM does not see.
        async with factory.db.engine.begin() as conn:
            await conn.execute(update(ApiToken).values(revoked_at=clock.now()))
        clock.advance(settings.identity_cache_s + 0.5)
        assert (await client.get("/api/me", headers=_bearer(token))).status == 401

    async def test_a_token_used_a_moment_ago_is_not_looked_up_again(
        self, client, factory, clock, settings
    ):
        """Within the cache time the token is served from memory: a change made elsewhere
        (which only the database knows of) is not seen yet, and is seen once it passes."""
        token = await factory.token(await factory.user())
        assert (await client.get("/api/me", headers=_bearer(token))).status == 200
        async with factory.db.engine.begin() as conn:
            await conn.execute(update(ApiToken).values(revoked_at=clock.now()))
        clock.advance(settings.identity_cache_s / 2)
        assert (await client.get("/api/me", headers=_bearer(token))).status == 200
        clock.advance(settings.identity_cache_s / 2 + 0.5)
        assert (await client.get("/api/me", headers=_bearer(token))).status == 401

    async def test_deactivated_elsewhere_applies_within_the_cache_time(
        self, client, factory, clock, settings
    ):
        """A user deactivated by another instance loses access within seconds."""
        user = await factory.user()
        token = await factory.token(user)
        assert (await client.get("/api/me", headers=_bearer(token))).status == 200
        async with factory.db.engine.begin() as conn:
            await conn.execute(update(User).where(col(User.id) == user.id).values(active=False))
        clock.advance(settings.identity_cache_s + 0.5)
        assert (await client.get("/api/me", headers=_bearer(token))).status == 401


class TestIdentityCacheBound:
    def test_expired_entries_go_when_new_ones_come(self):
        """A burst of lookups (say, every socket reconnecting) does not stay in memory once
        its entries have expired: the next entry put drops them."""
        from datetime import UTC, datetime, timedelta

        from accounts import service
        from accounts.access import IdentityCache
        from accounts.views import Identity

        cache = IdentityCache(ttl_s=5.0)
        start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        epoch = service.identity_epoch()
        for i in range(100):
            who = Identity(f"u{i}", f"user{i}", "U", Role.COUNSELLOR, "o", "Org")
            cache.put(f"token:{i}", who, start, epoch, start + timedelta(hours=1))
        assert len(cache) == 100
        later = start + timedelta(seconds=6)
        last = Identity("u-last", "last", "L", Role.COUNSELLOR, "o", "Org")
        cache.put("token:last", last, later, epoch, later + timedelta(hours=1))
        assert len(cache) == 1
        assert cache.get("token:last", later) == last
        assert cache.get("token:0", later) is None
