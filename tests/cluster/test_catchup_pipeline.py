"""Two whole bots on one PostgreSQL: the one on duty dies, messages and a join arrive before the
other takes over, and the other answers each of them once, after taking over (bot/cluster/catchup.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.adapters.simulator import Simulation
from tests.cluster.test_accounts_pipeline import account, config, everyone, says, until
from tests.cluster.test_duty import pg_url  # noqa: F401  (fixture)

pytestmark = pytest.mark.postgres


def kill(sim: Simulation) -> None:
    """As `kill -9` would: no renewal, no mark written, no goodbye (it gets no more events)."""
    app = sim.app
    assert app.cluster is not None and app.cluster._task is not None
    app.cluster._task.cancel()
    assert app.catch_up is not None and app.catch_up._flusher is not None
    app.catch_up._flusher.cancel()


async def test_what_arrives_while_nobody_is_on_duty_is_answered_once_after_the_takeover(
    tmp_path: Path,
    pg_url: str,  # noqa: F811
) -> None:
    cfg = config(tmp_path, pg_url)
    async with account(cfg, "wxid_a") as a, account(cfg, "wxid_b") as b:
        assert a.app.catch_up is not None and b.app.catch_up is not None
        # No timer writes a's marks from here: only its send does (the reply to m1).
        assert a.app.catch_up._flusher is not None
        a.app.catch_up._flusher.cancel()
        await everyone([a, b], {"group": "g1", "from": "alice", "text": "在吗", "id": "m1"})
        await a.finish()
        assert says([a, b], "在的") == {"wxid_a": 1, "wxid_b": 0}
        kill(a)
        # The gap: only b receives, and is not on duty yet.
        await b.step({"group": "g1", "from": "alice", "text": "在吗", "id": "m2"})
        await b.step({"join": "g1", "members": ["carol"]})
        await b.step({"group": "g1", "from": "bob", "text": "在吗", "id": "m3"})
        assert b.app.cluster is not None and not b.app.cluster.on_duty("g1")
        assert b.app.dispatcher is not None and b.app.dispatcher.stats["off_duty"] == 4  # with m1
        await until(lambda: b.app.catch_up is not None and b.app.catch_up.stats["replayed"] == 3)
        await b.finish()
        assert says([a, b], "在的") == {"wxid_a": 1, "wxid_b": 2}  # m2 and m3, not m1 again
        assert says([a, b], "欢迎") == {"wxid_a": 0, "wxid_b": 1}
        assert b.app.catch_up.stats == {"replayed": 3, "already_handled": 1}
        # Live messages after the takeover are answered as usual, and nothing again.
        await b.step({"group": "g1", "from": "alice", "text": "在吗", "id": "m4"})
        await b.finish()
        assert says([a, b], "在的") == {"wxid_a": 1, "wxid_b": 3}
        assert b.app.dispatcher.stats["replayed"] == 3
