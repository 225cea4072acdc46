"""Storage write throughput on a fresh SQLite file (or any URL given).

`raw_insert_rate` is the floor to compare with: event-log rows bulk-inserted in batches of
500, one transaction each, nothing else. `recorder_rate` is the real recorder: the same
messages through `Recorder.record()` and `flush()`, which also maintains contacts, groups
and the daily rollup in the same transactions.

The workload is deliberately unkind to the indexes: `members` senders (default 400) take
turns across `groups` groups, so most rows of a batch touch a different page of the daily rollup.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.core.events import GroupMessage, Member
from bot.storage.db import Database
from bot.storage.models import EventLog
from bot.storage.recorder import Recorder
from bot.storage.settings import StorageSettings

START = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
STEP = timedelta(milliseconds=10)


def _messages(n: int, groups: int, members: int) -> list[GroupMessage]:
    people = [Member(f"wxid_{i:05d}", f"成员{i}") for i in range(members)]
    return [
        GroupMessage(
            at=START + i * STEP,
            group_id=f"g{i % groups}",
            sender=people[i % members],
            text=f"第{i}条消息，今天打卡了吗？",
            message_id=f"m{i}",
            group_topic=f"宝妈交流群{i % groups}",
        )
        for i in range(n)
    ]


def _url(tmp: str) -> str:
    return f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"


async def raw_insert_rate(n: int, *, groups: int = 20, members: int = 400) -> float:
    """Rows/s for plain bulk inserts of `n` event-log rows, batches of 500, on a fresh SQLite file."""
    rows: list[dict[str, Any]] = [
        {
            "at": m.at,
            "type": "message",
            "group_id": m.group_id,
            "member_id": m.sender.id,
            "kind": "text",
            "text": m.text,
            "message_id": m.message_id,
            "meta": None,
        }
        for m in _messages(n, groups, members)
    ]
    insert = EventLog.__table__.insert()
    with tempfile.TemporaryDirectory() as tmp:
        db = await Database.open(_url(tmp))
        try:
            began = time.perf_counter()
            for start in range(0, n, 500):
                async with db.engine.begin() as conn:
                    await conn.execute(insert, rows[start : start + 500])
            elapsed = time.perf_counter() - began
        finally:
            await db.close()
    return n / elapsed


async def recorder_rate(
    n: int,
    *,
    url: str | None = None,
    batch_size: int = 500,
    groups: int = 20,
    members: int = 400,
) -> float:
    """Events/s through the recorder (record + flush) for `n` group messages.
    Without `url`, a fresh SQLite file; with one, that (empty, disposable) database."""
    events = _messages(n, groups, members)
    with tempfile.TemporaryDirectory() as tmp:
        settings = StorageSettings(url=url or _url(tmp), batch_size=batch_size)
        db = await Database.open(settings)
        try:
            recorder = Recorder(db, ZoneInfo("Asia/Shanghai"), settings, dead_letter_path=Path(tmp) / "dead.jsonl")
            began = time.perf_counter()
            for event in events:
                recorder.record(event)
            await recorder.flush()
            elapsed = time.perf_counter() - began
            if recorder.dead_lettered:
                raise RuntimeError(f"{recorder.dead_lettered} events failed to write")
        finally:
            await db.close()
    return n / elapsed
