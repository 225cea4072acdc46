"""Every admin command of the games refuses a member, command by command (and changes
nothing); group admins, the owner and bot admins may use them."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

import plugins.games as games
from bot.core.plugin import Permission
from plugins.games.models import Lottery, Poll, Round
from tests.harness import chat
from tests.plugins.games.common import WORLD, config, last

ADMIN_COMMANDS = {
    "发起抽奖": "发起抽奖 电影票 口令=我要",
    "开奖": "开奖",
    "取消抽奖": "取消抽奖",
    "发起投票": "发起投票 午饭 火锅 烧烤",
    "结束投票": "结束投票",
    "取消投票": "取消投票",
    "开始答题": "开始答题 2",
    "出题": "出题",
    "结束答题": "结束答题",
    "猜数字": "猜数字",
    "结束猜数字": "结束猜数字",
}


def test_the_list_above_is_every_admin_command_of_the_plugin() -> None:
    declared = {spec.word for spec in games.plugin.commands if spec.permission >= Permission.GROUP_ADMIN}
    assert declared == set(ADMIN_COMMANDS)


async def snapshot(bot) -> list[list[tuple[int, str]]]:  # type: ignore[no-untyped-def]
    """Every game row's id and status."""
    async with bot.sim.app.db.session() as s:
        return [
            [tuple(row) for row in (await s.execute(sa.select(t.id, t.status).order_by(t.id))).all()]
            for t in (Lottery, Poll, Round)
        ]


@pytest.mark.parametrize(("word", "command"), ADMIN_COMMANDS.items(), ids=ADMIN_COMMANDS.keys())
async def test_a_member_is_refused_and_nothing_changes(tmp_path: Path, word: str, command: str) -> None:
    async with chat(config(tmp_path), WORLD) as bot:
        # Something running, so that "end / cancel / draw" commands would have work to do.
        await bot.say("g1", "owner1", "发起抽奖 奶茶 口令=奶茶")
        await bot.say("g1", "owner1", "发起投票 晚饭 面 饭")
        await bot.say("g1", "owner1", "出题")
        await bot.say("g1", "owner1", "猜数字")
        before = await snapshot(bot)
        assert all(before)
        bot.new_actions()
        await bot.say("g1", "alice", command)
        (refusal,) = bot.new_actions()
        assert refusal.text == "@Alice\u2005这个命令需要群管理员权限。" and refusal.mentions == ["alice"]
        assert await snapshot(bot) == before


@pytest.mark.parametrize("admin", ["owner1", "carol", "boss"])  # owner, a group admin, a bot admin
async def test_admins_may(tmp_path: Path, admin: str) -> None:
    async with chat(config(tmp_path), WORLD) as bot:
        await bot.say("g1", admin, "发起抽奖 电影票 口令=我要")
        assert "抽奖开始啦" in last(bot)
        await bot.say("g1", admin, "开奖")
        assert "没有人参加" in last(bot)
