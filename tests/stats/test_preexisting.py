"""Groups that existed before the bot, through the real pipeline (the simulator): members
found at start-up, on joining a group and by the hourly member list; their leaves; and the
chat command agreeing with `qunbot stats` to the character."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from bot import stats
from bot.cli import app
from bot.stats import Period, Scope
from bot.storage.db import Database
from bot.storage.repo import MembershipRepo
from tests.harness import chat, fresh_sqlite_url, write_config

SH = ZoneInfo("Asia/Shanghai")
CONFIG = """
timezone: Asia/Shanghai
bot: {id: wxid_bot, name: 小助手}
groups:
  - {id: g1}
plugins:
  stats:
    lurk_days: 3
    daily_digest: {enabled: false}
    weekly_digest: {enabled: false}
  checkin: {}
"""
G1 = Scope.one("g1", exclude=("wxid_bot",))


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path, CONFIG)


async def open_db(url: str) -> Database:
    return await Database.open(url, migrate=False)


async def test_members_from_before_the_bot_are_counted(config: Path) -> None:
    url = await fresh_sqlite_url()
    # g1 holds owner1, alice and bob when the bot starts (2026-12-01 08:00).
    async with chat(config, db_url=url) as bot:
        await bot.say("g1", "alice", "签到")
        await bot.say("g1", "bob", "签到")
        await bot.wait("1d")
        await bot.leave("g1", "bob")  # there before the bot: his leave counts
        await bot.say("g1", "alice", "签到")
        await bot.wait("4d")
    db = await open_db(url)
    try:
        assert sorted(m.member_id for m in await MembershipRepo(db).current_members("g1")) == ["alice", "owner1"]
        week = Period(date(2026, 12, 1), date(2026, 12, 5))
        g = await stats.growth(db, SH, G1, week)
        assert (g.found, g.joins, g.left, g.members_after) == (3, 0, 1, 2)
        c = await stats.checkin_rate(db, SH, G1, week)
        assert [(d.checked_in, d.members) for d in c.days[:2]] == [(2, 3), (1, 3)]
        assert (c.checked_in_once, c.members_in_period) == (2, 3)
        a = await stats.activity(db, SH, G1, week)
        assert all(d.active_ratio is None or d.active_ratio <= 1 for d in a.days)
        # The owner never said a word: a lurker once the bot has known him for 3 days.
        m = await stats.members(db, SH, G1, week, lurk_days=3)
        assert [x.member_id for x in m.lurker_sample] == ["owner1", "alice"] and m.lurkers == 2
        # Nobody joined while the bot watched: no retention cohort.
        r = await stats.retention(db, SH, G1, week, as_of=datetime(2026, 12, 6, 10, tzinfo=SH))
        assert r.total.size == 0
        assert any("before the bot" in note for note in r.table().notes)
    finally:
        await db.close()


async def test_the_hourly_member_list_notices_who_left_unannounced(config: Path) -> None:
    url = await fresh_sqlite_url()
    async with chat(config, db_url=url) as bot:
        bot.sim.world.leave("g1", ["bob"])  # no leave event reaches the bot
        bot.sim.world.join("g1", ["carol"])  # nor a join event
        await bot.wait("30m")
        await bot.sim.app.recorder.flush()  # type: ignore[union-attr]
        db = await open_db(url)
        try:
            assert {m.member_id for m in await MembershipRepo(db).current_members("g1")} == {"owner1", "alice", "bob"}
            await bot.wait("31m")  # past the hourly read
            await bot.sim.app.recorder.flush()  # type: ignore[union-attr]
            stays = {m.member_id: m for m in await MembershipRepo(db).current_members("g1")}
            assert set(stays) == {"owner1", "alice", "carol"}
            assert stays["carol"].joined_at is None  # when she joined, nobody knows
            [bob] = await MembershipRepo(db).history("g1", "bob")
            assert bob.left_at == datetime(2026, 12, 1, 9, 0, tzinfo=SH) and not bob.removed
        finally:
            await db.close()


async def test_a_group_the_bot_joins_brings_its_members(config: Path) -> None:
    url = await fresh_sqlite_url()
    async with chat(config, db_url=url) as bot:
        group = bot.sim.world.add_group("g3", "老同学群", "owner1", members=["carol", "dave"])
        del group.members["wxid_bot"]
        await bot.step(join="g3", members=["wxid_bot"], inviter="owner1")
        await bot.sim.app.recorder.flush()  # type: ignore[union-attr]
        db = await open_db(url)
        try:
            stays = await MembershipRepo(db).current_members("g3")
            assert sorted(m.member_id for m in stays) == ["carol", "dave", "owner1"]
            assert all(m.joined_at is None for m in stays)
        finally:
            await db.close()


async def test_chat_and_cli_give_the_same_summary(config: Path, tmp_path: Path) -> None:
    url = await fresh_sqlite_url()
    async with chat(config, db_url=url) as bot:
        await bot.join("g1", "carol", inviter="alice")
        for who in ("alice", "bob", "carol"):
            await bot.say("g1", who, "签到")
        await bot.wait("1d")
        await bot.leave("g1", "bob")
        await bot.say("g1", "alice", "今天也来了")
        await bot.wait("2d")
        bot.new_actions()
        await bot.say("g1", "owner1", "群数据")
        reply = bot.assert_said("g1", contains="「宝妈交流群」近7天").text or ""
        asked_at = bot.sim.clock.now()
    assert "首次记录原有成员 3 人" in reply and "退群 1" in reply
    result = await asyncio.to_thread(
        CliRunner().invoke,
        app,
        [
            "stats",
            "summary",
            "-c",
            str(config),
            "--db",
            url,
            "-g",
            "g1",
            "--days",
            "7",
            "--as-of",
            asked_at.isoformat(),
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == reply
