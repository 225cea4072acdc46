"""The hourly member lists at scale: 1,000 groups of 500 members (SQLite, a fresh file).

- `member_lists_first`: the first read, every member new (a stay and a contact each).
- `member_lists_steady`: the hourly read when nothing changed: one read of each group's open
  stays, nothing written. Its baseline: reading every open stay in one query.
- `member_lists_churn`: an hourly read where 1% of each group left unannounced and as many
  came in unseen: 5,000 stays closed (with their leave rows) and 5,000 opened. Its baseline:
  the steady read.

Sizes: QUNBOT_BENCH_GROUPS and QUNBOT_BENCH_MEMBERS (defaults 1000 and 500).
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from bench.__main__ import figure
from bot.core.events import Member, MemberList
from bot.storage.db import Database
from bot.storage.models import Membership
from bot.storage.recorder import Recorder
from bot.storage.settings import StorageSettings

START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def _lists(groups: int, members: int, at: datetime, *, shift: int = 0) -> list[MemberList]:
    # People are shared between groups (member i of group g is person g*members/3 + i), as in
    # real deployments where the same people sit in several of an operator's groups.
    out = []
    for g in range(groups):
        first = g * members // 3 + shift
        people = tuple(Member(f"wxid_{p:07d}", f"成员{p}") for p in range(first, first + members))
        out.append(MemberList(at=at, group_id=f"g{g:04d}", members=people, group_topic=f"群{g}"))
    return out


async def _read(recorder: Recorder, lists: list[MemberList]) -> float:
    began = time.perf_counter()
    for item in lists:
        recorder.record(item)
    await recorder.flush()
    return time.perf_counter() - began


async def figures() -> list[dict[str, object]]:
    groups = int(os.environ.get("QUNBOT_BENCH_GROUPS", "1000"))
    members = int(os.environ.get("QUNBOT_BENCH_MEMBERS", "500"))
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        db = await Database.open(StorageSettings(url=url))
        recorder = Recorder(db, UTC, StorageSettings(url=url), dead_letter_path=Path(tmp) / "dl")
        try:
            first = await _read(recorder, _lists(groups, members, START))
            steady = await _read(recorder, _lists(groups, members, START + timedelta(hours=1)))
            m = Membership.__table__.c
            began = time.perf_counter()
            async with db.engine.connect() as conn:
                rows = (
                    await conn.execute(sa.select(m.group_id, m.member_id, m.known_from).where(m.left_at.is_(None)))
                ).all()
            select_all = time.perf_counter() - began
            churn = await _read(recorder, _lists(groups, members, START + timedelta(hours=2), shift=members // 100))
            async with db.engine.connect() as conn:
                closed = (await conn.execute(sa.select(sa.func.count()).where(m.left_at.is_not(None)))).scalar_one()
        finally:
            await recorder.stop()
            await db.close()
    size = {"groups": groups, "members_per_group": members, "open_stays": len(rows)}
    return [
        figure("member_lists_first", first, "s", **size),
        figure("member_lists_steady", steady, "s", baseline=select_all, **size),
        figure("member_lists_churn", churn, "s", baseline=steady, closed=closed, **size),
    ]
