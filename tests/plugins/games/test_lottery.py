"""抽奖 through the full pipeline: start, join once, draw at the deadline or when full,
reproducible from the recorded seed, and nothing lost across restarts."""

from __future__ import annotations

from pathlib import Path

from plugins.games.repo import draw_winners
from tests.harness import chat
from tests.plugins.games.common import MEMBERS, WORLD, config, entries, last, lotteries, said_texts

START = "发起抽奖 奖品=电影票 人数=3 口令=我要抽奖 截止=20:00"


async def test_start_join_once_and_draw_at_the_deadline(tmp_path: Path) -> None:
    async with chat(config(tmp_path), WORLD) as bot:
        await bot.say("g1", "owner1", START)
        started = last(bot)
        assert "电影票" in started and "我要抽奖" in started and "今天 20:00" in started and "3 人" in started
        for member in ("alice", "bob", "dave", "erin"):
            await bot.say("g1", member, "我要抽奖")
        assert "当前 4 人" in last(bot) and bot.said("g1")[-1].mentions == ["erin"]
        await bot.say("g1", "bob", "我要抽奖！")  # a repeat (punctuation ignored): not counted
        assert "已经参加过了" in last(bot) and "当前 4 人" in last(bot)
        await bot.say("g1", "frank", "我要抽奖吗")  # not the keyword: ordinary chat
        await bot.wait("11h")
        assert "开奖啦" not in last(bot)
        await bot.wait("1h")
        result = bot.said("g1", contains="开奖啦")
        assert len(result) == 1 and result[0].at.startswith("2026-12-01T20:00")
        winners = result[0].mentions
        assert len(winners) == 3 and len(set(winners)) == 3
        assert set(winners) <= {"alice", "bob", "dave", "erin"}
        assert "共 4 人参与" in (result[0].text or "")
        for w in winners:
            assert f"@{w.capitalize()}" in (result[0].text or "")
        # The draw is re-derived from what the database recorded: the seed and the entries.
        (lot,) = await lotteries(bot)
        assert lot.status == "drawn" and lot.close_reason == "time"
        rows = await entries(bot, lot.id)  # type: ignore[arg-type]
        assert sorted(e.member_id for e in rows) == ["alice", "bob", "dave", "erin"]
        assert draw_winners(lot.seed, [e.member_id for e in rows], lot.winners) == lot.winner_ids == winners
        # Drawn: the keyword is ordinary chat again.
        bot.new_actions()
        await bot.say("g1", "frank", "我要抽奖")
        bot.assert_silent()


def test_the_draw_is_a_pure_function_of_seed_and_entries() -> None:
    people = [f"m{i}" for i in range(50)]
    first = draw_winners(12345, people, 5)
    assert first == draw_winners(12345, list(reversed(people)), 5)  # join order does not matter
    assert first == draw_winners(12345, [*people, "m3", "m7"], 5)  # nor duplicates
    assert len(set(first)) == 5 and set(first) <= set(people)
    assert draw_winners(12345, ["a", "b"], 5) in (["a", "b"], ["b", "a"])  # fewer entries than prizes
    assert draw_winners(1, [], 3) == []


async def test_full_house_draws_at_once(tmp_path: Path) -> None:
    async with chat(config(tmp_path), WORLD) as bot:
        await bot.say("g1", "carol", "发起抽奖 红包 2人 满3人开奖 口令=抢红包")  # carol is a group admin
        assert "满 3 人自动开奖" in last(bot)
        await bot.say("g1", "alice", "抢红包")
        await bot.say("g1", "bob", "抢红包")
        assert not bot.said("g1", contains="开奖啦")
        await bot.say("g1", "dave", "抢红包")
        result = bot.assert_said("g1", contains="开奖啦")
        assert len(result.mentions) == 2 and set(result.mentions) <= {"alice", "bob", "dave"}
        assert "当前 3 人" in said_texts(bot)[-2]  # the last join is confirmed before the result
        (lot,) = await lotteries(bot)
        assert lot.close_reason == "full"


async def test_admin_draws_early_or_cancels_and_numbers_pick_one_of_several(tmp_path: Path) -> None:
    async with chat(config(tmp_path), WORLD) as bot:
        await bot.say("g1", "owner1", "发起抽奖 电影票 口令=A 截止=20:00")
        await bot.say("g1", "owner1", "发起抽奖 奶茶 口令=B 截止=21:00")
        await bot.say("g1", "alice", "a")
        await bot.say("g1", "bob", "b")
        await bot.say("g1", "owner1", "开奖")
        assert "请写编号" in last(bot) and "#1 电影票" in last(bot) and "#2 奶茶" in last(bot)
        await bot.say("g1", "owner1", "开奖 #9")
        assert "没有进行中的抽奖 #9" in last(bot)
        await bot.say("g1", "owner1", "开奖 1")
        result = bot.assert_said("g1", contains="电影票」开奖啦")
        assert result.mentions == ["alice"]
        await bot.say("g1", "owner1", "取消抽奖")  # only #2 is left
        assert "奶茶」已取消" in last(bot)
        first, second = await lotteries(bot)
        assert (first.status, first.close_reason, first.closed_by) == ("drawn", "admin", "owner1")
        assert (second.status, second.winner_ids) == ("cancelled", None)
        await bot.say("g1", "owner1", "开奖")
        assert "现在没有进行中的抽奖" in last(bot)
        await bot.wait("1d")  # the cancelled lottery's timer is gone
        assert not bot.said("g1", contains="奶茶」开奖啦")


async def test_nobody_joined(tmp_path: Path) -> None:
    async with chat(config(tmp_path), WORLD) as bot:
        await bot.say("g1", "owner1", "发起抽奖 电影票 30分钟")
        await bot.wait("31m")
        assert "没有人参加" in last(bot)


BAD_INPUT = [
    ("发起抽奖", "用法：发起抽奖"),
    ("发起抽奖 奖品=电影票 颜色=红", "不认识的设置“颜色”"),
    ("发起抽奖 电影票 人数=500", "中奖人数最多 100 人"),
    ("发起抽奖 电影票 5人 满3人开奖", "不能少于中奖人数"),
    ("发起抽奖 电影票 截止=2027-06-01 20:00", "30 天以内"),
    ("发起抽奖 电影票 口令=帮助", "口令不能和命令“帮助”相同"),
    ("发起抽奖 电影票 口令=开奖", "口令不能和命令“开奖”相同"),
    ("发起抽奖 电影票 截止=25:00", "不存在"),
]


async def test_bad_input_shows_the_problem_and_usage_and_creates_nothing(tmp_path: Path) -> None:
    async with chat(config(tmp_path), WORLD) as bot:
        for command, problem in BAD_INPUT:
            await bot.say("g1", "owner1", command)
            await bot.wait("1s")
            assert problem in last(bot) and "例：发起抽奖" in last(bot), command
        assert await lotteries(bot) == []


async def test_limits_per_group_and_keywords_unique_per_group(tmp_path: Path) -> None:
    async with chat(config(tmp_path, lottery="max_open: 2"), WORLD) as bot:
        await bot.say("g1", "owner1", "发起抽奖 电影票 口令=我要")
        await bot.say("g1", "owner1", "发起抽奖 奶茶 口令=我要！")
        assert "正被抽奖 #1（电影票）使用" in last(bot)
        await bot.say("g1", "owner1", "发起抽奖 奶茶 口令=冲")
        await bot.say("g1", "owner1", "发起抽奖 蛋糕 口令=冲冲")
        assert "已有 2 个抽奖在进行" in last(bot)
        await bot.say("g2", "owner1", "发起抽奖 蛋糕 口令=我要")  # another group: its own lotteries
        assert "抽奖开始啦" in last(bot, "g2")
        await bot.say("g2", "alice", "我要")
        await bot.say("g1", "alice", "抽奖")
        info = last(bot)
        assert "#1 电影票" in info and "#2 奶茶" in info and "蛋糕" not in info


async def test_merged_and_silent_join_replies(tmp_path: Path) -> None:
    cfg = config(tmp_path, lottery="merge_seconds: 10", name="merged.yaml")
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("join_reply: each", "join_reply: merged"), encoding="utf-8")
    async with chat(cfg, WORLD) as bot:
        await bot.say("g1", "owner1", "发起抽奖 电影票 口令=1号 截止=20:00")
        bot.new_actions()
        for member in MEMBERS[:4]:
            await bot.say("g1", member, "1号")
        await bot.say("g1", "alice", "1号")  # a repeat, silently ignored
        bot.assert_silent()
        await bot.wait("15s")
        ack = bot.assert_said("g1", contains="参与抽奖成功", count=1)
        assert "Alice、Bob、Carol、Dave" in (ack.text or "") and "当前 4 人" in (ack.text or "")
    silent = cfg.read_text(encoding="utf-8").replace("merged", "silent")
    cfg.write_text(silent, encoding="utf-8")
    async with chat(cfg, WORLD) as bot:
        await bot.say("g1", "owner1", "发起抽奖 电影票 口令=1号 截止=20:00")
        bot.new_actions()
        await bot.say("g1", "alice", "1号")
        await bot.wait("1m")
        bot.assert_silent()


async def test_a_restart_in_the_middle_loses_nothing(tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'games.db'}"
    cfg = config(tmp_path)
    async with chat(cfg, WORLD, db_url=db_url) as bot:
        await bot.say("g1", "owner1", START)
        for member in ("alice", "bob", "carol"):
            await bot.say("g1", member, "我要抽奖")
        seed = (await lotteries(bot))[0].seed
    # Back at noon: the lottery is reloaded, its 20:00 job registered again.
    async with chat(cfg, {**WORLD, "clock": "2026-12-01T12:00:00+08:00"}, db_url=db_url, seed=99) as bot:
        assert bot.sim.app.services.scheduler.get("games:lottery:end:1") is not None
        await bot.say("g1", "alice", "我要抽奖")
        assert "已经参加过了" in last(bot)  # joins from before the restart still count
        await bot.say("g1", "dave", "我要抽奖")
        assert "当前 4 人" in last(bot)
        await bot.wait("8h")
        result = bot.assert_said("g1", contains="开奖啦", count=1)
        assert len(set(result.mentions)) == 3 and set(result.mentions) <= {"alice", "bob", "carol", "dave"}
        (lot,) = await lotteries(bot)
        assert lot.seed == seed  # the seed recorded before the restart decided the draw
        assert draw_winners(seed, ["alice", "bob", "carol", "dave"], 3) == result.mentions


async def test_a_lottery_whose_end_passed_while_down_is_drawn_at_start(tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'games.db'}"
    cfg = config(tmp_path)
    async with chat(cfg, WORLD, db_url=db_url) as bot:
        await bot.say("g1", "owner1", START)
        await bot.say("g1", "alice", "我要抽奖")
        await bot.say("g1", "bob", "我要抽奖")
        await bot.say("g1", "owner1", "发起抽奖 奶茶 满10人开奖 口令=奶茶")  # no end time: just reloaded
        await bot.say("g1", "carol", "奶茶")
    async with chat(cfg, {**WORLD, "clock": "2026-12-02T09:00:00+08:00"}, db_url=db_url) as bot:
        await bot.finish()
        result = bot.assert_said("g1", contains="电影票」开奖啦", count=1)
        assert result.at.startswith("2026-12-02T09:00")
        assert sorted(result.mentions) == ["alice", "bob"]  # three prizes, two entries
        assert bot.sim.app.services.scheduler.get("games:lottery:end:1") is None
        await bot.say("g1", "dave", "奶茶")
        assert "当前 2 人" in last(bot)
    async with chat(cfg, {**WORLD, "clock": "2026-12-03T09:00:00+08:00"}, db_url=db_url) as bot:
        await bot.finish()
        assert not bot.said("g1", contains="开奖啦")  # drawn once, not again at the next start


async def test_config_reload_keeps_a_running_lottery(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    async with chat(cfg, WORLD) as bot:
        app = bot.sim.app
        app.loaded.path = cfg
        await bot.say("g1", "owner1", "发起抽奖 “双人 电影票” 抽2人 明天20:00 口令=冲鸭")
        assert "双人 电影票" in last(bot) and "明天 20:00" in last(bot) and "2 人" in last(bot)
        await bot.say("g1", "alice", "@小助手 冲鸭")  # the bot's @-mention is not part of the keyword
        assert "当前 1 人" in last(bot)
        cfg.write_text(
            cfg.read_text(encoding="utf-8").replace(
                "join_reply: each", 'join_reply: each\n      texts: {result: "新开奖文案 {winners}"}'
            ),
            encoding="utf-8",
        )
        assert await app.reload()
        await bot.say("g1", "bob", "冲鸭")  # the rebuilt state still knows the lottery
        assert "当前 2 人" in last(bot)
        await bot.wait("2d")
        result = bot.assert_said("g1", contains="新开奖文案", count=1)
        assert sorted(result.mentions) == ["alice", "bob"]
        assert not bot.said("g1", contains="开奖啦")
