"""Two and three whole bots in one simulation (a scenario's `bots:`: each account its own app, outbox and engine,
as `qunbot run` processes would have) in the same groups on one PostgreSQL, with the leases
on the virtual clock: a scripted day does exactly what one bot would do, once; a killed
account's groups are answered again within the TTL; a stopped process that wakes up acts
nowhere it no longer holds the duty."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot.core.platform import ActionRecord
from tests.cluster.simkit import on_duty, shape, simulation, write_cluster_config
from tests.cluster.test_duty import pg_url  # noqa: F401  (fixture)

pytestmark = pytest.mark.postgres

BOTS = ["wxid_a", "wxid_b", "wxid_c"]
TTL = 30  # lease_ttl in the test config (the default)

WORLD: dict[str, Any] = {
    "clock": "2026-12-01T08:00:00+08:00",
    "contacts": [{"id": "owner1", "name": "群主"}, {"id": "alice", "name": "Alice"}, {"id": "bob", "name": "Bob"}],
    "groups": [
        {"id": "g1", "topic": "宝妈交流群", "owner": "owner1", "members": ["owner1", "alice", "bob"]},
        {"id": "g2", "topic": "读书打卡群", "owner": "owner1", "members": ["owner1", "alice", "bob"]},
    ],
}

# A day in two groups: keywords, joins (merged welcome), check-ins, an ad removed, a lottery
# drawn later in the morning, dice, rules.
DAY: list[dict[str, Any]] = [
    {"group": "g1", "from": "alice", "text": "早上好"},
    {"join": "g1", "members": ["carol", "dave"], "inviter": "alice"},
    {"join": "g2", "members": ["erin"]},
    {"wait": "1m"},
    {"group": "g1", "from": "alice", "text": "签到"},
    {"group": "g1", "from": "bob", "text": "签到"},
    {"group": "g2", "from": "alice", "text": "签到"},
    {"group": "g1", "from": "carol", "text": "代开发票，需要的私聊"},
    {"group": "g1", "from": "owner1", "text": "发起抽奖 奖品=电影票 人数=1 口令=我要抽奖 截止=10:30"},
    {"group": "g1", "from": "alice", "text": "我要抽奖"},
    {"group": "g1", "from": "bob", "text": "我要抽奖"},
    {"group": "g2", "from": "bob", "text": "掷骰子"},
    {"group": "g2", "from": "alice", "text": "怎么联系群主？"},
    {"wait": "1h"},
    {"group": "g1", "from": "bob", "text": "群规"},
    {"wait": "90m"},
    {"group": "g2", "from": "alice", "text": "签到"},
    {"private": "alice", "text": "帮助"},
]


def bots(n: int) -> list[dict[str, Any]]:
    # The third account is only in g1: membership per group.
    return [{"id": b, "name": b, **({"groups": ["g1"]} if b == "wxid_c" else {})} for b in BOTS[:n]]


def texts(actions: list[ActionRecord], contains: str) -> list[ActionRecord]:
    return [a for a in actions if contains in (a.text or "")]


@pytest.mark.parametrize("n", [2, 3])
async def test_a_scripted_day_is_done_once_however_many_accounts(tmp_path: Path, pg_url: str, n: int) -> None:  # noqa: F811
    async with simulation(write_cluster_config(tmp_path, None, []), {**WORLD, "steps": DAY}, None) as one:
        for number, step in enumerate(DAY, start=1):
            await one.step(step, number)
        await one.finish()
    baseline = one.actions
    # Long leases (a round every 200 s): nobody dies here, and 13 hours of rounds every 10 s
    # would cost the suite minutes.
    cluster = {"enabled": True, "lease_ttl": 600, "safety_margin": 5}
    cfg = write_cluster_config(tmp_path, pg_url, BOTS[:n], cluster=cluster)
    async with simulation(cfg, {**WORLD, "bots": bots(n), "steps": DAY}, pg_url) as many:
        for number, step in enumerate(DAY, start=1):
            await many.step(step, number)
        await many.finish()
    actions = many.actions
    # The same actions, in the same places, as one bot: no double reply, welcome, removal
    # or check-in reply, and nothing missing.
    assert shape(actions) == shape(baseline)
    assert len(texts(actions, "欢迎")) == len(texts(baseline, "欢迎")) == 2  # one merged welcome per group
    assert [a.member for a in actions if a.action == "kick"] == ["carol"]
    assert len(texts(actions, "签到")) == len(texts(baseline, "签到"))
    assert len(texts(actions, "开奖啦")) == 1
    # Each group was served by one account all day (nobody died), and every account did
    # something only where it was on duty.
    for group in ("g1", "g2"):
        assert len({a.account for a in actions if a.group == group}) == 1
    assert all(a.account is not None for a in actions)


async def test_the_on_duty_account_is_killed_and_another_answers_within_the_ttl(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    cfg = write_cluster_config(tmp_path, pg_url, BOTS)
    async with simulation(cfg, {**WORLD, "bots": bots(3)}, pg_url) as sim:
        await sim.step({"group": "g1", "from": "alice", "text": "怎么联系群主？", "id": "m0"})
        holder = on_duty(sim, "g1")
        assert len(holder) == 1
        assert [a.account for a in sim.actions] == holder
        await sim.step({"stop": holder[0]})  # killed: no renewals, nothing handed over
        killed = sim.clock.now()
        answered = None
        for n in range(1, 40):  # a question every 2 s until someone answers
            await sim.step({"wait": "2s"})
            before = len(sim.actions)
            await sim.step({"group": "g1", "from": "alice", "text": "怎么联系群主？", "id": f"m{n}"})
            if len(sim.actions) > before:
                answered = sim.clock.now()
                break
        assert answered is not None, "nobody took over"
        assert (answered - killed).total_seconds() <= TTL
        successor = on_duty(sim, "g1")
        assert len(successor) == 1 and successor != holder
        # Every question since the kill answered once, by the new account: those asked while
        # nobody was on duty too (it catches up on what the dead one left unanswered).
        assert [a.account for a in sim.actions[1:]] == successor * n
        # The killed process wakes up (its old lease long gone): it serves nowhere it lost.
        await sim.step({"resume": holder[0]})
        await sim.step({"wait": "1m"})
        before = len(sim.actions)
        await sim.step({"group": "g1", "from": "alice", "text": "怎么联系群主？", "id": "m-last"})
        assert [a.account for a in sim.actions[before:]] == successor
        assert on_duty(sim, "g1") == successor


async def test_a_message_every_account_recorded_is_logged_once(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    """Recording is not gated (the others "only record"); the event log keeps a platform
    message once per group, whichever account logged it first."""
    cfg = write_cluster_config(tmp_path, pg_url, BOTS)
    async with simulation(cfg, {**WORLD, "bots": bots(3)}, pg_url) as sim:
        await sim.step({"group": "g1", "from": "alice", "text": "随便聊聊", "id": "m1"})
        await sim.step({"group": "g2", "from": "alice", "text": "随便聊聊", "id": "m2"})
        for account in sim.accounts:
            assert account.app.recorder is not None
            await account.app.recorder.flush()
            assert account.app.dispatcher is not None
        # wxid_c is not in g2: it never saw m2; the others recorded without acting.
        assert sum(a.app.dispatcher.stats["off_duty"] for a in sim.accounts if a.app.dispatcher) == 3
        assert sim.app.db is not None
        async with sim.app.db.engine.connect() as conn:
            rows = dict(
                (await conn.execute(sa.text("SELECT message_id, count(*) FROM event_log GROUP BY message_id"))).all()
            )
        assert rows == {"m1": 1, "m2": 1}


async def test_a_pinned_group_is_served_by_its_account(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    cfg = write_cluster_config(
        tmp_path,
        pg_url,
        BOTS[:2],
        cluster={"enabled": True, "lease_ttl": 30, "safety_margin": 5, "pinned": {"g2": "wxid_b"}},
    )
    async with simulation(cfg, {**WORLD, "bots": bots(2)}, pg_url) as sim:
        # wxid_a came first and took both groups; wxid_b, pinned in g2, gets it within two rounds.
        await sim.step({"wait": "30s"})
        assert on_duty(sim, "g1") == ["wxid_a"] and on_duty(sim, "g2") == ["wxid_b"]
        await sim.step({"group": "g1", "from": "alice", "text": "怎么联系群主？"})
        await sim.step({"group": "g2", "from": "alice", "text": "怎么联系群主？"})
        assert [(a.group, a.account) for a in sim.actions] == [("g1", "wxid_a"), ("g2", "wxid_b")]
