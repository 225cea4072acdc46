"""kill -9 and restart, end to end (`qunbot run` on the console, SQLite under a data folder):
no check-in or point is counted twice, and what is lost is at most the last seconds of
activity points (they are written `flush_seconds` = 1 s after they are earned)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.storage.db import Database
from tests.faults.botprocess import BotProcess, write_config
from tests.faults.test_database_outage import actions, wait_for

pytestmark = pytest.mark.e2e


async def _rows(url: str, sql: str) -> list[tuple[object, ...]]:
    db = await Database.open(url, migrate=False)
    try:
        async with db.engine.connect() as conn:
            return [tuple(r) for r in (await conn.execute(sa.text(sql))).all()]
    finally:
        await db.close()


def test_kill_9_and_restart_counts_nothing_twice(workdir: Path) -> None:
    url = f"sqlite+aiosqlite:///{workdir / 'data' / 'qunbot.db'}"
    config = write_config(workdir, url)
    first = BotProcess(config, workdir, "first")
    first.send("g1 alice: 签到")
    for n in range(40):
        first.send(f"g1 bob: 聊天{n}")
    wait_for(lambda: any("签到成功" in a for a in actions(first.stdout)))
    time.sleep(3)  # past flush_seconds (1 s) and the recorder's interval: all of it is written
    for n in range(10):
        first.send(f"g1 bob: 最后{n}")  # the last moment's work: may be lost, never doubled
    first.kill9()

    second = BotProcess(config, workdir, "second")
    second.send("g1 alice: 签到")  # the same day: already checked in
    for n in range(5):
        second.send(f"g1 bob: 重启后{n}")
    assert second.finish() == 0, second.stderr
    assert any("今天已经签到过啦" in a for a in actions(second.stdout)), second.stdout

    records = asyncio.run(_rows(url, "SELECT member_id FROM checkin_records"))
    assert records == [("alice",)]
    ledger = dict(
        asyncio.run(
            _rows(url, "SELECT member_id || ':' || reason, sum(delta) FROM points_ledger GROUP BY member_id, reason")
        )
    )
    assert ledger["alice:checkin"] == 5  # once
    # bob: 40 before the pause, at most 10 more from just before the kill, 5 after the restart.
    assert 40 + 5 <= int(ledger["bob:activity"]) <= 40 + 10 + 5  # type: ignore[call-overload]
    messages = asyncio.run(_rows(url, "SELECT count(*) FROM event_log WHERE type = 'message'"))[0][0]
    assert 1 + 40 + 1 + 5 <= int(messages) <= 1 + 40 + 10 + 1 + 5  # type: ignore[call-overload]
