"""The roster through HTTP and real sockets: languages, presence, admin API, CSV import."""

from __future__ import annotations

import pytest
from sqlalchemy import func
from sqlmodel import select

from accounts.models import Role, User
from infra.ids import new_id
from interpreters import presence
from interpreters.models import Interpreter, Presence
from tests.factories import make_interpreter, refresh_presence_of, sweep_presence_of
from tests.interpreters.roster import admin_headers, import_roster
from tests.waiting import next_message


async def figures(client, token, locale="de"):
    resp = await client.get(
        f"/api/languages?locale={locale}", headers={"Authorization": f"Bearer {token}"}
    )
    assert resp.status == 200
    return {row["tag"]: row for row in await resp.json()}


async def set_status(client, token, status):
    return await client.put(
        "/api/interpreters/me/status",
        json={"status": status},
        headers={"Authorization": f"Bearer {token}"},
    )


def available(update, tag):
    """The available count of one language in a `languages.updated`."""
    return next(f["available"] for f in update["languages"] if f["tag"] == tag)


async def available_becomes(ws, tag, count):
    """Skip figures until those in which `tag` has `count` available (a presence change
    may come in two publications: the socket, then the status)."""
    while available(await next_message(ws, "languages.updated"), tag) != count:
        pass


async def messages_until(ws, ref):
    """What a test socket receives up to and including the answer carrying `ref`."""
    received: list[dict] = []
    while not received or received[-1].get("ref") != ref:
        received.append(await ws.receive_json(timeout=5))
    return received


async def watch(ws, on):
    """Send `languages.watch`; what came before its answer (which says `on`)."""
    await ws.send_json({"type": "languages.watch", "watch": on, "ref": "w"})
    *before, answer = await messages_until(ws, "w")
    assert answer == {"type": "languages.watching", "watch": on, "ref": "w"}
    return before


class TestLanguages:
    async def test_counts_follow_interpreters_going_on_and_offline(
        self, client, factory, clock, settings
    ):
        """Online and available counts change as interpreters connect, switch and leave."""
        counsellor = await factory.token(await factory.user(Role.COUNSELLOR))
        olena = await factory.interpreter(("uk", "ru"))
        dmytro = await factory.interpreter(("uk",))
        assert (await figures(client, counsellor))["uk"] == {
            "tag": "uk",
            "name": "Ukrainisch",
            "autonym": "українська",
            "search_names": ["Ukrainisch", "Ukrainian", "українська", "uk", "ukr"],
            "online": 0,
            "available": 0,
            "queued": 0,
            "eta_s": None,
        }
        olena_token, dmytro_token = await factory.token(olena), await factory.token(dmytro)
        olena_ws = await factory.socket(olena_token)
        dmytro_ws = await factory.socket(dmytro_token)
        assert (await set_status(client, olena_token, "available")).status == 200
        assert (await set_status(client, dmytro_token, "away")).status == 200
        now = await figures(client, counsellor)
        assert (now["uk"]["online"], now["uk"]["available"]) == (2, 1)
        assert (now["ru"]["online"], now["ru"]["available"]) == (1, 1)
        await olena_ws.close()
        await factory.sockets_closed(olena)
        clock.advance(settings.presence_grace_s + 1)
        await sweep_presence_of(client.app)
        now = await figures(client, counsellor)
        assert (now["uk"]["online"], now["uk"]["available"]) == (1, 0)
        assert now["ru"]["online"] == 0
        await dmytro_ws.close()

    async def test_regional_variant_counts_for_the_base_language(self, client, factory):
        """An ar-SY interpreter counts for ar too; names follow ?locale."""
        counsellor = await factory.token(await factory.user(Role.COUNSELLOR))
        layla = await factory.interpreter(("ar-SY",))
        await factory.interpreter(("ar",))
        ws = await factory.socket(await factory.token(layla))
        await set_status(client, await factory.token(layla), "available")
        rows = await figures(client, counsellor, "en")
        assert rows["ar"]["available"] == 1
        assert rows["ar-SY"]["available"] == 1
        assert rows["ar-SY"]["name"] == "Arabic (Syria)"
        await ws.close()

    async def test_an_interpreter_of_a_language_and_its_variant_counts_once(self, client, factory):
        """Nadia lists ar and ar-EG: one more interpreter available for ar, not two; one
        who is offline or whose login is ended counts for nothing."""
        counsellor = await factory.token(await factory.user(Role.COUNSELLOR))
        nadia = await factory.interpreter(("ar", "ar-EG"))
        await factory.interpreter(("ar-EG",))  # offline
        ended = await factory.interpreter(("ar",))
        ws = await factory.socket(await factory.token(nadia))
        await set_status(client, await factory.token(nadia), "available")
        ended_ws = await factory.socket(await factory.token(ended))
        await set_status(client, await factory.token(ended), "available")
        admin = await factory.token(await factory.user(Role.ADMIN))
        resp = await client.patch(
            f"/api/admin/users/{ended.id}",
            json={"active": False},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert resp.status == 200, await resp.text()
        rows = await figures(client, counsellor)
        assert (rows["ar"]["online"], rows["ar"]["available"]) == (1, 1)
        assert (rows["ar-EG"]["online"], rows["ar-EG"]["available"]) == (1, 1)
        await ws.close()
        await ended_ws.close()

    async def test_counsellor_socket_gets_languages_updated(self, client, factory):
        """A counsellor's open socket hears about a change in availability."""
        counsellor = await factory.token(await factory.user(Role.COUNSELLOR))
        interpreter = await factory.interpreter(("ti",))
        watcher = await factory.socket(counsellor)
        own = await factory.socket(await factory.token(interpreter))
        await set_status(client, await factory.token(interpreter), "available")
        update = await next_message(watcher, "languages.updated")
        assert {"tag": "ti", "online": 1, "available": 1, "queued": 0, "eta_s": None} in update[
            "languages"
        ]
        assert (await next_message(own, "presence.updated"))["status"] == "available"
        await watcher.close()
        await own.close()

    async def test_a_socket_that_stops_watching_gets_no_figures_and_catches_up(
        self, client, factory
    ):
        """A page in the background says it does not watch: the figures pass it by; when
        it watches again it gets the current ones at once, and every change after."""
        counsellor = await factory.token(await factory.user(Role.COUNSELLOR))
        interpreter = await factory.interpreter(("ti",))
        interpreter_token = await factory.token(interpreter)
        shown = await factory.socket(counsellor)  # says nothing: watches, as always
        hidden = await factory.socket(counsellor)
        await watch(hidden, False)
        own = await factory.socket(interpreter_token)
        await set_status(client, interpreter_token, "available")
        await available_becomes(shown, "ti", 1)
        # The figures went to every watching socket at once: a pong comes before any.
        await hidden.send_json({"type": "ping", "ref": "p"})
        assert await messages_until(hidden, "p") == [{"type": "pong", "ref": "p"}]

        caught_up = await watch(hidden, True)
        assert [m["type"] for m in caught_up] == ["languages.updated"]
        assert available(caught_up[0], "ti") == 1
        await set_status(client, interpreter_token, "away")
        await available_becomes(hidden, "ti", 0)
        for ws in (shown, hidden, own):
            await ws.close()

    async def test_watching_again_later_reads_the_figures_anew(self, client, factory, clock):
        """The last figures published are handed on only while fresh: what changed
        without a publication (a queue's wait, rows written directly) is read anew."""
        counsellor = await factory.token(await factory.user(Role.COUNSELLOR))
        interpreter_token = await factory.token(await factory.interpreter(("ti",)))
        ws = await factory.socket(counsellor)
        own = await factory.socket(interpreter_token)
        await set_status(client, interpreter_token, "available")
        await available_becomes(ws, "ti", 1)
        await make_interpreter(factory, ["ti"], status="available")  # no publication

        at_once = await watch(ws, True)
        assert [available(m, "ti") for m in at_once] == [1]  # as published a moment ago
        clock.advance(6)
        later = await watch(ws, True)
        assert [available(m, "ti") for m in later] == [2]
        for socket in (ws, own):
            await socket.close()

    async def test_watching_starts_with_the_figures_before_any_were_published(
        self, client, factory
    ):
        """On a fresh instance (nothing published yet) the figures are read for it."""
        await make_interpreter(factory, ["ti"], status="available")
        ws = await factory.socket(await factory.token(await factory.user(Role.MANAGEMENT)))
        figures = await watch(ws, True)
        assert [m["type"] for m in figures] == ["languages.updated"]
        assert available(figures[0], "ti") == 1
        await ws.close()

    async def test_only_counsellors_and_admins_see_languages(self, client, factory):
        """Interpreters and finance get 403."""
        for role in (Role.INTERPRETER, Role.FINANCE):
            token = await factory.token(await factory.user(role))
            resp = await client.get("/api/languages", headers={"Authorization": f"Bearer {token}"})
            assert resp.status == 403


class TestPresence:
    async def test_grace_period_counts_tabs_as_one(self, client, factory, clock, settings):
        """Offline only after the last tab closed and the grace period passed."""
        interpreter = await factory.interpreter()
        token = await factory.token(interpreter)

        async def status_after_sweep():
            await sweep_presence_of(client.app)
            me = await client.get(
                "/api/interpreters/me", headers={"Authorization": f"Bearer {token}"}
            )
            return (await me.json())["interpreter"]["status"]

        tab1, tab2 = await factory.socket(token), await factory.socket(token)
        await set_status(client, token, "available")
        await tab1.close()
        await factory.eventually_connections(interpreter, 1)
        clock.advance(settings.presence_grace_s + 5)
        assert await status_after_sweep() == "available"
        await tab2.close()
        await factory.sockets_closed(interpreter)
        clock.advance(settings.presence_grace_s - 1)
        assert await status_after_sweep() == "available"
        reconnect = await factory.socket(token)
        clock.advance(settings.presence_grace_s + 1)
        assert await status_after_sweep() == "available"
        await reconnect.close()
        await factory.sockets_closed(interpreter)
        clock.advance(settings.presence_grace_s + 1)
        assert await status_after_sweep() == "offline"

    async def test_available_without_a_socket_goes_offline(self, client, factory, clock, settings):
        """Available over HTTP alone (or on an instance that died): offline after the grace."""
        interpreter = await factory.interpreter()
        token = await factory.token(interpreter)
        headers = {"Authorization": f"Bearer {token}"}
        await set_status(client, token, "available")
        await refresh_presence_of(client.app)
        clock.advance(settings.presence_grace_s - 1)
        await sweep_presence_of(client.app)
        me = await (await client.get("/api/interpreters/me", headers=headers)).json()
        assert me["interpreter"]["status"] == "available"
        clock.advance(2)
        await sweep_presence_of(client.app)
        me = await (await client.get("/api/interpreters/me", headers=headers)).json()
        assert me["interpreter"]["status"] == "offline"

    async def test_sockets_live_and_die_with_their_instance(
        self, client, factory, db, clock, settings
    ):
        """A socket held by another instance counts while that instance beats; once it
        falls silent its sockets are dropped and the grace period starts."""
        interpreter = await factory.interpreter()
        token = await factory.token(interpreter)
        headers = {"Authorization": f"Bearer {token}"}
        await set_status(client, token, "available")
        stale_after = 3 * settings.ws_heartbeat_s
        async with db.write() as session:
            await presence.socket_opened(
                session, interpreter.id, new_id(), "other-instance", clock.now()
            )
            await presence.refresh_sockets(
                session, "other-instance", clock.now(), settings.presence_grace_s, stale_after
            )

        async def status_after(seconds: float) -> str:
            clock.advance(seconds)
            await refresh_presence_of(client.app)
            await sweep_presence_of(client.app)
            me = await (await client.get("/api/interpreters/me", headers=headers)).json()
            return me["interpreter"]["status"]

        # The other instance beats on: its socket, opened long ago, keeps the presence.
        beats = int((settings.presence_grace_s + stale_after) // settings.ws_heartbeat_s) + 2
        for _ in range(beats):
            assert await status_after(settings.ws_heartbeat_s) == "available"
            async with db.write() as session:
                await presence.refresh_sockets(
                    session, "other-instance", clock.now(), settings.presence_grace_s, stale_after
                )
        # It dies: the socket goes once the heartbeat is stale, then the grace period runs.
        assert await status_after(stale_after + 1) == "available"
        assert await status_after(settings.presence_grace_s + 1) == "offline"

    async def test_presence_socket_message(self, client, factory):
        """The presence message switches status like the HTTP call, with a ref'd answer."""
        interpreter = await factory.interpreter(("pl",))
        ws = await factory.socket(await factory.token(interpreter))
        await ws.send_json({"type": "presence", "status": "away", "ref": "p1"})
        reply = await next_message(ws, "presence.updated")
        while "ref" not in reply:
            reply = await next_message(ws, "presence.updated")
        assert reply == {"type": "presence.updated", "ref": "p1", "status": "away"}
        await ws.send_json({"type": "presence", "status": "busy"})
        assert (await next_message(ws, "error"))["code"] == "invalid_message"
        await ws.close()

    async def test_busy_interpreter_cannot_switch(self, client, factory, db):
        """While busy (in a call) a status change is 409 in_call."""
        interpreter = await factory.interpreter()
        token = await factory.token(interpreter)
        async with db.write() as session:
            row = await session.get(Interpreter, interpreter.id)
            row.status = Presence.BUSY
            session.add(row)
        resp = await set_status(client, token, "offline")
        assert resp.status == 409
        assert (await resp.json())["error"]["code"] == "in_call"

    async def test_own_profile(self, client, factory):
        """An interpreter sees their languages with German names and status."""
        interpreter = await factory.interpreter(("prs", "ps"))
        token = await factory.token(interpreter)
        body = await (
            await client.get("/api/interpreters/me", headers={"Authorization": f"Bearer {token}"})
        ).json()
        assert body["interpreter"]["languages"] == [
            {"tag": "fa-AF", "name": "Dari"},
            {"tag": "ps", "name": "Paschtu"},
        ]
        assert body["interpreter"]["status"] == "offline"
        other = await factory.token(await factory.user(Role.COUNSELLOR))
        assert (
            await client.get("/api/interpreters/me", headers={"Authorization": f"Bearer {other}"})
        ).status == 403


ROSTER = (
    "username,display_name,email,languages,gender,specializations,agency\n"
    "olena,Olena Kovalenko,olena@example.org,uk ru,female,social,Sprachmittler e.V.\n"
    "farid,Farid Ahmadi,,prs ps,male,,\n"
    "tesfay,Tesfay G.,tesfay@example.org,tir,,social medical,\n"
)


class TestAdmin:
    async def test_a_file_the_csv_module_cannot_read_is_422_not_500(self, client, factory):
        """A lone carriage return (old Mac line ends) is a line end; a field beyond the csv
        module's limit is 422 naming the body."""
        admin = await admin_headers(factory)
        for name in ("social", "medical"):
            await client.post("/api/admin/specializations", json={"name": name}, headers=admin)
        resp = await import_roster(client, admin, ROSTER.replace("\n", "\r"))
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["created"] == 3
        huge = b"username,display_name\n" + b"a" * 200_000 + b",x\n"
        resp = await import_roster(client, admin, huge)
        assert resp.status == 422
        assert (await resp.json())["error"]["fields"][0]["field"] == "body"

    async def test_csv_import_is_idempotent(self, client, factory, db):
        """Importing a roster creates interpreters; the same file again changes nothing."""
        headers = await admin_headers(factory)
        for name in ("social", "medical"):
            await client.post("/api/admin/specializations", json={"name": name}, headers=headers)
        first = await import_roster(client, headers, ROSTER)
        assert first.status == 200, await first.text()
        assert await first.json() == {"created": 3, "updated": 0, "unchanged": 0}
        again = await import_roster(client, headers, ROSTER)
        assert await again.json() == {"created": 0, "updated": 0, "unchanged": 3}
        changed = ROSTER.replace("tir,", "tir en,")
        third = await import_roster(client, headers, changed)
        assert await third.json() == {"created": 0, "updated": 1, "unchanged": 2}
        listing = await (
            await client.get("/api/admin/interpreters?language=fa-AF", headers=headers)
        ).json()
        assert [i["username"] for i in listing["interpreters"]] == ["farid"]
        assert listing["interpreters"][0]["languages"][0] == {"tag": "fa-AF", "name": "Dari"}

    async def test_bad_file_lists_every_bad_row_and_writes_nothing(self, client, factory, db):
        """Several bad rows are all reported by row and column; no user is created."""
        headers = await admin_headers(factory)
        await factory.user(Role.COUNSELLOR, "anna")
        bad = (
            "username;display_name;email;languages;gender;specializations\n"
            "good.one;Good One;;uk;;\n"
            "x;No Name;not-an-email;uk;;\n"
            "klaus;Klaus;;klingon;robot;\n"
            "good.one;Again;;uk;;cooking\n"
            "anna;Anna;;uk;;\n"
        )
        async with db.read() as session:
            before = (await session.exec(select(func.count()).select_from(User))).one()
        resp = await import_roster(client, headers, bad.encode("utf-8-sig"))
        assert resp.status == 422
        error = (await resp.json())["error"]
        assert error["code"] == "invalid_rows"
        assert {(r["row"], r["column"]) for r in error["rows"]} == {
            (3, "username"),
            (3, "email"),
            (4, "languages"),
            (4, "gender"),
            (5, "username"),
            (5, "specializations"),
            (6, "username"),
        }
        async with db.read() as session:
            after = (await session.exec(select(func.count()).select_from(User))).one()
        assert before == after

    async def test_put_profile_and_deactivate(self, client, factory):
        """Admins create or replace a profile and deactivate it; bad tags are 422."""
        headers = await admin_headers(factory)
        user = await factory.user(Role.INTERPRETER)
        resp = await client.put(
            f"/api/admin/interpreters/{user.id}",
            json={"languages": ["UKR", "ar-sy"], "gender": "female"},
            headers=headers,
        )
        assert resp.status == 200
        body = (await resp.json())["interpreter"]
        assert [lang["tag"] for lang in body["languages"]] == ["ar-SY", "uk"]
        bad = await client.put(
            f"/api/admin/interpreters/{user.id}", json={"languages": ["nonsense"]}, headers=headers
        )
        assert bad.status == 422
        # A person of another role may interpret in the house; a machine account may not.
        machine = await factory.user(Role.COUNSELLOR, machine=True)
        wrong = await client.put(
            f"/api/admin/interpreters/{machine.id}", json={"languages": ["uk"]}, headers=headers
        )
        assert (wrong.status, (await wrong.json())["error"]["code"]) == (422, "not_an_interpreter")
        off = await client.patch(
            f"/api/admin/interpreters/{user.id}", json={"active": False}, headers=headers
        )
        assert (await off.json())["interpreter"]["active"] is False
        listing = await (
            await client.get("/api/admin/interpreters?active=true", headers=headers)
        ).json()
        assert user.id not in [i["id"] for i in listing["interpreters"]]

    @pytest.mark.parametrize("role", [Role.COUNSELLOR, Role.INTERPRETER, Role.FINANCE])
    async def test_admin_roster_api_refuses_other_roles(self, client, factory, role):
        """Every role other than admin gets 403 from each roster admin endpoint."""
        token = await factory.token(await factory.user(role))
        headers = {"Authorization": f"Bearer {token}"}
        target = await factory.interpreter()
        calls = [
            client.get("/api/admin/interpreters", headers=headers),
            client.get(f"/api/admin/interpreters/{target.id}", headers=headers),
            client.put(
                f"/api/admin/interpreters/{target.id}", json={"languages": ["uk"]}, headers=headers
            ),
            client.patch(
                f"/api/admin/interpreters/{target.id}", json={"active": False}, headers=headers
            ),
            client.post("/api/admin/interpreters/import", data=ROSTER.encode(), headers=headers),
            client.get("/api/admin/specializations", headers=headers),
            client.post("/api/admin/specializations", json={"name": "x1"}, headers=headers),
        ]
        for call in calls:
            assert (await call).status == 403
