"""The stats plugin through the real pipeline: the admin command and the digests."""

from __future__ import annotations

from pathlib import Path

import pytest

from plugins.stats import parse_days
from tests.harness import chat, write_config

CONFIG = """
timezone: Asia/Shanghai
groups:
  - {id: g1, name: 宝妈交流群}
plugins:
  stats:
    lurk_days: 3
    daily_digest: {time: "09:00"}
    weekly_digest: {time: "09:30", weekday: mon}
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path, CONFIG)


def test_parse_days() -> None:
    assert parse_days("", 7) == 7
    assert [parse_days(t, 7) for t in ("30", "30天", "近7天", "14d", " 3 日 ")] == [30, 30, 7, 14, 3]
    assert [parse_days(t, 7) for t in ("abc", "0", "-3", "7天后")] == [None, None, None, None]


async def test_admin_command_summarises_the_group(config: Path) -> None:
    async with chat(config) as bot:  # 2026-12-01 08:00, g1: owner1 (owner), alice, bob
        await bot.join("g1", "carol", "dave", inviter="alice")
        for text in ("大家好", "欢迎新朋友", "我们今天聊什么"):
            await bot.say("g1", "alice", text)
        await bot.say("g1", "carol", "你好")
        await bot.wait("1d")
        await bot.leave("g1", "dave")  # on his first day after joining
        await bot.say("g1", "carol", "今天也来了")
        await bot.wait("1d")
        bot.new_actions()
        await bot.say("g1", "owner1", "群数据")  # counts as a message too
        reply = bot.assert_said("g1", contains="「宝妈交流群」近7天（11-27~12-03）").text or ""
        assert "入群 2，退群 1，移出 0，净增 +1" in reply
        assert "消息 6 条" in reply
        assert "发言最多：Alice 3、Carol 2、群主 1" in reply
        assert "1日在群 50%" in reply  # carol stayed through her first day, dave did not
        await bot.say("g1", "owner1", "数据 30天")
        assert "近30天" in (bot.assert_said("g1", contains="「宝妈交流群」近30天").text or "")
        await bot.say("g1", "owner1", "数据 很多天")
        bot.assert_said("g1", contains="用法：数据 [天数]")
        bot.new_actions()
        await bot.say("g1", "bob", "群数据")  # a member: refused by the core
        assert all("近7天" not in (a.text or "") for a in bot.new_actions())


async def test_daily_and_weekly_digests_go_privately_to_admins(config: Path) -> None:
    async with chat(config) as bot:
        await bot.join("g1", "carol", inviter="alice")
        await bot.say("g1", "carol", "你好")
        await bot.say("g1", "alice", "签到")
        await bot.wait("1d")  # 2026-12-02 08:00: the 12-01 09:00 digest covered 11-30
        await bot.wait("2h")  # 12-02 09:00: yesterday's digest
        daily = bot.assert_private("owner1", contains="【每日数据简报】").text or ""
        assert "「宝妈交流群」昨天（12-01）" in daily
        assert "入群 1" in daily and "消息 2 条" in daily
        # Alice is an admin of 读书群 only (known from start-up, when the bot read who is in
        # its groups): she hears about that group, not about this one.
        to_alice = [a.text or "" for a in bot.actions if a.action == "private" and a.to == "alice"]
        assert to_alice and all("读书群" in t and "宝妈交流群" not in t for t in to_alice)
        bot.new_actions()
        await bot.wait("5d")  # through Monday 12-07 09:30
        weekly = bot.assert_private("owner1", contains="【每周数据简报】").text or ""
        assert "「宝妈交流群」近7天（11-30~12-06）" in weekly
        assert "潜水" in weekly


async def test_digest_can_be_switched_off(tmp_path: Path) -> None:
    config = write_config(tmp_path, CONFIG.replace('daily_digest: {time: "09:00"}', "daily_digest: {enabled: false}"))
    async with chat(config) as bot:
        await bot.wait("2d")
        assert not [a for a in bot.actions if a.action == "private" and "每日数据简报" in (a.text or "")]
        jobs = [j.id for j in bot.sim.app.services.scheduler.jobs("stats:")]  # type: ignore[union-attr]
        assert jobs == ["stats:weekly_digest"]


async def test_the_bot_admins_digest_says_how_the_account_fared(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, CONFIG.replace("timezone: Asia/Shanghai", "timezone: Asia/Shanghai\nbot_admins: [boss]")
    )
    async with chat(config) as bot:
        bot.sim.platform.fault = "rate_limited"  # the account is told "too frequent"
        await bot.say("g1", "alice", "帮助")
        await bot.wait("5s")  # a faulty account's sends are tried during waits
        bot.sim.platform.fault = None
        await bot.wait("1d")
        await bot.wait("2h")
        digest = bot.assert_private("boss", contains="【账号状态】").text or ""
        assert "账号 wxid_bot" in digest and "限流 1" in digest
        # A group admin who is not a bot admin hears about the groups only.
        owner = bot.assert_private("owner1", contains="【每日数据简报】").text or ""
        assert "【账号状态】" not in owner
