"""A platform message is logged and counted once per group, however many accounts (recorders)
or deliveries bring it (issue 17): the event log's key on (group, platform message id)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import col, select

from bot import stats
from bot.core.events import GroupMessage, Member
from bot.stats import Period, Scope
from bot.storage.db import Database
from bot.storage.models import DailyActivity, EventLog
from bot.storage.recorder import Recorder
from bot.storage.settings import StorageSettings

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=SHANGHAI)
ALICE = Member("alice", "Alice")
BOB = Member("bob", "Bob")


def msg(message_id: str | None, *, group: str = "g1", sender: Member = ALICE, minutes: int = 0) -> GroupMessage:
    return GroupMessage(
        at=T0 + timedelta(minutes=minutes), group_id=group, sender=sender, text="hi", message_id=message_id
    )


def recorder(database: Database, tmp_path: Path, name: str = "a", **settings: Any) -> Recorder:
    return Recorder(
        database, SHANGHAI, StorageSettings(url=database.url, **settings), dead_letter_path=tmp_path / f"{name}.jsonl"
    )


async def logged(db: Database) -> list[tuple[str | None, str | None, str | None]]:
    async with db.session() as s:
        rows = (await s.exec(select(EventLog).order_by(col(EventLog.id)))).all()
    return [(e.group_id, e.member_id, e.message_id) for e in rows]


async def daily(db: Database) -> dict[tuple[str, str], int]:
    async with db.session() as s:
        return {(d.group_id, d.member_id): d.messages for d in (await s.exec(select(DailyActivity))).all()}


async def test_a_message_id_is_logged_and_counted_once_per_group(database: Database, tmp_path: Path) -> None:
    rec = recorder(database, tmp_path)
    rec.record(msg("m1"))
    rec.record(msg("m1"))  # delivered twice in one batch
    rec.record(msg("m1", group="g2"))  # the same id in another group is another message
    rec.record(msg("m2", sender=BOB))
    await rec.flush()
    rec.record(msg("m1"))  # and again later (a reconnect replaying history)
    rec.record(msg("m2", sender=BOB))
    await rec.flush()
    await rec.stop()
    assert await logged(database) == [("g1", "alice", "m1"), ("g2", "alice", "m1"), ("g1", "bob", "m2")]
    assert await daily(database) == {("g1", "alice"): 1, ("g2", "alice"): 1, ("g1", "bob"): 1}
    assert rec.written == 6  # every event was handled: none refused, none set aside
    assert not (tmp_path / "a.jsonl").exists()


async def test_messages_without_an_id_count_each_time(database: Database, tmp_path: Path) -> None:
    rec = recorder(database, tmp_path)
    for _ in range(3):
        rec.record(msg(None))
    rec.record(msg(""))  # an empty id is no id
    await rec.flush()
    await rec.stop()
    assert await logged(database) == [("g1", "alice", None)] * 4
    assert await daily(database) == {("g1", "alice"): 4}


async def test_two_recorders_on_one_database_count_each_message_once(database: Database, tmp_path: Path) -> None:
    # Two accounts in the same groups: each records every message, in its own arrival order,
    # and both write at the same time (small batches, so their transactions interleave).
    a = recorder(database, tmp_path, "a", batch_size=7)
    b = recorder(database, tmp_path, "b", batch_size=5)
    messages = [msg(f"m{i}", group=f"g{i % 3}", sender=(ALICE, BOB)[i % 2], minutes=i) for i in range(60)]
    for m in messages:
        a.record(m)
    for m in sorted(messages, key=lambda m: (m.group_id, m.message_id or "")):
        b.record(m)
    b.record(msg(None, group="g0"))  # no id: counted as today, once per delivery
    await asyncio.gather(a.flush(), b.flush())
    assert (await a.stop(), await b.stop()) == (True, True)
    assert len(await logged(database)) == 61
    counts = await daily(database)
    assert sum(counts.values()) == 61
    assert counts[("g0", "alice")] == 10 + 1 and counts[("g1", "bob")] == 10
    # What the reports read: 60 messages in the three groups, not 120.
    day = T0.date()
    report = await stats.activity(database, SHANGHAI, Scope(), Period(day, day))
    assert [d.messages for d in report.days] == [61]


async def test_the_migration_removes_old_duplicates_before_making_the_key(database: Database) -> None:
    # A database from before revision 0006: no key, and a message logged once per account.
    async with database.engine.begin() as conn:
        await conn.execute(sa.text("DROP INDEX uq_event_log_group_message"))
        await conn.execute(
            sa.text("UPDATE alembic_version SET version_num = :old WHERE version_num = :new"),
            {"old": "0003_event_log_member_index", "new": "0007_event_log_message_key"},
        )
        rows = [
            {"type": t, "group_id": g, "member_id": "alice", "message_id": m}
            for t, g, m in [
                ("message", "g1", "m1"),
                ("message", "g1", "m1"),
                ("message", "g1", "m1"),
                ("message", "g2", "m1"),
                ("message", "g1", None),
                ("message", "g1", None),
                ("bot_message", "g1", "s1"),
                ("bot_message", "g1", "s1"),
            ]
        ]
        await conn.execute(sa.insert(EventLog).values(at=T0), rows)
    await database.migrate()
    assert await logged(database) == [
        ("g1", "alice", "m1"),
        ("g2", "alice", "m1"),
        ("g1", "alice", None),
        ("g1", "alice", None),
        ("g1", "alice", "s1"),  # the bot's own messages are not keyed
        ("g1", "alice", "s1"),
    ]
    assert "0007_event_log_message_key" in await database.revisions()
