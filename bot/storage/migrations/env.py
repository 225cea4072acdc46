"""Alembic environment for qunbot.

Normally run by `Database.migrate()`, which passes an open (sync-facing) connection in
`config.attributes["connection"]`. Run by hand (e.g. `alembic revision --autogenerate`
with a config whose `script_location` points here), it builds an async engine from the
`sqlalchemy.url` option or `QUNBOT_DATABASE_URL` (the name every qunbot command reads, see
bot.config.env), and drives it through `run_sync`.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import bot.storage.models  # noqa: F401  (registers the core tables on SQLModel.metadata)
from bot.config.env import environment
from bot.config.errors import ConfigError
from bot.storage.settings import normalize_url

config = context.config
target_metadata = SQLModel.metadata


def _configure_and_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode recreates the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return normalize_url(url)
    try:
        from_env = environment().database_url
    except ConfigError as err:
        raise RuntimeError(str(err)) from None
    if not from_env:
        raise RuntimeError("no database URL: set sqlalchemy.url or QUNBOT_DATABASE_URL")
    return from_env


def run_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_engine() -> None:
    engine = create_async_engine(_url())
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_configure_and_run)
    finally:
        await engine.dispose()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure_and_run(connection)
    else:
        asyncio.run(_run_with_own_engine())


if context.is_offline_mode():
    run_offline()
else:
    run_online()
