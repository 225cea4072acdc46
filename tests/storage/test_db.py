from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from bot.storage.db import CORE_REVISION, Database, alembic_config
from bot.storage.models import CORE_TABLE_NAMES, CORE_TABLES, Group
from bot.storage.settings import StorageSettings

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _heads(extra: list[Path] | None = None) -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config(extra or [])).get_heads())


def _tables(conn: Connection) -> set[str]:
    return set(sa.inspect(conn).get_table_names())


async def test_migrations_apply_to_an_empty_database_and_again_idempotently(fresh_db_url: str) -> None:
    db = await Database.open(fresh_db_url)
    try:
        assert await db.revisions() == _heads()
        assert CORE_REVISION in ScriptDirectory.from_config(alembic_config()).get_revision("core").revision
        async with db.engine.connect() as conn:
            assert await conn.run_sync(_tables) >= CORE_TABLE_NAMES
        await db.migrate()  # a second run in the same process: nothing to do
        assert await db.revisions() == _heads()
    finally:
        await db.close()
    again = await Database.open(fresh_db_url)  # a restart
    try:
        assert await again.revisions() == _heads()
    finally:
        await again.close()


def _core_diffs(conn: Connection) -> list[object]:
    # Only the core tables: plugin models imported by other tests share SQLModel.metadata.
    # Other branches may add their own indexes to core tables: those are theirs to check.
    core = sa.MetaData()
    for model in CORE_TABLES:
        model.__table__.to_metadata(core)  # type: ignore[attr-defined]
    core_indexes = {ix.name for table in core.tables.values() for ix in table.indexes}

    def include(name: str | None, type_: str, parent: object) -> bool:
        if type_ == "table":
            return name in CORE_TABLE_NAMES
        if type_ == "index":
            return name in core_indexes
        return True

    context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": include})
    return list(compare_metadata(context, core))


async def test_core_migration_matches_the_models(database: Database) -> None:
    async with database.engine.connect() as conn:
        assert await conn.run_sync(_core_diffs) == []


async def test_plugin_branch_off_the_core_revision(fresh_db_url: str, tmp_path: Path) -> None:
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "9000_demo.py").write_text(
        '"""demo plugin table"""\n'
        "import sqlalchemy as sa\n"
        "from alembic import op\n\n"
        'revision = "9000_demo"\n'
        'down_revision = "0001_core"\n'
        'branch_labels = ("demo",)\n'
        "depends_on = None\n\n"
        "def upgrade():\n"
        '    op.create_table("demo_things", sa.Column("id", sa.Integer(), primary_key=True))\n\n'
        "def downgrade():\n"
        '    op.drop_table("demo_things")\n',
        encoding="utf-8",
    )
    db = await Database.open(fresh_db_url, version_locations=[versions])
    try:
        assert "9000_demo" in await db.revisions()
        assert await db.revisions() == _heads([versions])
        async with db.engine.connect() as conn:
            assert "demo_things" in await conn.run_sync(_tables)
    finally:
        await db.close()


async def test_datetimes_are_stored_utc_and_read_back_aware(database: Database) -> None:
    local = datetime(2026, 12, 2, 0, 30, tzinfo=SHANGHAI)
    async with database.transaction() as s:
        s.add(Group(id="g1", topic="宝妈交流群", registered_at=local))
    async with database.session() as s:
        group = await s.get(Group, "g1")
    assert group is not None
    assert group.registered_at == local
    assert group.registered_at.tzinfo is not None
    assert group.registered_at.utcoffset() == UTC.utcoffset(None)
    assert group.topic == "宝妈交流群"


async def test_naive_datetimes_are_refused(database: Database) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        async with database.transaction() as s:
            s.add(Group(id="g1", registered_at=datetime(2026, 12, 1, 8, 0)))


async def test_transaction_rolls_back_on_error(database: Database) -> None:
    with pytest.raises(RuntimeError):
        async with database.transaction() as s:
            s.add(Group(id="g1", registered_at=datetime(2026, 12, 1, tzinfo=UTC)))
            await s.flush()
            raise RuntimeError("boom")
    async with database.session() as s:
        assert await s.get(Group, "g1") is None


async def test_dialect_name(database: Database, db_backend: str) -> None:
    assert database.dialect == {"sqlite": "sqlite", "postgres": "postgresql"}[db_backend]


async def test_sqlite_pragmas(tmp_path: Path) -> None:
    db = await Database.open(f"sqlite:///{tmp_path / 'p.db'}")
    try:
        async with db.engine.connect() as conn:
            values = {
                name: (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
                for name in ("journal_mode", "foreign_keys", "synchronous", "busy_timeout")
            }
    finally:
        await db.close()
    assert values["journal_mode"] == "wal"
    assert values["foreign_keys"] == 1
    assert values["synchronous"] == 1  # NORMAL
    assert values["busy_timeout"] > 0


async def test_relative_sqlite_path_creates_its_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    db = await Database.open(StorageSettings(url="sqlite:///data/sub/q.db"))
    await db.close()
    assert (tmp_path / "data" / "sub" / "q.db").is_file()


async def test_in_memory_sqlite_is_one_shared_database() -> None:
    db = await Database.open("sqlite://")
    try:
        async with db.transaction() as s:
            s.add(Group(id="g1", registered_at=datetime(2026, 12, 1, tzinfo=UTC)))
        async with db.session() as s:
            assert await s.get(Group, "g1") is not None
    finally:
        await db.close()
