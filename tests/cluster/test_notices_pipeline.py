"""Changes made in one process reach the others at once (LISTEN/NOTIFY): two whole bots (two
accounts, each its own simulated world, app and engine) on one PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.core.context import Services
from plugins.broadcast.service import BroadcastService
from tests.cluster.test_accounts_pipeline import account, until
from tests.cluster.test_duty import pg_url  # noqa: F401  (fixture)
from tests.harness import fresh_sqlite_url, write_config

pytestmark = pytest.mark.postgres

CONFIG = """
storage: {{url: "{url}"}}
other_bots: [wxid_a, wxid_b]
bot_admins: [owner1]
outbox: {{min_gap: 0, jitter: 0}}
cluster: {{enabled: true, lease_ttl: 1.5, safety_margin: 0.2}}
plugins:
  broadcast: {{}}
  keyword_reply:
    rules:
      - {{keywords: [在吗], match: exact, replies: ["{reply}"]}}
"""


def broadcasts(services: Services | None) -> BroadcastService:
    assert services is not None and services.dispatcher is not None
    state = services.dispatcher.runtime.hosts["broadcast"].state
    assert isinstance(state, BroadcastService)
    return state


async def test_a_broadcast_made_in_one_process_is_scheduled_in_the_other_at_once(
    tmp_path: Path,
    pg_url: str,  # noqa: F811
) -> None:
    cfg = write_config(tmp_path, CONFIG.format(url=pg_url, reply="在的"))
    async with account(cfg, "wxid_a") as a, account(cfg, "wxid_b") as b:
        in_b = broadcasts(b.app.services)
        assert in_b.defs == {}
        await a.step({"private": "owner1", "text": "定时群发 每天20:00 群=g1,g2 晚安"})
        made = list(broadcasts(a.app.services).defs)
        assert len(made) == 1
        name = made[0]
        took = await _timed(lambda: name in in_b.defs)
        assert took < 1.0
        job = in_b.scheduler.get(in_b.defs[name].job_id)
        assert job is not None and not job.paused
        # Paused, resumed and deleted in A: the same in B, without a restart.
        await a.step({"private": "owner1", "text": f"暂停群发 {name}"})
        await until(lambda: in_b.paused(in_b.defs[name]), 1.0)
        await a.step({"private": "owner1", "text": f"恢复群发 {name}"})
        await until(lambda: not in_b.paused(in_b.defs[name]), 1.0)
        await a.step({"private": "owner1", "text": f"删除群发 {name}"})
        await until(lambda: name not in in_b.defs, 1.0)
        assert in_b.scheduler.get(f"broadcast:{name}") is None


async def test_a_broadcast_made_while_the_listener_was_away_is_found_by_the_resync(
    tmp_path: Path,
    pg_url: str,  # noqa: F811
) -> None:
    cfg = write_config(tmp_path, CONFIG.format(url=pg_url, reply="在的"))
    async with account(cfg, "wxid_a") as a, account(cfg, "wxid_b") as b:
        in_b = broadcasts(b.app.services)
        bus = b.app.bus
        assert bus is not None
        # B stops hearing notices (its listener is away) while A makes a broadcast.
        unheard = bus._subs[:]
        bus._subs.clear()
        await a.step({"private": "owner1", "text": "定时群发 每天20:00 群=g1 晚安"})
        name = next(iter(broadcasts(a.app.services).defs))
        await asyncio.sleep(0.3)
        assert name not in in_b.defs  # the notice was lost
        bus._subs.extend(unheard)
        await bus._resync()  # what the listener does when it is back
        assert name in in_b.defs


async def test_a_config_reload_in_one_process_reaches_the_other(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    cfg = write_config(tmp_path, CONFIG.format(url=pg_url, reply="在的"))
    async with account(cfg, "wxid_a") as a, account(cfg, "wxid_b") as b:
        # Both processes read one config file (one mount); B's file watcher is not running
        # here, so only the notice can make it re-read.
        cfg.write_text(CONFIG.format(url=pg_url, reply="我在"), encoding="utf-8")
        assert await a.app.reload(cfg)
        took = await _timed(lambda: b.app.config.plugins["keyword_reply"]["rules"][0]["replies"] == ["我在"])
        assert took < 1.0
        await b.step({"group": "g1", "from": "alice", "text": "在吗", "id": "m1"})
        await a.step({"group": "g1", "from": "alice", "text": "在吗", "id": "m1"})
        for sim in (a, b):
            await sim.finish()
        replies = [r.text for sim in (a, b) for r in sim.actions if r.action == "say"]
        assert replies == ["我在"]  # once, by the account on duty, with the new text


async def test_a_reload_notice_with_an_unchanged_file_changes_nothing(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    cfg_a = write_config(tmp_path, CONFIG.format(url=pg_url, reply="在的"), "a.yaml")
    cfg_b = write_config(tmp_path, CONFIG.format(url=pg_url, reply="在的"), "b.yaml")
    async with account(cfg_a, "wxid_a") as a, account(cfg_b, "wxid_b") as b:
        runtime = b.app.dispatcher.runtime if b.app.dispatcher else None
        cfg_a.write_text(CONFIG.format(url=pg_url, reply="我在"), encoding="utf-8")
        assert await a.app.reload(cfg_a)
        await asyncio.sleep(0.3)
        assert b.app.dispatcher is not None and b.app.dispatcher.runtime is runtime  # not rebuilt


async def test_a_plugin_switched_off_in_one_process_is_off_in_the_other(tmp_path: Path, pg_url: str) -> None:  # noqa: F811
    cfg = write_config(tmp_path, CONFIG.format(url=pg_url, reply="在的"))
    async with account(cfg, "wxid_a") as a, account(cfg, "wxid_b") as b:
        assert b.app.services is not None and b.app.dispatcher is not None
        host = b.app.dispatcher.runtime.hosts["keyword_reply"]
        assert b.app.services.groups.plugin_enabled(host.settings, "g2")
        # A's command (wxid_a is on duty in g1) switches the keyword replies off in g2.
        await a.step({"group": "g1", "from": "owner1", "text": "关闭 keyword_reply g2", "id": "m1"})
        assert any("关闭" in (r.text or "") for r in a.actions if r.action == "say")
        await until(lambda: not b.app.services.groups.plugin_enabled(host.settings, "g2"), 1.0)  # type: ignore[union-attr]


async def test_one_account_on_sqlite_has_no_bus_and_no_handoff(tmp_path: Path) -> None:
    cfg = write_config(
        tmp_path,
        CONFIG.replace("cluster: {{enabled: true", "cluster: {{enabled: false").format(
            url=await fresh_sqlite_url(), reply="在的"
        ),
    )
    async with account(cfg, "wxid_a") as a:
        assert a.app.bus is None and a.app.handoff is None and a.app.cluster is None
        services = a.app.services
        assert services is not None and services.bus is None and services.handoff is None
        await a.step({"private": "owner1", "text": "定时群发 每天20:00 群=g1 晚安"})
        assert len(broadcasts(services).defs) == 1


async def _timed(check: object, seconds: float = 5.0) -> float:
    loop = asyncio.get_running_loop()
    started = loop.time()
    await until(check, seconds)  # type: ignore[arg-type]
    return loop.time() - started
