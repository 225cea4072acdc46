"""Two whole bots (two accounts, each its own simulated world, app and engine) on one PostgreSQL,
fed the same group messages, as two `qunbot run` processes in the same groups would be."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from bot import stats
from bot.adapters.simulator import Scenario, Simulation
from bot.app import load_everything
from bot.config.errors import LineMap
from bot.core.platform import ActionRecord
from bot.stats import Period, Scope
from tests.cluster.test_duty import pg_url  # noqa: F401  (fixture)
from tests.harness import DEFAULT_WORLD, write_config

pytestmark = pytest.mark.postgres

CONFIG = """
storage: {{url: "{url}"}}
other_bots: [wxid_a, wxid_b, wxid_c]
outbox: {{min_gap: 0, jitter: 0}}
cluster:
  enabled: true
  lease_ttl: 1.5
  safety_margin: 0.2
  pinned: {pinned}
plugins:
  keyword_reply:
    rules:
      - {{keywords: [在吗], match: exact, replies: ["在的"]}}
  welcome:
    text: "欢迎 {{members}}"
"""


def config(tmp_path: Path, url: str, pinned: dict[str, str] | None = None) -> Path:
    pins = "{" + ", ".join(f"{g}: {a}" for g, a in (pinned or {}).items()) + "}"
    return write_config(tmp_path, CONFIG.format(url=url, pinned=pins))


@asynccontextmanager
async def account(cfg: Path, bot_id: str) -> AsyncIterator[Simulation]:
    world: dict[str, Any] = {**DEFAULT_WORLD, "bot": {"id": bot_id, "name": bot_id}, "steps": []}
    loaded = load_everything(cfg)
    sim = Simulation(Scenario.model_validate(world), LineMap("<test>", {}), loaded, db_url=loaded.config.storage.url)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.close()


def says(sims: list[Simulation], contains: str, group: str = "g1") -> dict[str, int]:
    def count(actions: list[ActionRecord]) -> int:
        return sum(1 for a in actions if a.action == "say" and a.group == group and contains in (a.text or ""))

    return {s.scenario.bot.id: count(s.actions) for s in sims}


async def everyone(sims: list[Simulation], step: dict[str, Any]) -> None:
    """The same platform event (same message id) reaches every account in the group."""
    for sim in sims:
        await sim.step(dict(step))


async def until(check: Callable[[], bool], seconds: float = 5.0) -> None:
    """Poll `check` (the cluster's background renewals make it true) for up to `seconds`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not check():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("n", [2, 3])
async def test_one_reply_and_one_welcome_however_many_accounts(tmp_path: Path, pg_url: str, n: int) -> None:  # noqa: F811
    cfg = config(tmp_path, pg_url)
    async with (
        account(cfg, "wxid_a") as a,
        account(cfg, "wxid_b") as b,
        account(cfg, "wxid_c") as c,
    ):
        sims = [a, b, c][:n]
        await everyone(sims, {"group": "g1", "from": "alice", "text": "在吗", "id": "m1"})
        await everyone(sims, {"join": "g1", "members": ["carol"]})
        for sim in sims:
            await sim.finish()
        assert says(sims, "在的") == {"wxid_a": 1, **{s.scenario.bot.id: 0 for s in sims[1:]}}
        assert says(sims, "欢迎") == {"wxid_a": 1, **{s.scenario.bot.id: 0 for s in sims[1:]}}
        # The others recorded and did nothing else.
        for sim in sims[1:]:
            assert sim.app.dispatcher.stats["off_duty"] == 2
            assert sim.app.services.outbox.stats.sent == 0


async def test_the_on_duty_bot_dies_and_another_answers_within_the_ttl(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    cfg = config(tmp_path, pg_url)
    async with account(cfg, "wxid_a") as a, account(cfg, "wxid_b") as b:
        await everyone([a, b], {"group": "g1", "from": "alice", "text": "在吗", "id": "m1"})
        assert says([a, b], "在的") == {"wxid_a": 1, "wxid_b": 0}
        # wxid_a's process is killed: its renewals stop, nothing is released.
        assert a.app.cluster is not None and a.app.cluster._task is not None
        a.app.cluster._task.cancel()
        loop = asyncio.get_running_loop()
        killed = loop.time()
        await until(lambda: b.app.cluster is not None and b.app.cluster.on_duty("g1"))
        assert loop.time() - killed <= 1.5 + 0.3
        await b.step({"group": "g1", "from": "alice", "text": "在吗", "id": "m2"})
        await b.finish()
        assert says([a, b], "在的") == {"wxid_a": 1, "wxid_b": 1}


async def test_pinned_duty_is_respected(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    cfg = config(tmp_path, pg_url, pinned={"g2": "wxid_b"})
    async with account(cfg, "wxid_a") as a, account(cfg, "wxid_b") as b:
        # wxid_a came first and took both groups; wxid_b, pinned in g2, gets it at the next round.
        await until(lambda: b.app.cluster is not None and b.app.cluster.on_duty("g2"))
        assert a.app.cluster is not None and not a.app.cluster.on_duty("g2") and a.app.cluster.on_duty("g1")
        await everyone([a, b], {"group": "g1", "from": "alice", "text": "在吗", "id": "m1"})
        await everyone([a, b], {"group": "g2", "from": "alice", "text": "在吗", "id": "m2"})
        for sim in (a, b):
            await sim.finish()
        assert says([a, b], "在的", "g1") == {"wxid_a": 1, "wxid_b": 0}
        assert says([a, b], "在的", "g2") == {"wxid_a": 0, "wxid_b": 1}


async def test_both_accounts_record_the_message(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    """Recording is not gated (the others "only record"); the event log holds the message once,
    whichever account logged it first (its key on group and platform message id)."""
    cfg = config(tmp_path, pg_url)
    async with account(cfg, "wxid_a") as a, account(cfg, "wxid_b") as b:
        await everyone([a, b], {"group": "g1", "from": "alice", "text": "在吗", "id": "m1"})
        for sim in (a, b):
            await sim.finish()
            assert sim.app.recorder is not None
            await sim.app.recorder.flush()
        assert a.app.db is not None
        async with a.app.db.engine.connect() as conn:
            rows = (await conn.execute(sa.text("SELECT count(*) FROM event_log WHERE message_id = 'm1'"))).scalar_one()
        assert rows == 1


BROADCAST = """
storage: {{url: "{url}"}}
other_bots: [wxid_a, wxid_b]
outbox: {{min_gap: 0, jitter: 0}}
cluster: {{enabled: true, lease_ttl: 1.5, safety_margin: 0.2, pinned: {{g2: wxid_b}}}}
plugins:
  broadcast:
    broadcasts:
      morning:
        cron: "0 9 * * *"
        to: [g1, g2]
        messages: ["早上好，{{group}}"]
"""


async def test_a_scheduled_broadcast_goes_out_once_per_group_from_the_account_on_duty(
    tmp_path: Path,
    pg_url: str,  # noqa: F811
) -> None:
    cfg = write_config(tmp_path, BROADCAST.format(url=pg_url))
    async with account(cfg, "wxid_a") as a, account(cfg, "wxid_b") as b:
        await until(lambda: b.app.cluster is not None and b.app.cluster.on_duty("g2"))
        for sim in (a, b):  # wxid_a reaches 09:00 first; without the duty check it would claim g2 too
            await sim.step({"wait": "2h"})
            await sim.finish()
        assert says([a, b], "早上好", "g1") == {"wxid_a": 1, "wxid_b": 0}
        assert says([a, b], "早上好", "g2") == {"wxid_a": 0, "wxid_b": 1}
        assert a.app.db is not None
        async with a.app.db.engine.connect() as conn:
            rows = (
                await conn.execute(sa.text("SELECT group_id, state FROM broadcast_deliveries ORDER BY group_id"))
            ).all()
        assert [tuple(r) for r in rows] == [("g1", "sent"), ("g2", "sent")]


async def test_statistics_count_a_message_once_however_many_accounts_recorded_it(
    tmp_path: Path,
    pg_url: str,  # noqa: F811
) -> None:
    cfg = config(tmp_path, pg_url)
    async with account(cfg, "wxid_a") as a, account(cfg, "wxid_b") as b:
        for i in range(3):
            await everyone([a, b], {"group": "g1", "from": "alice", "text": f"早上好 {i}", "id": f"m{i}"})
        await b.step({"group": "g1", "from": "bob", "text": "只有 b 收到", "id": "m9"})
        for sim in (a, b):
            await sim.finish()
            assert sim.app.recorder is not None
            await sim.app.recorder.flush()
        db = a.app.db
        assert db is not None
        day = date(2026, 12, 1)
        report = await stats.activity(db, ZoneInfo("Asia/Shanghai"), Scope.one("g1"), Period(day, day))
        assert [(d.messages, d.active) for d in report.days] == [(4, 2)]
        async with db.engine.connect() as conn:
            logged = await conn.scalar(sa.text("SELECT count(*) FROM event_log WHERE type = 'message'"))
        assert logged == 4
