"""Relay targets the bot is not in, and live sessions nobody ended.

Units (`bot.core.reach`), the start-up log and the relay through the simulator (whose world
is what the bot is in), and `qunbot check-config` against a database's known groups."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.app import load_everything
from bot.cli import app as cli_app
from bot.core import reach
from bot.storage.db import Database
from bot.storage.repo import GroupRepo
from tests.harness import chat, write_config
from tests.plugins.relay.test_relay import WORLD

CONFIG = """
bot_admins: [boss]
group_sets:
  audience: [a1, gone]
plugins:
  relay:
    relays:
      - {name: lecture, source: main, targets: ["set:audience", a2, nowhere], always_on: false}
    idle_end_minutes: 180
  broadcast:
    broadcasts:
      morning: {cron: "0 8 * * *", to: [a1, ghost], text: 早上好}
      everyone: {cron: "0 9 * * *", to: all, text: 大家好}
"""


def test_configured_targets_the_bot_is_not_in_are_listed_per_feature(tmp_path: Path) -> None:
    loaded = load_everything(write_config(tmp_path, CONFIG))
    present = {"main", "a1", "a2"}
    missing = reach.unreachable(loaded.plugins, loaded.config, present)
    assert sorted(str(m) for m in missing) == [
        "定时群发「morning」: ghost",
        "转发「lecture」: gone",
        "转发「lecture」: nowhere",
    ]
    assert sorted(reach.describe(missing)) == ["定时群发「morning」: ghost", "转发「lecture」: gone, nowhere"]
    assert reach.unreachable(loaded.plugins, loaded.config, present | {"gone", "nowhere", "ghost"}) == []


async def test_start_up_log_lists_them_and_the_relay_skips_them(tmp_path: Path, caplog: Any) -> None:
    caplog.set_level(logging.INFO)
    async with chat(write_config(tmp_path, CONFIG), WORLD) as bot:
        assert "the bot is not in 3 configured target group(s)" in caplog.text
        assert "转发「lecture」: gone, nowhere" in caplog.text and "定时群发「morning」: ghost" in caplog.text
        await bot.say("main", "boss", "开始直播")
        start = bot.assert_said("main", contains="直播「lecture」开始").text or ""
        assert "同步到 2 个群（听众一群、听众二群）" in start
        assert "⚠️ 机器人不在这些群里，无法同步：gone、nowhere" in start
        await bot.say("main", "teacher", "第一句")
        await bot.say("main", "boss", "直播状态")
        status = bot.assert_said("main", contains="转发状态").text or ""
        assert "lecture：main → 4 个群，直播中" in status and "⚠️ 机器人不在：gone、nowhere" in status
        await bot.finish()
    sent_to = {a.group for a in bot.said(contains="第一句")}
    assert sent_to == {"a1", "a2"}
    assert not bot.sim.app.services.outbox.stats.failed  # type: ignore[union-attr]  # nothing attempted there
    assert caplog.text.count("the bot is not in gone; not relaying there") == 1


async def test_a_forgotten_live_session_ends_itself_and_tells_the_source_group(tmp_path: Path) -> None:
    async with chat(write_config(tmp_path, CONFIG), WORLD) as bot:
        await bot.say("main", "boss", "开始直播")
        await bot.wait("2h")
        await bot.say("main", "teacher", "还在讲")  # activity: the idle clock starts again
        await bot.wait("2h")  # 4 h after the start, 2 h after the last message: still on
        assert not bot.said("main", contains="自动结束")
        await bot.say("main", "teacher", "最后一句")
        bot.new_actions()
        await bot.wait("3h")
        said = bot.new_actions()
        await bot.say("main", "teacher", "结束后的话")
    ended = [a for a in said if a.group == "main"]
    assert len(ended) == 1 and ended[0].at.startswith("2026-12-02T02:00:00")  # 3 h after 23:00
    assert (ended[0].text or "").startswith("⏹️ 直播「lecture」已经 3 小时没有新的发言，已自动结束。")
    assert "转发 2 条消息到 2 个群" in (ended[0].text or "")
    assert {a.group for a in said if "直播结束" in (a.text or "")} == {"a1", "a2"}  # the audience is told
    assert not bot.said(contains="结束后的话")  # the session is over


async def test_idle_end_can_be_turned_off(tmp_path: Path) -> None:
    config = CONFIG.replace("idle_end_minutes: 180", "idle_end_minutes: 0")
    async with chat(write_config(tmp_path, config), WORLD) as bot:
        await bot.say("main", "boss", "开始直播")
        await bot.wait("2d")
        await bot.say("main", "teacher", "两天后")
    assert not bot.said(contains="自动结束")
    assert {a.group for a in bot.said(contains="两天后")} == {"a1", "a2"}


def _seed(url: str, groups: list[str]) -> None:
    async def go() -> None:
        db = await Database.open(url)
        try:
            for gid in groups:
                await GroupRepo(db).upsert(gid, gid, None, at=datetime(2026, 12, 1, tzinfo=UTC))
        finally:
            await db.close()

    asyncio.run(go())


@pytest.mark.parametrize("known", [["main", "a1", "a2"], []])
def test_check_config_warns_when_the_database_knows_the_groups(tmp_path: Path, known: list[str]) -> None:
    db_file = tmp_path / "known.db"
    config = write_config(tmp_path, f'storage: {{url: "sqlite+aiosqlite:///{db_file}"}}\n' + CONFIG)
    if known:
        _seed(f"sqlite+aiosqlite:///{db_file}", known)
    result = CliRunner().invoke(cli_app, ["check-config", str(config)])
    assert result.exit_code == 0, result.output  # a warning, not an error
    if known:
        assert "warning: the bot is not in these relay/broadcast targets (it is in 3 groups" in result.output
        assert "    转发「lecture」: gone, nowhere" in result.output
        assert "    定时群发「morning」: ghost" in result.output
    else:
        assert "relay/broadcast targets: not checked" in result.output
        assert not db_file.exists()  # checking never creates a database
