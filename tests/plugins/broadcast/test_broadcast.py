"""定时群发 through the full pipeline (simulator world, virtual clock, real database)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.app import load_everything
from bot.config.errors import ConfigError
from bot.core.platform import PlatformError, SendResult
from bot.storage.db import Database
from plugins.broadcast.store import BroadcastStore
from tests.harness import Chat, chat, write_config

CONFIG = """
timezone: Asia/Shanghai
bot_admins: [boss]
groups:
  - {id: g1, name: 宝妈交流群, sets: [parents]}
  - {id: g2, name: 读书群, sets: [learning]}
  - {id: g3, name: 英语群, sets: [learning]}
plugins:
  broadcast:
    default_grace: 10m
    broadcasts:
      morning:
        cron: "0 8 * * *"
        to: [g1, set:learning]
        messages: ["早上好，{group}！今天是{date} {weekday}"]
"""

WORLD: dict[str, Any] = {
    "clock": "2026-12-01T07:00:00+08:00",
    "contacts": [
        {"id": "boss", "name": "老板"},
        {"id": "owner1", "name": "群主"},
        {"id": "alice", "name": "Alice"},
        {"id": "bob", "name": "Bob"},
    ],
    "groups": [
        {"id": "g1", "topic": "宝妈交流群", "owner": "owner1", "members": ["owner1", "bob"]},
        {"id": "g2", "topic": "读书群", "owner": "owner1", "admins": ["alice"], "members": ["owner1", "alice", "bob"]},
        {"id": "g3", "topic": "英语群", "owner": "owner1", "members": ["owner1"]},
    ],
}


def world(clock: str) -> dict[str, Any]:
    return {**WORLD, "clock": clock}


def local(at: str) -> str:
    """ "2026-12-01T08:00:03+08:00" → "12-01 08:00"."""
    return at[5:10] + " " + at[11:16]


def sends(bot: Chat, start: str) -> list[tuple[str, str]]:
    """(group, local time) of the broadcasts whose text starts with `start` (not replies)."""
    return [(a.group or "", local(a.at)) for a in bot.said() if (a.text or "").startswith(start)]


async def test_yaml_cron_reaches_three_groups_once_a_day_at_local_time(tmp_path: Path) -> None:
    async with chat(write_config(tmp_path, CONFIG), WORLD) as bot:
        await bot.wait("3d")
    got = sends(bot, "早上好")
    assert sorted(got) == sorted((g, f"12-0{d} 08:00") for d in (1, 2, 3) for g in ("g1", "g2", "g3"))
    texts = {a.text for a in bot.said("g2", contains="早上好")}
    assert "早上好，读书群！今天是2026-12-02 星期三" in texts


async def test_schedules_follow_the_configured_timezone_across_dst(tmp_path: Path) -> None:
    config = CONFIG.replace("timezone: Asia/Shanghai", "timezone: America/New_York")
    async with chat(write_config(tmp_path, config), world("2026-10-31T00:00:00-04:00")) as bot:
        await bot.wait("3d")
    instants = sorted(
        {
            datetime.fromisoformat(a.at).astimezone(UTC).strftime("%m-%d %H:%M")
            for a in bot.said("g1", contains="早上好")
        }
    )
    # 08:00 New York: EDT (UTC-4) on Oct 31, EST (UTC-5) from Nov 1.
    assert instants == ["10-31 12:00", "11-01 13:00", "11-02 13:00"]


async def test_interval_and_one_off_from_yaml(tmp_path: Path) -> None:
    config = (
        CONFIG
        + """
      ticker:
        every: 6h
        to: g1
        text: "整点播报 {time}"
      xmas:
        at: "2026-12-01 20:00"
        to: all
        text: "今晚 {time} 直播开始"
"""
    )
    async with chat(write_config(tmp_path, config), WORLD) as bot:
        await bot.wait("1d")
    assert [t for _, t in sends(bot, "整点播报")] == ["12-01 12:00", "12-01 18:00", "12-02 00:00", "12-02 06:00"]
    assert sorted(sends(bot, "今晚 20:00 直播开始")) == [(g, "12-01 20:00") for g in ("g1", "g2", "g3")]


async def test_chat_commands_create_list_pause_resume_delete_report(tmp_path: Path) -> None:
    async with chat(write_config(tmp_path, CONFIG), WORLD) as bot:
        await bot.private("boss", "定时群发 每天20:30 群=g1,读书群 晚安 {group}\n---\n明天见 {date}")
        created = bot.assert_private("boss", contains="已创建定时群发")
        assert "每天20:30" in (created.text or "") and "宝妈交流群、读书群" in (created.text or "")
        ref = (created.text or "").split("#")[1].split()[0]
        await bot.private("boss", "群发列表")
        listing = bot.assert_private("boss", contains="定时群发（2 个）")
        assert "morning" in (listing.text or "") and f"#{ref}" in (listing.text or "")

        await bot.wait("14h")  # 21:00
        assert sorted(sends(bot, "晚安")) == [("g1", "12-01 20:30"), ("g2", "12-01 20:30")]
        assert len(bot.said(contains="明天见 2026-12-01")) == 2  # both messages, each group

        await bot.private("boss", f"暂停群发 {ref}")
        bot.assert_private("boss", contains="已暂停：晚安")
        await bot.wait("1d")
        assert len(sends(bot, "晚安")) == 2  # nothing while paused
        await bot.private("boss", f"恢复群发 #{ref}")
        bot.assert_private("boss", contains="已恢复")
        await bot.wait("1d")
        assert sorted(t for _, t in sends(bot, "晚安")) == ["12-01 20:30"] * 2 + ["12-03 20:30"] * 2

        await bot.private("boss", f"群发报告 {ref}")
        report = bot.assert_private("boss", contains="报告").text or ""
        assert "共 2 次" in report and "宝妈交流群（g1）：已发送 2 · 失败 0 · 错过 0" in report
        await bot.private("boss", f"删除群发 {ref}")
        bot.assert_private("boss", contains="已删除")
        await bot.wait("1d")
        assert len(sends(bot, "晚安")) == 4
        await bot.private("boss", f"群发报告 {ref}")  # the report outlives the broadcast
        assert "已发送 2" in (bot.assert_private("boss", contains="报告").text or "")
        await bot.private("boss", "删除群发 morning")
        bot.assert_private("boss", contains="写在配置文件里")


async def test_group_admins_only_manage_broadcasts_to_their_own_group(tmp_path: Path) -> None:
    async with chat(write_config(tmp_path, CONFIG), WORLD) as bot:
        await bot.say("g2", "alice", "定时群发 明天9点 全部群 大家好")
        bot.assert_said("g2", contains="群管理员只能给本群设置定时群发")
        await bot.say("g2", "alice", "定时群发 明天9点 群=g1 大家好")
        assert len(bot.said("g2", contains="群管理员只能给本群设置定时群发")) == 2
        await bot.say("g2", "bob", "定时群发 明天9点 大家好")
        bot.assert_said("g2", contains="这个命令需要群管理员权限")
        await bot.private("alice", "定时群发 明天9点 群=g2 大家好")  # privately she is no group's admin
        bot.assert_private("alice", contains="这个命令需要群管理员权限")

        await bot.say("g2", "alice", "定时群发 明天9点 读书会开始啦 {time}")
        created = bot.assert_said("g2", contains="已创建定时群发").text or ""
        ref = created.split("#")[1].split()[0]
        await bot.say("g2", "alice", "暂停群发 morning")
        bot.assert_said("g2", contains="写在配置文件里，只有机器人管理员可以管理")
        await bot.say("g1", "owner1", f"暂停群发 {ref}")
        bot.assert_said("g1", contains="只能管理只发往本群的定时群发")
        await bot.say("g2", "alice", "群发列表")
        listing = bot.assert_said("g2", contains="定时群发（2 个）").text or ""
        assert "morning" in listing  # reaches g2 through set:learning: visible, not manageable

        await bot.wait("2d")
        assert sends(bot, "读书会开始啦") == [("g2", "12-02 09:00")]
        assert bot.said("g2", contains="读书会开始啦 09:00")


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        ("定时群发 群=g1 早上好", "没有看到时间"),
        ("定时群发 2020-01-01 8:00 群=g1 早上好", "已经过去了"),
        ("定时群发 每天8点 群=g1 你好 {name}", "占位符有误"),
        ("定时群发 每天8点 群=g9 你好", "不认识的群：g9"),
        ("定时群发 每天8点 分组=nope 你好", "没有叫“nope”的群分组"),
        ("定时群发 每天8点 你好", "私聊里请写上目标群"),
        ("定时群发", "用法"),
        ("暂停群发 99", "没有找到定时群发 99"),
    ],
)
async def test_bad_commands_are_explained_and_create_nothing(tmp_path: Path, command: str, problem: str) -> None:
    async with chat(write_config(tmp_path, CONFIG), WORLD) as bot:
        await bot.private("boss", command)
        bot.assert_private("boss", contains=problem)
        await bot.private("boss", "群发列表")
        assert "（1 个）" in (bot.assert_private("boss", contains="定时群发（").text or "")


async def test_down_across_the_due_time_sends_once_within_grace_and_records_missed_beyond(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'restart.db'}"
    cfg = load_everything(write_config(tmp_path, CONFIG))
    async with chat(cfg, world("2026-12-01T07:00:00+08:00"), db_url=url) as bot:
        await bot.wait("30m")
        assert bot.said() == []
    # Back at 08:05, within the 10 minutes of grace: sent once, at once, before any step.
    async with chat(cfg, world("2026-12-01T08:05:00+08:00"), db_url=url) as bot:
        await bot.finish()
        assert sorted(g for g, _ in sends(bot, "早上好")) == ["g1", "g2", "g3"]
    async with chat(cfg, world("2026-12-01T08:07:00+08:00"), db_url=url) as bot:
        await bot.wait("1h")
        assert bot.said() == []  # never twice
    # Down across the next day's 08:00, back at 08:30: missed.
    async with chat(cfg, world("2026-12-02T08:30:00+08:00"), db_url=url) as bot:
        await bot.wait("1h")
        assert bot.said() == []
        await bot.private("boss", "群发报告 morning")
        report = bot.assert_private("boss", contains="报告").text or ""
    assert "读书群（g2）：已发送 1 · 失败 0 · 错过 1" in report
    assert "12-02 08:00：已发送 0 · 失败 0 · 错过 3" in report
    db = await Database.open(url)
    try:
        rows = await BroadcastStore(db).deliveries("morning")
    finally:
        await db.close()
    assert [(r.occurrence.astimezone(UTC).strftime("%d %H"), r.group_id, r.state) for r in rows] == [
        ("01 00", "g1", "sent"),
        ("01 00", "g2", "sent"),
        ("01 00", "g3", "sent"),
        ("02 00", "g1", "missed"),
        ("02 00", "g2", "missed"),
        ("02 00", "g3", "missed"),
    ]


async def test_only_the_latest_missed_occurrence_is_sent_late(tmp_path: Path) -> None:
    config = (
        CONFIG
        + """
      often:
        cron: "*/20 * * * *"
        to: g1
        text: "每20分钟 {time}"
        grace: 30m
"""
    )
    url = f"sqlite+aiosqlite:///{tmp_path / 'often.db'}"
    cfg = load_everything(write_config(tmp_path, config))
    async with chat(cfg, world("2026-12-01T06:05:00+08:00"), db_url=url) as bot:
        await bot.wait("10m")  # 06:15
    async with chat(cfg, world("2026-12-01T07:05:00+08:00"), db_url=url) as bot:
        await bot.wait("1m")
    # Due while down: 06:20, 06:40 (missed) and 07:00 (within grace: sent once, late).
    assert [a.text for a in bot.said("g1", contains="每20分钟")] == ["每20分钟 07:00"]
    db = await Database.open(url)
    try:
        rows = await BroadcastStore(db).deliveries("often")
    finally:
        await db.close()
    assert [r.state for r in rows] == ["missed", "missed", "sent"]


async def test_chat_broadcasts_and_their_pause_survive_a_restart(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'keep.db'}"
    cfg = load_everything(write_config(tmp_path, CONFIG))
    async with chat(cfg, WORLD, db_url=url) as bot:
        await bot.private("boss", "定时群发 每天12:00 群=g3 午安 {date}")
        await bot.private("boss", "定时群发 2026-12-03 18:00 全部群 活动开始")
        await bot.private("boss", "暂停群发 morning")
    async with chat(cfg, world("2026-12-01T11:00:00+08:00"), db_url=url) as bot:
        await bot.wait("3d")
        assert [t for _, t in sends(bot, "午安")] == ["12-01 12:00", "12-02 12:00", "12-03 12:00"]
        assert sorted(sends(bot, "活动开始")) == [("g1", "12-03 18:00"), ("g2", "12-03 18:00"), ("g3", "12-03 18:00")]
        assert sends(bot, "早上好") == []  # still paused
        await bot.private("boss", "群发列表")
        assert "已暂停" in (bot.assert_private("boss", contains="定时群发（").text or "")


async def test_switched_off_groups_are_skipped_and_failures_are_recorded(tmp_path: Path) -> None:
    config = CONFIG.replace("to: [g1, set:learning]", "to: [g1, g2, g3, g9]")
    async with chat(write_config(tmp_path, config), WORLD) as bot:
        await bot.say("g3", "owner1", "关闭 定时群发")
        bot.assert_said("g3", contains="已在本群关闭")
        platform = bot.sim.platform
        real_say = platform.say

        async def flaky(group_id: str, text: str, mentions: tuple[str, ...] = ()) -> SendResult:
            if group_id == "g2":
                raise PlatformError("网络错误")
            return await real_say(group_id, text, mentions)

        platform.say = flaky  # type: ignore[method-assign]
        await bot.wait("2h")  # 08:00, and the outbox's retries for g2
        platform.say = real_say  # type: ignore[method-assign]
        assert sorted(g for g, _ in sends(bot, "早上好")) == ["g1"]
        await bot.private("boss", "群发报告 morning")
        report = bot.assert_private("boss", contains="报告").text or ""
    assert "宝妈交流群（g1）：已发送 1 · 失败 0 · 错过 0" in report
    assert "读书群（g2）：已发送 0 · 失败 1 · 错过 0" in report  # the outbox gave up: on_done said so
    assert "英语群（g3）：已发送 0 · 失败 0 · 错过 0 · 跳过 1" in report
    assert "g9（g9）：已发送 0 · 失败 1 · 错过 0" in report  # not attempted: the bot is not in g9
    assert "失败 12-01 08:00 g2：网络错误" in report and "失败 12-01 08:00 g9：机器人不在该群" in report


async def test_config_reload_rebuilds_jobs_without_sending_twice(tmp_path: Path) -> None:
    path = write_config(tmp_path, CONFIG)
    async with chat(load_everything(path), WORLD) as bot:
        app = bot.sim.app
        app.loaded.path = path
        await bot.wait("90m")  # 08:30, morning sent
        path.write_text(CONFIG.replace('cron: "0 8 * * *"', 'cron: "0 8,9 * * *"'), encoding="utf-8")
        assert await app.reload()
        await bot.wait("1h")
        assert sorted(t for g, t in sends(bot, "早上好") if g == "g1") == ["12-01 08:00", "12-01 09:00"]
        assert len(app.services.scheduler.jobs("broadcast:")) == 1  # type: ignore[union-attr]


async def test_an_unknown_group_set_in_yaml_stops_the_start_with_a_clear_message(tmp_path: Path) -> None:
    config = CONFIG.replace("set:learning", "set:lerning")
    with pytest.raises(ConfigError, match=r"broadcasts\.morning\.to\[\d\]: unknown group set 'lerning'"):
        async with chat(write_config(tmp_path, config), WORLD):
            pass


def test_config_errors_name_the_file_and_line(tmp_path: Path) -> None:
    bad = write_config(
        tmp_path,
        """
plugins:
  broadcast:
    broadcasts:
      morning:
        cron: "0 8 * * 8"
        to: g1
        text: "hi {nam}"
      "12":
        at: "2026-13-01 08:00"
        to: g1
        text: x
""",
    )
    with pytest.raises(ConfigError) as err:
        load_everything(bad)
    text = str(err.value)
    assert "bot.yaml:6: plugins.broadcast.broadcasts.morning.cron: not a cron expression" in text
    assert "bot.yaml:8: plugins.broadcast.broadcasts.morning.text: unknown placeholder {nam}" in text
    assert "bot.yaml:9: plugins.broadcast.broadcasts.12: broadcast name '12': start with a letter" in text
    assert "bot.yaml:10: plugins.broadcast.broadcasts.12.at:" in text


@pytest.mark.parametrize("when", ["cron * * * * *", "每1分钟", "cron */2 * * * *"])
async def test_a_chat_broadcast_more_often_than_the_minimum_is_refused_cron_included(tmp_path: Path, when: str) -> None:
    async with chat(write_config(tmp_path, CONFIG), WORLD) as bot:
        await bot.private("boss", f"定时群发 {when} 群=g1 刷屏测试")
        bot.assert_private("boss", contains="定时群发的间隔至少 5分钟")
        await bot.wait("10m")
        assert sends(bot, "刷屏测试") == []


async def test_a_yaml_cron_more_often_than_the_minimum_is_a_config_error(tmp_path: Path) -> None:
    bad = write_config(
        tmp_path,
        """\
plugins:
  broadcast:
    broadcasts:
      flood:
        cron: "* * * * *"
        to: g1
        text: x
""",
    )
    with pytest.raises(ConfigError, match=r"bot.yaml:3: plugins.broadcast.broadcasts: flood: 定时群发的间隔至少 5分钟"):
        load_everything(bad)
    # The operator may lower the minimum (to one minute at the least), and then it passes.
    ok = bad.read_text(encoding="utf-8").replace("  broadcast:\n", "  broadcast:\n    min_interval: 1m\n")
    bad.write_text(ok, encoding="utf-8")
    load_everything(bad)
