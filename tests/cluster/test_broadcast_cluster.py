"""A broadcast to 100 groups over 3 accounts (each in every group) on one PostgreSQL, on the
virtual clock: every (occurrence, group) goes out exactly once, also when the account on duty
is killed before or during the broadcast (the others send what it had not, once they hold
its groups, and the killed process that wakes up sends nothing more), and a large broadcast
is spread over the accounts by their send budgets."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot.adapters.simulator import Simulation
from tests.cluster.simkit import by_account, on_duty, simulation, write_cluster_config
from tests.cluster.test_duty import pg_url  # noqa: F401  (fixture)

pytestmark = pytest.mark.postgres

BOTS = ["wxid_a", "wxid_b", "wxid_c"]
GROUPS = [f"g{n:03d}" for n in range(100)]
WORLD: dict[str, Any] = {
    "clock": "2026-12-01T08:58:00+08:00",
    "contacts": [{"id": "owner1", "name": "群主"}],
    "groups": [{"id": g, "topic": f"群{g}", "owner": "owner1", "members": ["owner1"]} for g in GROUPS],
    "bots": [{"id": b} for b in BOTS],
}
BROADCAST = {"broadcasts": {"morning": {"cron": "0 9 * * *", "to": ["all"], "messages": ["早上好，{group}"]}}}


def config(tmp_path: Path, url: str, per_hour: int = 600) -> Path:
    base = write_cluster_config(tmp_path, url, BOTS)
    from bot.config.yamlio import load_yaml

    data, _ = load_yaml(base)
    data["plugins"] = {"broadcast": BROADCAST}
    data["outbox"] = {"min_gap": 1, "jitter": 0, "per_hour": per_hour}
    import json

    base.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return base


def sent_per_group(sim: Simulation) -> Counter[str]:
    return Counter(a.group or "" for a in sim.actions if a.action == "say" and "早上好" in (a.text or ""))


async def delivery_states(sim: Simulation) -> Counter[str]:
    assert sim.app.db is not None
    async with sim.app.db.engine.connect() as conn:
        rows = (await conn.execute(sa.text("SELECT state, count(*) FROM broadcast_deliveries GROUP BY state"))).all()
    return Counter(dict(rows))


async def test_a_broadcast_to_100_groups_goes_out_once(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    async with simulation(config(tmp_path, pg_url), WORLD, pg_url) as sim:
        await sim.step({"wait": "10m"})
        await sim.finish()
        assert sent_per_group(sim) == Counter(dict.fromkeys(GROUPS, 1))
        assert await delivery_states(sim) == Counter({"sent": 100})


@pytest.mark.parametrize("kill_after", ["110s", "150s"], ids=["before", "during"])
async def test_a_killed_account_s_groups_are_sent_by_the_others_once(
    tmp_path: Path,
    pg_url: str,  # noqa: F811
    kill_after: str,
) -> None:
    async with simulation(config(tmp_path, pg_url), WORLD, pg_url) as sim:
        # The first account took every group at start (the others came when it held them).
        assert on_duty(sim, "g000") == ["wxid_a"]
        # Killed at 08:59:50 (before the 09:00 broadcast) or at 09:00:30 (while it sends: one a
        # second): no renewals, no handover.
        await sim.step({"stop": "wxid_a", "after": kill_after})
        await sim.step({"wait": "10m"})
        await sim.finish()
        sent_before = sum(1 for a in sim.actions if a.account == "wxid_a")
        if kill_after == "150s":
            assert 20 <= sent_before <= 40
        sent = sent_per_group(sim)
        assert sent == Counter(dict.fromkeys(GROUPS, 1)), {g: n for g, n in sent.items() if n != 1}
        accounts = by_account([a for a in sim.actions if "早上好" in (a.text or "")])
        assert accounts["wxid_b"] > 0 and accounts["wxid_c"] > 0, (accounts, sent_before)  # shared out
        assert await delivery_states(sim) == Counter({"sent": 100})
        # The killed process wakes up with its queue (under its old tokens): nothing goes out.
        await sim.step({"resume": "wxid_a"})
        await sim.step({"wait": "5m"})
        await sim.finish()
        assert sent_per_group(sim) == Counter(dict.fromkeys(GROUPS, 1))
        assert sim.account("wxid_a").app.services is not None
        if kill_after == "150s":
            assert sim.account("wxid_a").app.services.outbox.stats.fenced > 0


async def test_a_large_broadcast_is_spread_by_send_budget(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    """120 messages an hour per account: the account on duty everywhere queues 100 and has
    little budget left, so it hands most groups (and their unsent deliveries) over to the
    accounts with budget left."""
    async with simulation(config(tmp_path, pg_url, per_hour=120), WORLD, pg_url) as sim:
        assert on_duty(sim, "g000") == ["wxid_a"]
        await sim.step({"wait": "15m"})
        await sim.finish()
        assert sent_per_group(sim) == Counter(dict.fromkeys(GROUPS, 1))
        assert await delivery_states(sim) == Counter({"sent": 100})
        accounts = by_account([a for a in sim.actions if "早上好" in (a.text or "")])
        assert all(accounts[b] >= 15 for b in BOTS), accounts
        assert accounts["wxid_a"] < 50, accounts


async def test_a_restarted_account_sends_what_its_killed_run_left_claimed(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    """One account: killed 30 s into the broadcast, started again 4 minutes later (a new
    process, new instance): it takes its groups back under new tokens and sends the rest."""
    cfg = config(tmp_path, pg_url)
    alone = {**WORLD, "bots": [{"id": "wxid_a"}]}
    async with simulation(cfg, alone, pg_url) as first:
        await first.step({"stop": "wxid_a", "after": "150s"})
        await first.step({"wait": "5m"})
        before = sent_per_group(first)
    assert 20 <= sum(before.values()) <= 40
    async with simulation(cfg, {**alone, "clock": "2026-12-01T09:04:00+08:00"}, pg_url) as second:
        await second.finish()
        after = sent_per_group(second)
        assert before + after == Counter(dict.fromkeys(GROUPS, 1))
        assert await delivery_states(second) == Counter({"sent": 100})
