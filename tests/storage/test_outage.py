"""Database outages and refused data: telling them apart, the bounded buffer, isolating a
poison row, cleaning at the edge, and start-up with the database away."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from bot.core.events import GroupMessage, Member, MembersJoined, storable
from bot.storage.db import Database, DatabaseUnavailable
from bot.storage.health import is_outage, masked_url
from bot.storage.models import EventLog
from bot.storage.recorder import DROPPED, Recorder, default_dead_letter_path
from bot.storage.settings import StorageSettings
from tests.faults.pgserver import free_port

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=SHANGHAI)


def msg(n: int, sender: str = "alice", text: str = "hi") -> GroupMessage:
    return GroupMessage(
        at=T0 + timedelta(seconds=n),
        group_id="g1",
        sender=Member(sender, sender.title()),
        text=text,
        message_id=f"m{n}",
    )


def test_outage_or_refused_data() -> None:
    assert is_outage(sa.exc.OperationalError("SELECT 1", {}, ConnectionRefusedError("refused")))
    assert is_outage(sa.exc.DBAPIError("x", {}, asyncpg.exceptions.AdminShutdownError("terminating")))
    assert is_outage(sa.exc.DBAPIError("x", {}, asyncpg.exceptions.ConnectionDoesNotExistError("closed")))
    assert is_outage(TimeoutError())
    assert not is_outage(sa.exc.DBAPIError("x", {}, asyncpg.exceptions.CharacterNotInRepertoireError("0x00")))
    assert not is_outage(sa.exc.IntegrityError("x", {}, Exception("UNIQUE constraint failed")))
    assert not is_outage(ValueError("a bug"))


def test_masked_url() -> None:
    assert masked_url("postgresql+asyncpg://bot:s3cret@db:5432/q") == "postgresql+asyncpg://bot:***@db:5432/q"


def test_storable_cleans_ids_names_and_text_once_at_the_edge() -> None:
    clean = msg(1)
    assert storable(clean) is clean  # nothing to do: the same object
    dirty = GroupMessage(
        at=T0, group_id="g\x001", sender=Member("ali\x00ce", "A\ud83d"), text="a\x00b", mentions=("b\x00ob",)
    )
    out = storable(dirty)
    assert isinstance(out, GroupMessage)
    assert (out.group_id, out.sender.id, out.sender.name, out.text, out.mentions) == (
        "g1",
        "alice",
        "A\ufffd",
        "ab",
        ("bob",),
    )
    joined = storable(MembersJoined(at=T0, group_id="g1", members=(Member("x\x00"), Member("y"))))
    assert isinstance(joined, MembersJoined)
    assert [m.id for m in joined.members] == ["x", "y"]


def test_data_dir_never_depends_on_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "config" / "bot.yaml"
    pg = StorageSettings(url="postgresql://u:p@h/qunbot")
    assert default_dead_letter_path(pg, config) == tmp_path / "data" / "qunbot-h-5432.deadletter.jsonl"
    own = StorageSettings(url="postgresql://u:p@h/qunbot", data_dir=Path("state"))
    assert default_dead_letter_path(own, config) == tmp_path / "config" / "state" / "qunbot-h-5432.deadletter.jsonl"
    other_server = StorageSettings(url="postgresql://u:p@h:5433/qunbot")
    assert default_dead_letter_path(other_server, config) != default_dead_letter_path(pg, config)
    lite = StorageSettings(url="sqlite:///db/bot.db")
    path = default_dead_letter_path(lite, config)
    assert path.is_absolute() and path == tmp_path / "db" / "bot.deadletter.jsonl"


async def test_a_full_buffer_drops_the_oldest_chat_messages_only(database: Database, tmp_path: Path) -> None:
    settings = StorageSettings(url=database.url, buffer_max_events=1_000, batch_size=100_000)
    rec = Recorder(database, SHANGHAI, settings, dead_letter_path=tmp_path / "dead.jsonl")
    told: list[int] = []
    rec.on_drop = told.append
    database.health.failed(ConnectionRefusedError("test outage"))  # the database is away
    join = MembersJoined(at=T0, group_id="g1", members=(Member("newbie"),))
    rec.record(join)
    for n in range(1_500):
        rec.record(msg(n))
    assert rec.pending <= 1_000
    assert rec.dropped == 1_501 - rec.pending
    assert len(told) == 1  # told once, not per drop
    assert database.health.counts[DROPPED] == rec.dropped
    kept = list(rec._buffer)
    assert kept[0] is join  # the join stays, however old
    assert isinstance(kept[-1], GroupMessage) and kept[-1].message_id == "m1499"  # the newest stay
    # Events that may not be dropped are kept even past the limit.
    for n in range(1_200):
        rec.record(MembersJoined(at=T0, group_id="g1", members=(Member(f"j{n}"),)))
    assert sum(isinstance(e, MembersJoined) for e in rec._buffer) == 1_201
    database.health.succeeded()
    await rec.stop()
    async with database.session() as s:
        joins = (await s.exec(select(sa.func.count()).select_from(EventLog).where(EventLog.type == "join"))).one()
    assert joins == 1_201


@pytest.mark.postgres
async def test_a_poison_row_is_set_aside_alone(pg_module_url: str, tmp_path: Path) -> None:
    # The edge cleans NUL, so this event comes straight to the recorder, as a bug would send it.
    db = await Database.open(pg_module_url)
    dead = tmp_path / "dead.jsonl"
    try:
        rec = Recorder(db, SHANGHAI, dead_letter_path=dead)
        for n in range(500):
            rec.record(msg(n, sender=f"m{n}", text=f"poison-test {n}"))
        rec.record(msg(500, sender="bad\x00id", text="poison-test 500"))
        for n in range(501, 1000):
            rec.record(msg(n, sender=f"m{n}", text=f"poison-test {n}"))
        await rec.flush()
        assert (rec.written, rec.dead_lettered, rec.pending) == (999, 1, 0)
        assert db.health.up  # refused data is not an outage
        async with db.session() as s:
            texts = (await s.exec(select(EventLog.text).where(col(EventLog.text).like("poison-test %")))).all()
        assert len(texts) == 999 and "poison-test 500" not in texts
        [line] = dead.read_text(encoding="utf-8").splitlines()
        entry: dict[str, Any] = json.loads(line)
        assert entry["event"]["sender"]["id"] == "bad\x00id"
        assert "0x00" in entry["error"] or "null" in entry["error"].lower()
        # Replayed (at start-up or with `qunbot deadletter replay`), it goes in cleaned.
        assert await rec.replay_dead_letter() == 1
        assert rec.dead_lettered == 1 and not dead.exists()
        async with db.session() as s:
            member = (await s.exec(select(EventLog.member_id).where(EventLog.text == "poison-test 500"))).one()
        assert member == "badid"
    finally:
        await db.close()


async def test_start_up_with_the_database_away_gives_up_with_one_clear_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"postgresql://qunbot:s3cret@127.0.0.1:{free_port()}/qunbot"  # nothing listens there
    with pytest.raises(DatabaseUnavailable) as err:
        await Database.open(StorageSettings(url=url, connect_retry_seconds=1.2))
    message = str(err.value)
    assert "cannot reach the database postgresql+asyncpg://qunbot:***@127.0.0.1" in message
    assert "s3cret" not in message and "s3cret" not in caplog.text
    retries = [r for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retries) >= 2  # it did retry, with the URL masked
    assert all("***" in r.getMessage() for r in retries)


async def test_refused_rows_stay_buffered_when_they_cannot_be_set_aside(
    fresh_db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = await Database.open(fresh_db_url, migrate=False)  # no tables: every row is refused
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("", encoding="utf-8")
    try:
        rec = Recorder(broken, SHANGHAI, dead_letter_path=blocker / "dead.jsonl")
        rec.record(msg(1))
        rec.record(msg(2))
        await rec.flush()
        assert (rec.pending, rec.dead_lettered) == (2, 0)  # kept, not lost
        assert broken.health.up  # the database answered: not an outage
        assert "cannot write the dead-letter file" in caplog.text
        blocker.unlink()  # the folder can be made now: the next try sets them aside
        assert await rec.stop()
        assert (rec.pending, rec.dead_lettered) == (0, 2)
        assert len((blocker / "dead.jsonl").read_text(encoding="utf-8").splitlines()) == 2
    finally:
        await broken.close()
