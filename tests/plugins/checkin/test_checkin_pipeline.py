"""Check-in through the full pipeline: day boundaries, the window, per-group words, restarts,
leaderboards and their tie rules, make-up rules, calendars and history."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app import load_everything
from bot.config.errors import ConfigError
from tests.harness import chat, write_config
from tests.plugins.checkin.helpers import BASE_CONFIG, WORLD, field, last_reply, ledger_sum


def config(tmp_path: Path, extra: str = "") -> Path:
    return write_config(tmp_path, BASE_CONFIG + extra)


async def test_once_a_day_with_the_day_starting_at_four(tmp_path: Path) -> None:
    async with chat(config(tmp_path), WORLD) as bot:  # 2026-12-01 08:00 Shanghai
        await bot.say("g1", "alice", "签到")
        assert field(last_reply(bot, "OK"), "rank") == 1
        await bot.say("g1", "bob", "/打卡")  # the second default word, behind a prefix
        assert field(last_reply(bot, "OK"), "rank") == 2
        await bot.say("g1", "bob", "签到")
        reply = last_reply(bot)
        assert reply.startswith("@Bob\u2005ALREADY") and field(reply, "rank") == 2
        assert await ledger_sum(bot, "g1", "bob") == 5  # no second award

        await bot.wait("70200s")  # 19.5 h later: 03:30 on Dec 2: still Dec 1's business day
        await bot.say("g1", "alice", "签到")
        assert "ALREADY" in last_reply(bot)
        await bot.say("g1", "carol", "签到")  # checks in for Dec 1
        assert field(last_reply(bot, "OK"), "rank") == 3

        await bot.wait("1h")  # 04:30: a new day
        await bot.say("g1", "carol", "签到")
        reply = last_reply(bot, "OK")
        assert (field(reply, "rank"), field(reply, "streak")) == (1, 2)
        await bot.say("g1", "alice", "签到")
        assert (field(last_reply(bot, "OK"), "streak")) == 2


async def test_check_in_text_is_not_a_command_inside_a_sentence(tmp_path: Path) -> None:
    async with chat(config(tmp_path), WORLD) as bot:
        await bot.say("g1", "alice", "签到了吗")
        await bot.say("g1", "alice", "今天签到")
        bot.assert_silent()
        assert await ledger_sum(bot, "g1", "alice") == 0


async def test_window_refuses_outside_and_may_cross_midnight(tmp_path: Path) -> None:
    extra = """
    window: {start: "05:00", end: "10:00"}
    overrides:
      - groups: [g2]
        window: {start: "22:00", end: "02:00"}
"""
    async with chat(config(tmp_path, extra.replace("\n    ", "\n    ")), WORLD) as bot:  # 08:00
        await bot.say("g1", "alice", "签到")
        assert "OK" in last_reply(bot)
        await bot.say("g2", "alice", "签到")
        reply = last_reply(bot)
        assert "签到时间是每天 22:00–02:00" in reply and "08:00" in reply
        await bot.wait("3h")  # 11:00
        await bot.say("g1", "bob", "签到")
        assert "签到时间是每天 05:00–10:00" in last_reply(bot)
        assert await ledger_sum(bot, "g1", "bob") == 0
        await bot.wait("13h")  # 00:00 on Dec 2: inside g2's window, and (day starts at 04:00) still Dec 1
        await bot.say("g2", "alice", "签到")
        assert field(last_reply(bot, "OK"), "streak") == 1


async def test_keywords_per_group(tmp_path: Path) -> None:
    extra = """
    overrides:
      - groups: [g2]
        keywords: [早起打卡, 读书打卡]
"""
    async with chat(config(tmp_path, extra), WORLD) as bot:
        await bot.say("g2", "bob", "签到")
        bot.assert_silent()
        await bot.say("g2", "bob", "读书打卡")
        assert "OK" in last_reply(bot)
        await bot.say("g1", "bob", "读书打卡")
        bot.assert_silent()
        await bot.say("g1", "bob", "打卡")
        assert "OK" in last_reply(bot)
        # Separate groups, separate records and points.
        assert await ledger_sum(bot, "g1", "bob") == await ledger_sum(bot, "g2", "bob") == 5


async def test_state_survives_a_restart(tmp_path: Path, db_url: str) -> None:
    """On SQLite and PostgreSQL: two bot sessions on one database are a restart."""
    url = db_url
    cfg = config(tmp_path)
    async with chat(cfg, WORLD, db_url=url) as bot:
        for _ in range(3):
            await bot.say("g1", "alice", "签到")
            await bot.wait("1d")
        await bot.say("g1", "alice", "签到")  # Dec 4
    async with chat(cfg, {**WORLD, "clock": "2026-12-04T20:00:00+08:00"}, db_url=url) as bot:
        await bot.say("g1", "alice", "签到")
        reply = last_reply(bot)
        assert "ALREADY" in reply and field(reply, "streak") == 4 and field(reply, "total") == 20
        await bot.wait("1d")
        await bot.say("g1", "alice", "签到")
        reply = last_reply(bot, "OK")
        assert field(reply, "streak") == 5 and field(reply, "total") == 25 == await ledger_sum(bot, "g1", "alice")


async def test_leaderboards_order_and_ties(tmp_path: Path) -> None:
    async with chat(config(tmp_path, "    top_n: 2\n"), WORLD) as bot:
        for name in ("alice", "bob", "carol"):
            await bot.say("g1", name, "签到")
        await bot.wait("1d")
        # Day 2: carol first, then bob; alice not yet (her streak of 1 is still alive).
        await bot.say("g1", "carol", "签到")
        await bot.wait("1m")
        await bot.say("g1", "bob", "签到")
        bot.new_actions()

        await bot.say("g1", "dave", "签到榜")
        lines = last_reply(bot, "今日签到榜").splitlines()
        assert "已签到 3 人" not in lines[0] and "已签到 2 人" in lines[0]
        assert [line.split()[1] for line in lines[1:3]] == ["Carol", "Bob"]
        assert lines[-1].startswith("你今天还没签到")

        await bot.say("g1", "alice", "连续签到榜")
        lines = last_reply(bot, "连续签到榜").splitlines()
        # Carol and Bob share rank 1 (2 days); Carol checked in earlier today, so she is listed first.
        assert lines[1:3] == ["1. Carol 2 天", "1. Bob 2 天"]
        assert lines[3] == "你：连续 1 天（第3名）"  # past top 2: shown below

        # Points: carol and bob tie at 10; alice 5. An admin makes alice equal too.
        await bot.say("g1", "owner1", "加分 Alice 5 补偿")
        await bot.say("g1", "dave", "积分榜")
        lines = last_reply(bot, "积分榜").splitlines()
        # All three at 10 share rank 1; listed by who reached 10 first (carol, then bob, then alice).
        assert lines[1:] == ["1. Carol 10 分", "1. Bob 10 分"]
        await bot.say("g1", "alice", "我的积分")
        assert field(last_reply(bot, "ME"), "prank") == 1


async def test_board_cooldown_ignores_repeats(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, BASE_CONFIG.replace("board_cooldown_seconds: 0", "board_cooldown_seconds: 60"))
    async with chat(cfg, WORLD) as bot:
        await bot.say("g1", "alice", "签到榜")
        await bot.say("g1", "bob", "签到榜")
        await bot.say("g1", "bob", "积分榜")  # another board: its own cooldown
        assert len(bot.said("g1", "还没有人签到")) == 1 and len(bot.said("g1", "还没有人有积分")) == 1
        await bot.wait("2m")
        await bot.say("g1", "bob", "签到榜")
        assert len(bot.said("g1", "还没有人签到")) == 2


async def test_makeup_rules(tmp_path: Path) -> None:
    async with chat(config(tmp_path), WORLD) as bot:
        await bot.say("g1", "alice", "补签")
        assert "积分不足：补签需要 20 积分，你现在有 0 积分" in last_reply(bot)
        await bot.say("g1", "owner1", "加分 Alice 100 启动资金")
        for text, expected in [
            ("补签 明年", "看不懂日期"),
            ("补签 2026-12-01", "今天还没过完"),
            ("补签 2026-12-05", "不能补签未来的日子"),
            ("补签 2026-11-01", "只能补签最近 7 天内"),
        ]:
            await bot.say("g1", "alice", text)
            assert expected in last_reply(bot), text
        await bot.say("g1", "alice", "补签")  # Nov 30
        reply = last_reply(bot, "MAKEUP")
        assert "11月30日" in reply and field(reply, "total") == 80 and field(reply, "streak") == 1
        await bot.say("g1", "alice", "补签 11-30")
        assert "11月30日已经签到过了" in last_reply(bot)
        await bot.say("g1", "alice", "签到")  # today continues yesterday's made-up day
        assert field(last_reply(bot, "OK"), "streak") == 2
        await bot.say("g1", "alice", "补签 29号")
        assert field(last_reply(bot, "MAKEUP"), "streak") == 3  # Nov 29 + 30 + Dec 1
        await bot.say("g1", "alice", "补签 11月28日")  # a third make-up in December
        assert "本月补签次数已用完（2/2 次）" in last_reply(bot)
        # An admin's make-up is free and outside the limit.
        await bot.say("g1", "owner1", "代补签 @Alice 11-28", mentions=["alice"])
        assert "已为 Alice 补签 11月28日" in last_reply(bot)
        await bot.say("g1", "alice", "我的积分")
        reply = last_reply(bot, "ME")
        assert field(reply, "streak") == 4 and field(reply, "left") == 0
        assert field(reply, "total") == 100 - 40 + 5 == await ledger_sum(bot, "g1", "alice")


async def test_makeup_can_be_switched_off(tmp_path: Path) -> None:
    cfg = BASE_CONFIG.replace("makeup: {cost: 20,", "makeup: {enabled: false, cost: 20,")
    async with chat(write_config(tmp_path, cfg), WORLD) as bot:
        await bot.say("g1", "alice", "补签")
        bot.assert_silent()


async def test_calendar_for_this_and_last_month(tmp_path: Path) -> None:
    async with chat(config(tmp_path), {**WORLD, "clock": "2026-11-28T08:00:00+08:00"}) as bot:
        await bot.say("g1", "owner1", "加分 Bob 100 x")
        for day in range(6):  # Nov 28 … Dec 3; skips Nov 30 (made up later) and Dec 2
            if day not in (2, 4):
                await bot.say("g1", "bob", "签到")
            await bot.wait("1d")
        await bot.say("g1", "bob", "补签 11-30")
        bot.new_actions()
        await bot.say("g1", "bob", "签到日历")  # Dec 4, not checked in yet
        lines = last_reply(bot, "2026年12月").splitlines()
        assert lines[0].endswith("Bob 的 2026年12月签到")
        assert lines[1] == "一二三四五六日"
        assert lines[2] == "\u3000✅❌✅⬜⬜⬜"  # Tue 1 ✅, Wed 2 missed, Thu 3 ✅, Fri 4 today
        assert "本月签到 2 天，漏签 1 天" in lines
        assert any(line.startswith("可补签：12-02") for line in lines)
        await bot.say("g1", "bob", "签到日历 2026-11")
        lines = last_reply(bot, "2026年11月").splitlines()
        # Nov 1 2026 is a Sunday: six blanks, then Nov 1; Sat 28 ✅ Sun 29 ✅, Mon 30 🔄 alone.
        assert lines[2] == "\u3000" * 6 + "❌"
        assert lines[6].endswith("❌✅✅") and lines[7] == "🔄"
        assert "本月签到 3 天（含补签 1 天）" in "\n".join(lines)
        await bot.say("g1", "bob", "签到日历 十三月")
        assert "看不懂月份" in last_reply(bot)


async def test_history_is_private_to_the_member_unless_admin(tmp_path: Path) -> None:
    async with chat(config(tmp_path), WORLD) as bot:
        await bot.say("g1", "alice", "签到")
        await bot.say("g1", "owner1", "扣分 @Alice 2 刷屏", mentions=["alice"])
        await bot.say("g1", "alice", "积分明细")
        reply = last_reply(bot, "积分明细")
        assert "共 3 分" in reply and "-2 管理员调整（刷屏）" in reply and "+5 签到" in reply
        await bot.say("g1", "bob", "积分明细 @Alice", mentions=["alice"])
        assert "只有管理员" in last_reply(bot)
        await bot.say("g1", "owner1", "积分明细 Alice")
        assert "Alice 的积分明细" in last_reply(bot)


def test_bad_config_is_reported_with_file_and_line(tmp_path: Path) -> None:
    bad = (
        BASE_CONFIG
        + """    day_strats_at: "04:00"
    window: {start: "25:00", end: "10:00"}
"""
    )
    with pytest.raises(ConfigError) as err:
        load_everything(write_config(tmp_path, bad))
    text = str(err.value)
    assert "bot.yaml:20: plugins.checkin.day_strats_at: unknown key" in text
    assert "bot.yaml:21: plugins.checkin.window.start: " in text and "not a time of day" in text
    clash = BASE_CONFIG + "    words: {my_points: [签到]}\n"
    with pytest.raises(ConfigError) as err:
        load_everything(write_config(tmp_path, clash))
    assert "'签到' is already used by keywords" in str(err.value)


async def test_random_extra_points_are_within_range_and_in_the_ledger(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, BASE_CONFIG.replace("      base: 5\n", "      base: 5\n      random_max: 3\n"))
    async with chat(cfg, WORLD, seed=7) as bot:
        earned = []
        for name in ("alice", "bob", "carol", "dave"):
            await bot.say("g1", name, "签到")
            reply = last_reply(bot, "OK")
            earned.append(field(reply, "points"))
            assert field(reply, "total") == await ledger_sum(bot, "g1", name)
        assert all(5 <= p <= 8 for p in earned)


def test_the_default_config_enables_check_in_with_chinese_texts() -> None:
    loaded = load_everything(Path(__file__).resolve().parents[3] / "config" / "bot.yaml")
    settings = next(s for s in loaded.plugins if s.name == "checkin")
    default = settings.for_group("g1")
    assert default.keywords == ["签到", "打卡"] and default.window is None  # type: ignore[attr-defined]
    assert "签到成功" in default.texts.success and default.activity.enabled  # type: ignore[attr-defined]
    learning = settings.for_group("g2")  # the study groups: a morning window
    assert learning.window is not None and f"{learning.window.start:%H:%M}" == "05:00"  # type: ignore[attr-defined]
