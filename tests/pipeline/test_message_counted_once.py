"""A message delivered twice (a reconnect replaying history) is counted once in the statistics,
through the whole bot on SQLite (issue 17; several accounts on PostgreSQL: tests/cluster)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from bot import stats
from bot.stats import Period, Scope
from tests.harness import chat, write_config


async def test_a_replayed_message_is_counted_once(tmp_path: Path) -> None:
    async with chat(write_config(tmp_path, "plugins: {}\n")) as c:
        for message_id in ("m1", "m2", "m1"):
            await c.sim.step({"group": "g1", "from": "alice", "text": "早上好", "id": message_id})
        await c.sim.step({"group": "g1", "from": "bob", "text": "你好"})  # the simulator numbers these
        await c.sim.step({"group": "g1", "from": "bob", "text": "你好"})
        services = c.sim.app.services
        assert services is not None and services.recorder is not None
        await services.recorder.flush()
        db = services.require_db()
        day = date(2026, 12, 1)
        report = await stats.activity(db, ZoneInfo("Asia/Shanghai"), Scope.one("g1"), Period(day, day))
        assert [(d.messages, d.active) for d in report.days] == [(4, 2)]
        async with db.engine.connect() as conn:
            ids = (
                (await conn.execute(sa.text("SELECT message_id FROM event_log WHERE type = 'message' ORDER BY id")))
                .scalars()
                .all()
            )
            assert len(ids) == 4 and ids[:2] == ["m1", "m2"] and ids.count("m1") == 1


async def test_a_second_simulation_on_the_same_database_is_new_traffic(tmp_path: Path) -> None:
    # The simulator numbers its messages per run; a re-run on one --db must not look like a replay.
    url = f"sqlite+aiosqlite:///{tmp_path / 'q.db'}"
    config = write_config(tmp_path, "plugins: {}\n")
    for _run in range(2):
        async with chat(config, db_url=url) as c:
            await c.sim.step({"group": "g1", "from": "bob", "text": "你好"})
            services = c.sim.app.services
            assert services is not None and services.recorder is not None
            await services.recorder.flush()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'q.db'}")
    with engine.connect() as conn:
        count = conn.execute(sa.text("SELECT COUNT(*) FROM event_log WHERE type = 'message'")).scalar_one()
    engine.dispose()
    assert count == 2
