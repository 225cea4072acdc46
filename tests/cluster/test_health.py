"""An account in trouble hands its duties over (simulator, several accounts, virtual clock):
rate limited, banned, or disconnected for too long, the account on duty gives its groups to a
healthy account in them, keeps recording, and the trouble shows in 账号状态 (the web page and
the digest use the same service)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.cluster.simkit import on_duty, simulation, write_cluster_config
from tests.cluster.test_duty import pg_url  # noqa: F401  (fixture)

pytestmark = pytest.mark.postgres

BOTS = ["wxid_a", "wxid_b"]
WORLD: dict[str, Any] = {
    "clock": "2026-12-01T08:00:00+08:00",
    "contacts": [{"id": "owner1", "name": "群主"}, {"id": "alice", "name": "Alice"}],
    "groups": [{"id": "g1", "topic": "宝妈交流群", "owner": "owner1", "members": ["owner1", "alice"]}],
    "bots": [{"id": b} for b in BOTS],
}
QUESTION = {"group": "g1", "from": "alice", "text": "怎么联系群主？"}


@pytest.mark.parametrize(
    ("state", "wait", "after", "why"),
    # Rate limits: three in a row (60 s, then 120 s apart: the outbox's back-off) make trouble;
    # a ban: the first refused send; a disconnect: after 2 minutes.
    [("rate_limited", "0s", "4m", "限流"), ("banned", "0s", "1m", "封禁"), ("disconnected", "3m", "1m", "断线")],
)
async def test_an_account_in_trouble_hands_its_groups_over(
    tmp_path: Path,
    pg_url: str,  # noqa: F811
    state: str,
    wait: str,
    after: str,
    why: str,
) -> None:
    cfg = write_cluster_config(tmp_path, pg_url, BOTS)
    async with simulation(cfg, WORLD, pg_url) as sim:
        assert on_duty(sim, "g1") == ["wxid_a"]
        await sim.step({"account": "wxid_a", "state": state})
        await sim.step({"wait": wait})
        await sim.step(QUESTION)  # wxid_a tries to answer (or, disconnected, never hears it)
        await sim.step({"wait": after})
        assert on_duty(sim, "g1") == ["wxid_b"]
        health = sim.account("wxid_a").app.services
        assert health is not None and health.health is not None
        assert why in (health.health.trouble() or "")
        before = len(sim.actions)
        await sim.step(QUESTION)
        assert [a.account for a in sim.actions[before:]] == ["wxid_b"]
        # The healthy account tells the bot admin about both accounts.
        await sim.step({"private": "owner1", "text": "账号状态", "bot": "wxid_b"})
        status = sim.actions[-1]
        assert status.account == "wxid_b" and status.to == "owner1"
        assert "wxid_a：运行中" in (status.text or "") and why in (status.text or "")
        # Still recording: the troubled account saw the second question (unless disconnected).
        off_duty = sim.account("wxid_a").app.dispatcher
        assert off_duty is not None
        assert off_duty.stats["off_duty"] >= (0 if state == "disconnected" else 1)


async def test_trouble_ends_after_a_calm_period_and_the_duty_stays_put(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    cfg = write_cluster_config(tmp_path, pg_url, BOTS)
    async with simulation(cfg, WORLD, pg_url) as sim:
        await sim.step({"account": "wxid_a", "state": "banned"})
        await sim.step(QUESTION)
        await sim.step({"wait": "1m"})
        assert on_duty(sim, "g1") == ["wxid_b"]
        await sim.step({"account": "wxid_a", "state": "ok"})
        await sim.step({"wait": "20m"})  # calm_for: 15 minutes after the last refused send
        services = sim.account("wxid_a").app.services
        assert services is not None and services.health is not None
        assert services.health.trouble() is None
        assert on_duty(sim, "g1") == ["wxid_b"]  # sticky: no reason to move it back
