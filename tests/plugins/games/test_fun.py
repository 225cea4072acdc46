"""猜数字 and 掷骰子: reproducible from the injected rng, with per-member cooldowns."""

from __future__ import annotations

import re
from pathlib import Path

from bot.storage.points import PointsLedger
from plugins.games.models import Round
from tests.harness import chat
from tests.plugins.games.common import WORLD, config, last, said_texts


async def test_dice_roll_and_cooldown_per_member(tmp_path: Path) -> None:
    async with chat(config(tmp_path), WORLD) as bot:
        await bot.say("g1", "alice", "掷骰子")
        assert re.search(r"Alice 掷出了 [⚀-⚅] [1-6]$", last(bot))
        await bot.wait("1s")  # the same text twice in one second is dropped as a duplicate delivery
        await bot.say("g1", "alice", "掷骰子")
        assert "秒后再来" in last(bot)
        bot.new_actions()
        await bot.say("g1", "alice", "摇骰子")  # told once per cooldown, then ignored
        bot.assert_silent()
        await bot.say("g1", "bob", "掷骰子 3")  # another member is not held up
        assert re.search(r"Bob 掷出了 .*，共 \d+ 点$", last(bot))
        await bot.say("g1", "carol", "掷骰子 9")
        assert "一次 1~3 个" in last(bot)
        await bot.wait("31s")
        await bot.say("g1", "alice", "掷骰子")
        assert "Alice 掷出了" in last(bot)


async def test_dice_follow_the_seed(tmp_path: Path) -> None:
    rolls = []
    for _ in range(2):
        async with chat(config(tmp_path), WORLD, seed=7) as bot:
            await bot.say("g1", "alice", "掷骰子 3")
            rolls.append(last(bot))
    assert rolls[0] == rolls[1]


async def secret_of(bot) -> int:  # type: ignore[no-untyped-def]
    async with bot.sim.app.db.session() as s:
        rnd = await s.get(Round, 1)
        return int(rnd.answers[0])


async def test_guess_the_number_narrows_the_range_and_pays_the_winner(tmp_path: Path) -> None:
    async with chat(config(tmp_path), WORLD) as bot:
        await bot.say("g1", "alice", "猜 50")
        assert "没有猜数字游戏" in last(bot)
        await bot.say("g1", "owner1", "猜数字")
        assert "1~100" in last(bot)
        secret = await secret_of(bot)
        low_guess = secret - 1 if secret > 1 else None
        high_guess = secret + 1 if secret < 100 else None
        if low_guess is not None:
            await bot.say("g1", "alice", f"猜 {low_guess}")
            assert "小了" in last(bot) and f"范围 {secret}~" in last(bot)
        if high_guess is not None:
            await bot.say("g1", "bob", f"猜 {high_guess}")
            assert "大了" in last(bot) and f"~{secret}" in last(bot)
        await bot.say("g1", "alice", f"猜 {secret}")
        assert "猜得太快" in last(bot)  # alice's cooldown (5 s) is still running
        await bot.say("g1", "carol", "猜 abc")
        assert "用法：猜 数字" in last(bot)
        await bot.say("g1", "carol", "猜 1000")
        assert "之间的数" in last(bot)
        await bot.wait("6s")
        await bot.say("g1", "alice", f"猜 {secret}")
        win = bot.said("g1")[-1]
        assert "猜中了" in (win.text or "") and win.mentions == ["alice"] and "5 积分" in (win.text or "")
        entry = (await PointsLedger(bot.sim.app.db).history("g1", "alice"))[0]  # type: ignore[arg-type]
        assert (entry.reason, entry.delta) == ("game:guess", 5)
        await bot.say("g1", "bob", "猜 1")
        assert "没有猜数字游戏" in last(bot)


async def test_guess_times_out_and_can_be_stopped(tmp_path: Path) -> None:
    async with chat(config(tmp_path), WORLD) as bot:
        await bot.say("g1", "owner1", "猜数字")
        await bot.wait("1s")
        await bot.say("g1", "owner1", "猜数字")
        assert "猜数字进行中" in last(bot)
        secret = await secret_of(bot)
        await bot.wait("11m")
        assert last(bot) == f"⏰ 猜数字时间到，答案是 {secret}。"
        await bot.say("g1", "owner1", "猜数字")
        await bot.say("g1", "owner1", "结束猜数字")
        assert "猜数字已结束" in last(bot)
        await bot.wait("11m")
        assert sum("时间到" in t for t in said_texts(bot)) == 1
