"""Actions into a group another account is on duty in: a relay line and a keyword invite made by
account A (its own world, app and engine) are carried out by account B, on one PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot.adapters.simulator import Scenario, Simulation
from bot.app import load_everything
from bot.cluster.handoff import ClusterHandoff
from bot.config.errors import LineMap
from bot.core.platform import SendResult
from tests.cluster.test_accounts_pipeline import until
from tests.cluster.test_duty import pg_url  # noqa: F401  (fixture)
from tests.harness import DEFAULT_WORLD, write_config

pytestmark = pytest.mark.postgres

CONFIG = """
storage: {{url: "{url}"}}
other_bots: [wxid_a, wxid_b]
groups: [{{id: g1, name: 宝妈交流群}}, {{id: g2, name: 读书群}}]
outbox: {{min_gap: 0, jitter: 0, moderation_gap: 0, moderation_jitter: 0}}
cluster: {{enabled: true, lease_ttl: 1.5, safety_margin: 0.2}}
plugins:
  relay:
    relays:
      - {{name: live, source: g1, targets: [g2]}}
  invite:
    rules:
      - {{keywords: [进群], groups: [g1, g2]}}
"""


@asynccontextmanager
async def account(cfg: Path, bot_id: str, groups: tuple[str, ...]) -> AsyncIterator[Simulation]:
    """One account (one `qunbot run`) in only these groups of the default world."""
    world: dict[str, Any] = {
        **DEFAULT_WORLD,
        "bot": {"id": bot_id, "name": bot_id},
        "groups": [g for g in DEFAULT_WORLD["groups"] if g["id"] in groups],
        "steps": [],
    }
    loaded = load_everything(cfg)
    sim = Simulation(Scenario.model_validate(world), LineMap("<test>", {}), loaded, db_url=loaded.config.storage.url)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.close()


def handoff_of(sim: Simulation) -> ClusterHandoff:
    assert sim.app.handoff is not None
    return sim.app.handoff


def pending(sim: Simulation) -> int:
    assert sim.app.services is not None
    return sim.app.services.outbox.pending


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not await check():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def rows(sim: Simulation, sql: str) -> list[tuple[Any, ...]]:
    assert sim.app.db is not None
    async with sim.app.db.engine.connect() as conn:
        return [tuple(r) for r in (await conn.execute(sa.text(sql))).all()]


async def test_a_relay_into_a_group_served_by_another_account_goes_out_once_in_order(
    tmp_path: Path,
    pg_url: str,  # noqa: F811
) -> None:
    cfg = write_config(tmp_path, CONFIG.format(url=pg_url))
    async with account(cfg, "wxid_a", ("g1",)) as a, account(cfg, "wxid_b", ("g2",)) as b:
        for n in range(5):
            await a.step({"group": "g1", "from": "alice", "text": f"第{n}句", "id": f"m{n}"})
        await a.step({"group": "g1", "from": "alice", "text": "第0句", "id": "m0"})  # redelivered: not again
        await a.finish()
        lines = await relayed(b, 5)
        assert lines == [f"【Alice】第{n}句" for n in range(5)]
        # While B's first message (of the lines there when it first looked) waited in its outbox,
        # the next lines waited in the database, and then went out merged into one message (as
        # one account's relay merges its backlog).
        said = [r.text or "" for r in b.actions if r.action == "say"]
        assert len(said) <= 2
        assert {r.group for r in b.actions if r.action == "say"} == {"g2"}
        assert [r for r in a.actions if r.action == "say"] == []  # A is not even in g2
        assert await rows(a, "SELECT state, count(*) FROM cluster_handoff GROUP BY state") == [("sent", 5)]


async def relayed(sim: Simulation, count: int, seconds: float = 5.0) -> list[str]:
    """Let `sim` send what is handed to it (its outbox runs on the simulation's virtual clock;
    the hand-overs arrive in real time) until `count` lines went out; returns the lines."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds

    def lines() -> list[str]:
        return [line for r in sim.actions if r.action == "say" for line in (r.text or "").split("\n")]

    while len(lines()) < count:
        assert loop.time() < deadline, f"only {lines()} went out"
        if pending(sim):
            await sim.finish()
        await asyncio.sleep(0.02)
    return lines()


async def test_an_invite_into_the_least_full_group_is_carried_out_by_the_account_in_it(
    tmp_path: Path,
    pg_url: str,  # noqa: F811
) -> None:
    cfg = write_config(tmp_path, CONFIG.format(url=pg_url))
    # g1: owner1, alice, bob and A (4 members); g2: owner1, alice and B (3): g2 is less full.
    async with account(cfg, "wxid_a", ("g1",)) as a, account(cfg, "wxid_b", ("g2",)) as b:
        for sim in (a, b):  # the member lists each account read at start, in the database
            assert sim.app.recorder is not None
            await sim.app.recorder.flush()
        await a.step({"private": "dave", "text": "进群"})
        await a.finish()
        assert [r.text for r in a.actions if r.action == "private"] == ["好的，Dave！正在拉你进「读书群」，请稍候～"]
        await until(lambda: pending(b) >= 1)
        await b.finish()
        assert [(r.action, r.group, r.member) for r in b.actions if r.action == "invite"] == [("invite", "g2", "dave")]
        assert [r for r in a.actions if r.action == "invite"] == []

        # A hears back (through a notice) and records the invite as sent; B saw the join.
        async def recorded() -> bool:
            found = await rows(a, "SELECT bot_id, group_id, status FROM invite_records")
            return found == [("wxid_a", "g2", "joined")]

        await eventually(recorded)


async def test_the_same_key_is_handed_over_once_and_an_untaken_action_expires(
    tmp_path: Path,
    pg_url: str,  # noqa: F811
) -> None:
    cfg = write_config(tmp_path, CONFIG.format(url=pg_url))
    async with account(cfg, "wxid_a", ("g1",)) as a:
        handoff = handoff_of(a)
        outcome: list[tuple[SendResult | None, Exception | None]] = []

        async def done(result: SendResult | None, error: Exception | None) -> None:
            outcome.append((result, error))

        assert await handoff.pass_on("g9", "say", {"text": "hi"}, "k1", on_done=done)
        assert not await handoff.pass_on("g9", "say", {"text": "hi"}, "k1")
        # Nobody is on duty in g9: when its time is up (made so here), it expires.
        await rows(a, "SELECT 1")
        assert a.app.db is not None
        async with a.app.db.engine.begin() as conn:
            await conn.execute(sa.text("UPDATE cluster_handoff SET expires_at = now()"))
        await handoff.sweep()
        assert await rows(a, "SELECT key, state FROM cluster_handoff") == [("k1", "expired")]
        assert len(outcome) == 1 and outcome[0][0] is None and "expired" in str(outcome[0][1])


async def test_an_action_refused_by_the_fencing_check_goes_back_to_the_account_on_duty(
    tmp_path: Path,
    pg_url: str,  # noqa: F811
) -> None:
    cfg = write_config(tmp_path, CONFIG.format(url=pg_url))
    async with account(cfg, "wxid_a", ("g1",)) as a, account(cfg, "wxid_b", ("g2",)) as b:
        hb = handoff_of(b)
        await hb.stop()  # this test takes by hand
        assert await handoff_of(a).pass_on("g2", "say", {"text": "一"}, "k1")
        assert await handoff_of(a).pass_on("g2", "say", {"text": "二"}, "k2")
        assert await hb.take() == 2
        # B loses the duty (as after a pause) before its outbox sends: both are refused there...
        assert b.app.cluster is not None
        # Its background renewal must not take the duty back before the outbox checks (it did
        # on a loaded host); the test renews by hand below.
        renewal = b.app.cluster._task
        assert renewal is not None
        renewal.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewal
        b.app.cluster._task = None
        b.app.cluster._held.clear()
        await b.finish()
        assert [r for r in b.actions if r.action == "say"] == []
        assert await rows(a, "SELECT key, state FROM cluster_handoff ORDER BY id") == [
            ("k1", "pending"),
            ("k2", "pending"),
        ]
        # ...and go back in line: the account on duty now (B again, under a new token) sends them.
        await b.app.cluster.tick()
        assert b.app.cluster.on_duty("g2")
        assert await hb.take() == 2
        await b.finish()
        assert [r.text for r in b.actions if r.action == "say"] == ["一", "二"]
        assert await rows(a, "SELECT key, state FROM cluster_handoff ORDER BY id") == [("k1", "sent"), ("k2", "sent")]


async def test_invites_into_this_accounts_own_group_and_members_of_another_accounts_group(
    tmp_path: Path,
    pg_url: str,  # noqa: F811
) -> None:
    cfg = write_config(tmp_path, CONFIG.format(url=pg_url))
    # Now A is in g2 (the less full one) and B in g1: A invites itself, nothing is handed over.
    async with account(cfg, "wxid_a", ("g2",)) as a, account(cfg, "wxid_b", ("g1",)) as b:
        await b.step({"join": "g1", "members": ["carol"]})
        for sim in (a, b):
            assert sim.app.recorder is not None
            await sim.app.recorder.flush()
        await a.step({"private": "dave", "text": "进群"})
        # Carol is in B's group only: A knows it from the database.
        await a.step({"private": "carol", "text": "进群"})
        await a.finish()
        assert [(r.group, r.member) for r in a.actions if r.action == "invite"] == [("g2", "dave")]
        assert [(r.to, r.text) for r in a.actions if r.action == "private"] == [
            ("dave", "好的，Dave！正在拉你进「读书群」，请稍候～"),
            ("carol", "你已经在「宝妈交流群」里啦～"),
        ]
        assert await rows(a, "SELECT count(*) FROM cluster_handoff") == [(0,)]


async def test_what_was_taken_but_not_sent_by_shutdown_goes_back_in_line(
    tmp_path: Path,
    pg_url: str,  # noqa: F811
) -> None:
    cfg = write_config(tmp_path, CONFIG.format(url=pg_url))
    async with account(cfg, "wxid_a", ("g1",)) as a, account(cfg, "wxid_b", ("g2",)) as b:
        hb = handoff_of(b)
        await hb.stop()
        assert await handoff_of(a).pass_on("g2", "say", {"text": "一"}, "k1")
        assert await hb.take() == 1
        await hb.stop()  # the outbox did not get to it (drain over): handed back, not lost
        assert await rows(a, "SELECT key, state, taken_by FROM cluster_handoff") == [("k1", "pending", None)]
