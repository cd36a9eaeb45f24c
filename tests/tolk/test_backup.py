"""`tolk backup`: a copy taken while the server runs, restored, holds the data."""

from __future__ import annotations

import asyncio
import sys

import aiohttp

from tests.integration.server import Backend, TolkServer


async def tolk(env: dict[str, str], *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tolk",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def logs_in(url: str, username: str, password: str) -> bool:
    async with (
        aiohttp.ClientSession() as http,
        http.post(url + "/api/session", json={"username": username, "password": password}) as r,
    ):
        return r.status == 200


class TestBackup:
    async def test_a_backup_taken_while_serving_restores_with_the_data(self, tmp_path):
        """A user created while the server runs is in the backup; a server started on the
        restored copy lets them log in."""
        live = TolkServer(tmp_path, Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path}/tolk.db"))
        await live.prepare()
        await live.start()
        backup = tmp_path / "backups" / "tolk-2026-12-04.db"
        backup.parent.mkdir()
        try:
            code, out = await tolk(
                live.env,
                "create-user",
                "neu.beraterin",
                "--role",
                "counsellor",
                "--organization",
                "Stadt Dortmund – Sozialamt",
                "--password",
                "backup-test-2026",
            )
            assert code == 0, out
            assert await logs_in(live.url, "neu.beraterin", "backup-test-2026")
            code, out = await tolk(live.env, "backup", str(backup))
            assert code == 0, out
            assert f"backed up to {backup}" in out
            code, out = await tolk(live.env, "backup", str(backup))
            assert code == 1
            assert "exists already" in out
        finally:
            live.stop()

        restored_dir = tmp_path / "restored"
        restored_dir.mkdir()
        restored = restored_dir / "tolk.db"
        restored.write_bytes(backup.read_bytes())
        again = TolkServer(
            restored_dir,
            Backend("sqlite", f"sqlite+aiosqlite:///{restored}"),
            TOLK_SECRET_KEY=live.env["TOLK_SECRET_KEY"],
        )
        await again.start()
        try:
            assert await logs_in(again.url, "neu.beraterin", "backup-test-2026")
            assert await logs_in(again.url, "berater.caritas", "demo-tolk-2026")
            assert not await logs_in(again.url, "neu.beraterin", "wrong-password-1")
        finally:
            again.stop()

    async def test_postgresql_is_pointed_to_pg_dump(self, tmp_path):
        """On PostgreSQL the command says to use pg_dump instead of copying anything."""
        env = TolkServer(
            tmp_path, Backend("postgres", "postgresql+asyncpg://tolk@127.0.0.1/none")
        ).env
        code, out = await tolk(env, "backup", str(tmp_path / "x.db"))
        assert code == 1
        assert "pg_dump" in out
        assert not (tmp_path / "x.db").exists()
