"""Alembic environment: runs on the connection Tolk hands it, or on `sqlalchemy.url`."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import accounts.models
import billing.models
import calls.models
import dispatch.booking_models
import dispatch.models
import infra.leases
import interpreters.models
import stats.models
from infra.db import make_engine

_MODELS = (
    accounts.models,
    interpreters.models,
    calls.models,
    dispatch.models,
    dispatch.booking_models,
    billing.models,
    infra.leases,
    stats.models,
)
target_metadata = SQLModel.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    engine = make_engine(url)
    async with engine.connect() as conn:
        await conn.run_sync(_run)
        await conn.commit()
    await engine.dispose()


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set sqlalchemy.url, or run `tolk migrate`")
    asyncio.run(_run_async(url))


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `tolk migrate`")
run()
