"""The database handle: an async engine, a session factory, and migrations at start-up."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import StaticPool
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.storage.health import DatabaseHealth, describe, is_outage, masked_url
from bot.storage.settings import StorageSettings

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
CORE_REVISION = "0001_core"

# pg_advisory_xact_lock key ("qunbot" in ASCII): serialises migrations across processes.
_MIGRATION_LOCK = 0x71756E626F74

# A connection attempt to an unreachable PostgreSQL host gives up after this long (asyncpg's
# default, 60 s, would stall every probe and every command during an outage).
_PG_CONNECT_TIMEOUT = 5


class DatabaseUnavailable(RuntimeError):
    """The database could not be reached at start-up within `connect_retry_seconds`."""


_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",  # readers never block the writer
    "PRAGMA synchronous=NORMAL",  # safe with WAL; much faster than FULL
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",  # wait for another writer instead of failing at once
)


def _json_dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


MIGRATIONS_ENTRY_POINTS = "qunbot.migrations"


class PluginMigrationsError(RuntimeError):
    """An installed distribution's `qunbot.migrations` entry point does not lead to a directory
    of revisions; the message names the distribution."""


def installed_version_locations() -> list[Path]:
    """The revision directories that installed third-party plugins declare, one entry point
    each in the `qunbot.migrations` group: the value is a package holding revision files.

    Every installed plugin's revisions apply whether or not the config enables it, as the
    built-in plugins' do: the schema must not depend on the config, and a database that once
    had a plugin's revision must keep finding it (Alembic refuses a revision it cannot see)."""
    found: list[Path] = []
    for ep in entry_points(group=MIGRATIONS_ENTRY_POINTS):
        dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist is not None else "an unknown distribution"
        try:
            module = ep.load()
        except Exception as exc:
            raise PluginMigrationsError(
                f"the migrations entry point {ep.name} = {ep.value!r} of the distribution {dist} failed to import: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        paths = list(getattr(module, "__path__", ()))
        if not paths or not Path(paths[0]).is_dir():
            raise PluginMigrationsError(
                f"the migrations entry point {ep.name} = {ep.value!r} of the distribution {dist} "
                "must name a package (a directory of revision files)"
            )
        found.append(Path(paths[0]))
    return sorted(set(found))


def alembic_config(extra_version_locations: Sequence[str | Path] = ()) -> Config:
    """An in-memory Alembic config: no alembic.ini on disk. Besides the core's, revisions come
    from installed plugins (`installed_version_locations`) and from extra directories given here."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    extra = {Path(p).resolve() for p in (*installed_version_locations(), *extra_version_locations)}
    locations = [str(MIGRATIONS_DIR / "versions"), *sorted(str(p) for p in extra)]
    # "os" splits on os.pathsep; both option names so old and new Alembic agree.
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_path_separator", "os")
    cfg.set_main_option("version_locations", os.pathsep.join(locations))
    return cfg


def _upgrade(connection: Connection, cfg: Config) -> None:
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "heads")


class Database:
    """Owns the engine. Use `async with db.session() as s:` (commit yourself) or
    `async with db.transaction() as s:` (committed on success, rolled back on error)."""

    def __init__(self, engine: AsyncEngine, settings: StorageSettings) -> None:
        self.engine = engine
        self.settings = settings
        self._sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
        self.health = DatabaseHealth(self.ping, masked_url(settings.url), max_delay=settings.retry_max_seconds)

    @classmethod
    async def open(
        cls,
        settings: StorageSettings | str | None = None,
        *,
        migrate: bool = True,
        version_locations: Sequence[str | Path] = (),
    ) -> Database:
        if settings is None:
            settings = StorageSettings()
        elif isinstance(settings, str):
            settings = StorageSettings(url=settings)
        # Readable JSON (Chinese stays Chinese in meta columns on SQLite).
        kwargs: dict[str, Any] = {"echo": settings.echo, "json_serializer": _json_dumps}
        path = settings.sqlite_path
        if settings.dialect == "sqlite":
            if path is None:
                # In-memory: every connection would see its own empty database otherwise.
                kwargs["poolclass"] = StaticPool
            else:
                await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        else:
            kwargs["pool_pre_ping"] = True
            kwargs["connect_args"] = {"timeout": _PG_CONNECT_TIMEOUT}
        engine = create_async_engine(settings.url, **kwargs)
        if settings.dialect == "sqlite":
            sa.event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        db = cls(engine, settings)
        try:
            await db._reach(settings.connect_retry_seconds)
            if migrate:
                await db.migrate(version_locations)
        except BaseException:
            await engine.dispose()
            raise
        return db

    async def _reach(self, patience: float) -> None:
        """Connect once, retrying with back-off for `patience` seconds while the server is
        unreachable; then DatabaseUnavailable, naming the database (password masked)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + patience
        delay = 0.5
        name = masked_url(self.settings.url)
        while True:
            try:
                await self.ping()
                return
            except Exception as exc:
                if not is_outage(exc):
                    raise
                left = deadline - loop.time()
                if left <= 0:
                    raise DatabaseUnavailable(
                        f"cannot reach the database {name} (gave up after {patience:g} s): {describe(exc)}"
                    ) from exc
                wait = min(delay, left)
                log.warning(
                    "database %s unreachable (%s); retrying in %.1f s (giving up in %.0f s)",
                    name,
                    describe(exc),
                    wait,
                    left,
                )
                await asyncio.sleep(wait)
                delay = min(delay * 2, self.settings.retry_max_seconds)

    async def ping(self) -> None:
        """One round trip (SELECT 1): raises when the database is not reachable."""
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    @property
    def dialect(self) -> str:
        """ "sqlite" or "postgresql"."""
        return self.engine.dialect.name

    @property
    def url(self) -> str:
        return self.settings.url

    def session(self) -> AsyncSession:
        return self._sessions()

    def transaction(self) -> AbstractAsyncContextManager[AsyncSession]:
        return self._sessions.begin()

    async def migrate(self, version_locations: Sequence[str | Path] = ()) -> None:
        """Apply every pending revision on every branch (`upgrade heads`), in one
        transaction held under a lock so concurrent starts do not race."""
        cfg = alembic_config(version_locations)
        async with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                # Take the write lock now, and make the DDL transactional (pysqlite would
                # otherwise run CREATE TABLE outside any transaction).
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
            await conn.run_sync(_upgrade, cfg)
            await conn.commit()

    async def revisions(self) -> set[str]:
        """The revisions the database is at (one per branch head)."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(sa.text("SELECT version_num FROM alembic_version"))
            return {r[0] for r in rows}

    async def close(self) -> None:
        await self.health.close()
        await self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({self.engine.url.render_as_string(hide_password=True)!r})"
