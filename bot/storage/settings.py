"""Storage configuration (the `storage:` section of the bot config)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

# Plain URLs are accepted and pointed at the async drivers; sync drivers would block the loop.
_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
_ALIASES = {"postgres": "postgresql", "pg": "postgresql"}


def normalize_url(raw: str) -> str:
    """Return `raw` with its async driver: ``postgresql://`` → ``postgresql+asyncpg://``,
    ``sqlite://`` → ``sqlite+aiosqlite://``. Anything else is a clear error."""
    try:
        url = make_url(raw.strip())
    except ArgumentError as exc:
        raise ValueError(f"not a database URL: {raw!r}") from exc
    backend, _, driver = url.drivername.partition("+")
    backend = _ALIASES.get(backend, backend)
    if backend not in _ASYNC_DRIVERS:
        raise ValueError(f"unsupported database {backend!r}: use sqlite:// or postgresql://")
    wanted = _ASYNC_DRIVERS[backend]
    if driver and f"{backend}+{driver}" != wanted:
        raise ValueError(f"driver {driver!r} is not supported for {backend}: use {wanted}:// (or plain {backend}://)")
    return url.set(drivername=wanted).render_as_string(hide_password=False)


def sqlite_path(url: str | URL) -> Path | None:
    """The database file of a SQLite URL, or None for PostgreSQL and in-memory SQLite.
    A relative path is relative to the working directory."""
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:") or parsed.query.get("mode") == "memory":
        return None
    return Path(database)


class StorageSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = "sqlite+aiosqlite:///data/qunbot.db"
    # "metadata": keep who/when/kind of every message, never its text (nor URLs).
    store_text: Literal["full", "metadata"] = "full"
    # Clear message text older than this many days; metadata and rollups are kept.
    purge_after_days: int | None = Field(default=None, ge=1)
    # The most events one transaction writes. Under a burst, larger batches amortise the
    # pages every commit rewrites: the daily rollup's (group, member, day) keys take writes all
    # over its tree, so a commit touches about one page per row until rows outnumber pages.
    # At ordinary rates batches are small anyway (whatever arrived within `flush_interval`).
    batch_size: int = Field(default=10_000, ge=1, le=100_000)
    flush_interval: float = Field(default=0.5, gt=0, le=3600)
    # While the database is unreachable, events wait in memory up to these limits; past
    # them the oldest chat messages are dropped first (joins, leaves and the bot's own
    # messages never), and the bot admins are told how many.
    buffer_max_events: int = Field(default=500_000, ge=1_000)
    buffer_max_bytes: int = Field(default=256 * 1024 * 1024, ge=1024 * 1024)
    # Longest wait between two probes of an unreachable database.
    retry_max_seconds: float = Field(default=5.0, gt=0, le=300)
    # At start-up, keep trying to reach the database this long before giving up (exit 1).
    connect_retry_seconds: float = Field(default=60.0, ge=0, le=86_400)
    # Where the bot keeps files of its own (set-aside rows). A relative path is relative to
    # the config file's folder. Default: the SQLite database's folder, or on PostgreSQL the
    # `data` folder beside the config file's folder (/app/data in the Docker image).
    data_dir: Path | None = None
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        return normalize_url(value)

    @property
    def dialect(self) -> str:
        return make_url(self.url).get_backend_name()

    @property
    def sqlite_path(self) -> Path | None:
        return sqlite_path(self.url)

    def resolved_data_dir(self, config_path: Path | None) -> Path:
        """The data directory as an absolute path (see `data_dir`), whatever the working
        directory is later."""
        # Without a config file (library use, tests) the working directory stands in for it.
        base = config_path.resolve().parent if config_path is not None else Path.cwd()
        if self.data_dir is not None:
            return (base / self.data_dir.expanduser()).resolve()
        db_file = self.sqlite_path
        if db_file is not None:
            return db_file.resolve().parent
        return ((base.parent if config_path is not None else base) / "data").resolve()
