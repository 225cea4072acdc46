from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.storage.settings import StorageSettings


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///data/qunbot.db", "sqlite+aiosqlite:///data/qunbot.db"),
        ("sqlite+aiosqlite:///data/qunbot.db", "sqlite+aiosqlite:///data/qunbot.db"),
        ("sqlite://", "sqlite+aiosqlite://"),
        ("postgresql://bot:pw@db:5432/qunbot", "postgresql+asyncpg://bot:pw@db:5432/qunbot"),
        ("postgres://bot@db/qunbot", "postgresql+asyncpg://bot@db/qunbot"),
        ("postgresql+asyncpg://bot@db/qunbot", "postgresql+asyncpg://bot@db/qunbot"),
    ],
)
def test_urls_get_async_drivers(given: str, expected: str) -> None:
    assert StorageSettings(url=given).url == expected


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("mysql://x@y/z", "unsupported database"),
        ("postgresql+psycopg2://x@y/z", "not supported"),
        ("sqlite+pysqlite:///x.db", "not supported"),
        ("not a url", "not a database URL"),
    ],
)
def test_bad_urls_are_clear_errors(given: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        StorageSettings(url=given)


def test_defaults_and_unknown_keys() -> None:
    s = StorageSettings()
    assert s.url == "sqlite+aiosqlite:///data/qunbot.db"
    assert (s.store_text, s.purge_after_days, s.batch_size, s.flush_interval, s.echo) == (
        "full",
        None,
        10_000,
        0.5,
        False,
    )
    assert s.sqlite_path == Path("data/qunbot.db")
    assert s.dialect == "sqlite"
    with pytest.raises(ValidationError, match="extra"):
        StorageSettings(batchsize=10)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        StorageSettings(store_text="some")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        StorageSettings(purge_after_days=0)


def test_sqlite_path_of_memory_and_postgres() -> None:
    assert StorageSettings(url="sqlite://").sqlite_path is None
    assert StorageSettings(url="sqlite:///:memory:").sqlite_path is None
    assert StorageSettings(url="postgresql://x@y/z").sqlite_path is None
    assert StorageSettings(url="sqlite:////abs/q.db").sqlite_path == Path("/abs/q.db")
