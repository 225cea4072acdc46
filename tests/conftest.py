"""Generic fixtures: a database on SQLite and on PostgreSQL.

A test that asks for `db_url` or `database` runs twice, `[sqlite]` and `[postgres]`.
SQLite gets a fresh file per test. PostgreSQL (server from `QUNBOT_TEST_PG`) gets a fresh
database per test module, emptied after every test and dropped at the end; when the server
is not reachable those tests are skipped with the reason. `-m "not postgres"` leaves them out.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest
from sqlalchemy.engine import make_url

from bot.storage.db import Database
from bot.storage.settings import StorageSettings, normalize_url

PG_SERVER = os.environ.get("QUNBOT_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(autouse=True)
def _no_deployment_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's shell may carry the deployment's settings (QUNBOT_DATABASE_URL would point
    every test config at that database): tests start without them and set what they test."""
    for name in ("QUNBOT_DATABASE_URL", "QUNBOT_CONFIG_POLL"):
        monkeypatch.delenv(name, raising=False)


T = TypeVar("T")


def run_in_thread(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine on a private loop in another thread: sync fixtures use this to
    talk to PostgreSQL without touching the test's own event loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, make()).result()  # type: ignore[arg-type]


def _dsn(url: str, database: str | None = None) -> str:
    """An asyncpg DSN (no "+asyncpg") for `url`, optionally on another database."""
    parsed = make_url(normalize_url(url)).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_dsn(PG_SERVER), timeout=3)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The PostgreSQL server URL; skips (once per session) when it is not reachable."""
    try:
        run_in_thread(lambda: _admin("SELECT 1"))
    except Exception as exc:  # any failure means: no server for these tests
        pytest.skip(f"PostgreSQL not reachable at {_shown(PG_SERVER)}: {type(exc).__name__}: {exc}")
    return PG_SERVER


def create_pg_database(server: str) -> str:
    """Create an empty database `qunbot_test_<hex>` and return its async URL."""
    name = f"qunbot_test_{secrets.token_hex(6)}"
    run_in_thread(lambda: _admin(f'CREATE DATABASE "{name}"'))
    return make_url(normalize_url(server)).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    name = make_url(url).database
    run_in_thread(lambda: _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _empty_pg_database(url: str) -> None:
    """Delete every row (except the migration state). DELETE on the few non-empty tables
    is much faster than TRUNCATE of them all; children go before their parents."""
    import asyncpg

    conn = await asyncpg.connect(_dsn(url), timeout=3)
    try:
        tables = [
            r["t"]
            for r in await conn.fetch(
                "SELECT quote_ident(tablename) AS t FROM pg_tables "
                "WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
            )
        ]
        if not tables:
            return
        probe = " UNION ALL ".join(f"SELECT '{t}' AS t WHERE EXISTS (SELECT 1 FROM {t})" for t in tables)
        left = [r["t"] for r in await conn.fetch(probe)]
        for _ in range(len(left) + 1):
            postponed = []
            for table in left:
                try:
                    async with conn.transaction():
                        await conn.execute(f"DELETE FROM {table}")
                except asyncpg.ForeignKeyViolationError:
                    postponed.append(table)  # still referenced: after its children
            if not postponed:
                return
            left = postponed
        raise RuntimeError(f"could not empty {left}")
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def pg_module_url(pg_server: str) -> Iterator[str]:
    """A fresh PostgreSQL database for the whole test module, dropped afterwards."""
    url = create_pg_database(pg_server)
    try:
        yield url
    finally:
        drop_pg_database(url)


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def db_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(db_backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An empty (or migrated-but-empty) database URL for one test, on each backend."""
    if db_backend == "sqlite":
        path = tmp_path_factory.mktemp("db") / "test.db"
        yield f"sqlite+aiosqlite:///{path}"
        return
    url = request.getfixturevalue("pg_module_url")
    try:
        yield url
    finally:
        run_in_thread(lambda: _empty_pg_database(url))


@pytest.fixture
def fresh_db_url(
    db_backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A brand-new database with no tables at all (e.g. to test migrations)."""
    if db_backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('fresh') / 'fresh.db'}"
        return
    url = create_pg_database(request.getfixturevalue("pg_server"))
    try:
        yield url
    finally:
        drop_pg_database(url)


@pytest.fixture
async def database(db_url: str) -> AsyncIterator[Database]:
    """An open, migrated `Database` on `db_url`."""
    db = await Database.open(StorageSettings(url=db_url))
    try:
        yield db
    finally:
        await db.close()
