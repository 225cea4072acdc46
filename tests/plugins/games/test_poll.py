"""投票 through the full pipeline."""

from __future__ import annotations

from pathlib import Path

from tests.harness import chat
from tests.plugins.games.common import WORLD, config, last

OPEN = "发起投票 午饭吃什么 火锅 烧烤 日料 截止=12:00"


async def test_vote_by_number_results_on_request_and_at_the_deadline(tmp_path: Path) -> None:
    async with chat(config(tmp_path), WORLD) as bot:
        await bot.say("g1", "owner1", OPEN)
        started = last(bot)
        assert "1. 火锅\n2. 烧烤\n3. 日料" in started and "今天 12:00" in started and "投 编号" in started
        await bot.say("g1", "alice", "投 2")
        assert last(bot).endswith("已投给 2. 烧烤") and bot.said("g1")[-1].mentions == ["alice"]
        bot.new_actions()
        await bot.say("g1", "bob", "2")  # a bare number while a poll is open: counted silently
        await bot.say("g1", "dave", "３")  # full-width digits too
        bot.assert_silent()
        await bot.say("g1", "erin", "投 1")
        await bot.say("g1", "erin", "投 3")  # changing is allowed by default
        assert "已改投 3. 日料" in last(bot)
        await bot.say("g1", "frank", "投 5")
        assert "1~3 之间的编号" in last(bot)
        await bot.say("g1", "frank", "投 火锅")
        assert "投 编号" in last(bot)
        await bot.say("g1", "frank", "投票结果")
        progress = last(bot)
        assert "投票进行中" in progress
        assert "1. 火锅：0 票" in progress and "2. 烧烤：2 票（50%）" in progress and "3. 日料：2 票（50%）" in progress
        assert "共 4 人投票" in progress and "🏆" not in progress
        await bot.wait("4h")
        final = bot.assert_said("g1", contains="投票结果", count=1)
        assert final.at.startswith("2026-12-01T12:00") and "🏆" in (final.text or "")
        # Closed: a bare number is chat again, and 投 says so.
        bot.new_actions()
        await bot.say("g1", "alice", "2")
        bot.assert_silent()
        await bot.say("g1", "alice", "投 2")
        assert "没有进行中的投票" in last(bot)
        await bot.say("g1", "alice", "投票结果")  # the latest poll, closed
        assert "投票结果" in last(bot) and "共 4 人投票" in last(bot)


async def test_bare_numbers_never_hijack_chat(tmp_path: Path) -> None:
    async with chat(config(tmp_path), WORLD) as bot:
        bot.new_actions()
        await bot.say("g1", "alice", "2")  # no poll: ordinary chat
        bot.assert_silent()
        await bot.say("g1", "owner1", OPEN)
        bot.new_actions()
        for text in ("2点见", "22", "0", "2 楼说得对", "投2个"):
            await bot.say("g1", "alice", text)
        bot.assert_silent()
        await bot.say("g1", "alice", "投票结果")
        assert "共 0 人投票" in last(bot)
        await bot.say("g2", "alice", "2")  # another group has no poll
        await bot.say("g1", "alice", "投票结果")
        assert "共 0 人投票" in last(bot)


async def test_locked_votes_bare_confirmation_and_bare_numbers_off(tmp_path: Path) -> None:
    cfg = config(tmp_path, poll="allow_change: false\nconfirm_bare: true")
    async with chat(cfg, WORLD) as bot:
        await bot.say("g1", "owner1", OPEN)
        assert "不能改票" in last(bot)
        await bot.say("g1", "alice", "1")
        assert "已投给 1. 火锅" in last(bot)
        await bot.say("g1", "alice", "投 2")
        assert "你已经投给了 1. 火锅，本次投票不能改票" in last(bot)
        await bot.say("g1", "owner1", "结束投票")
        assert "1. 火锅：1 票（100%）" in last(bot)
    cfg = config(tmp_path, poll="bare_number: false", name="nobare.yaml")
    async with chat(cfg, WORLD) as bot:
        await bot.say("g1", "owner1", OPEN)
        assert "直接发送编号" not in last(bot)
        bot.new_actions()
        await bot.say("g1", "alice", "1")
        bot.assert_silent()
        await bot.say("g1", "alice", "投票结果")
        assert "共 0 人投票" in last(bot)


async def test_one_poll_per_group_cancel_and_usage(tmp_path: Path) -> None:
    async with chat(config(tmp_path), WORLD) as bot:
        await bot.say("g1", "owner1", "发起投票")
        assert "用法：发起投票" in last(bot)
        await bot.say("g1", "owner1", "发起投票 午饭 火锅")
        assert "至少要两个选项" in last(bot) and "用法：发起投票" in last(bot)
        await bot.say("g1", "owner1", OPEN)
        await bot.say("g1", "owner1", "发起投票 晚饭 面 饭")
        assert "已有进行中的投票（#1 午饭吃什么）" in last(bot)
        await bot.say("g1", "owner1", "取消投票")
        assert "已取消" in last(bot)
        await bot.say("g1", "owner1", "取消投票")
        assert "没有进行中的投票" in last(bot)
        await bot.say("g1", "alice", "投票结果")
        assert "还没有投票" in last(bot)  # a cancelled poll has no results to show
        await bot.wait("5h")
        assert not bot.said("g1", contains="投票结果")


async def test_votes_survive_a_restart_and_an_overdue_poll_is_announced_at_start(tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'poll.db'}"
    cfg = config(tmp_path)
    async with chat(cfg, WORLD, db_url=db_url) as bot:
        await bot.say("g1", "owner1", OPEN)
        await bot.say("g1", "alice", "投 1")
    async with chat(cfg, {**WORLD, "clock": "2026-12-01T10:00:00+08:00"}, db_url=db_url) as bot:
        await bot.say("g1", "bob", "1")  # the bare-number vote works again after the restart
        await bot.say("g1", "alice", "投 1")
        assert "已投给 1. 火锅" in last(bot)  # same vote again: still one
    async with chat(cfg, {**WORLD, "clock": "2026-12-01T13:00:00+08:00"}, db_url=db_url) as bot:
        await bot.finish()
        final = bot.assert_said("g1", contains="投票结果", count=1)
        assert "1. 火锅：2 票（100%）" in (final.text or "") and final.at.startswith("2026-12-01T13:00")
