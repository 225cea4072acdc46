"""Databases for the stats tests: every test that takes the `database` fixture runs on SQLite
and on PostgreSQL (QUNBOT_TEST_PG, default postgres@127.0.0.1:5432; skipped with the reason
when no server answers). Both are migrated once per session: a SQLite test gets a copy of a
migrated file, a PostgreSQL test the session's database with every table emptied."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bot.storage.db import Database

PG_URL = os.environ.get("QUNBOT_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
_PG_NAME = f"qunbot_stats_test_{os.getpid()}"


async def _admin(sql: str) -> None:
    import asyncpg

    url = make_url(PG_URL)
    conn = await asyncpg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password,
        database=url.database or "postgres",
        timeout=3,
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _pg_db_url(name: str) -> str:
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("stats-template") / "template.db"

    async def make() -> None:
        db = await Database.open(f"sqlite+aiosqlite:///{path}")
        await db.close()

    asyncio.run(make())
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[tuple[str | None, str]]:
    """(URL of a migrated database, "") or (None, why) when PostgreSQL is not there."""

    async def make() -> None:
        await _admin(f'DROP DATABASE IF EXISTS "{_PG_NAME}"')
        await _admin(f'CREATE DATABASE "{_PG_NAME}"')
        db = await Database.open(_pg_db_url(_PG_NAME))
        await db.close()

    try:
        asyncio.run(make())
    except Exception as exc:  # no server, no driver, refused: the PostgreSQL half is skipped
        yield None, f"PostgreSQL not reachable at {PG_URL}: {type(exc).__name__}: {exc}"
        return
    yield _pg_db_url(_PG_NAME), ""
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{_PG_NAME}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path, pg_database: tuple[str | None, str]
) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        path = tmp_path / "stats.db"
        shutil.copyfile(sqlite_template, path)
        db = await Database.open(f"sqlite+aiosqlite:///{path}", migrate=False)
    else:
        url, why = pg_database
        if url is None:
            pytest.skip(why)
        db = await Database.open(url, migrate=False)
        async with db.engine.begin() as conn:
            tables = (
                (
                    await conn.execute(
                        sa.text(
                            "SELECT tablename FROM pg_tables"
                            " WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
                        )
                    )
                )
                .scalars()
                .all()
            )
            # DELETE beats TRUNCATE on tiny tables; foreign keys are not checked meanwhile.
            await conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
            for table in tables:
                await conn.execute(sa.text(f'DELETE FROM "{table}"'))
    try:
        yield db
    finally:
        await db.close()
