"""Thirty-five virtual days of check-ins through the full pipeline, checked against an
independent model of the rules: streaks, bonuses (every 7th day, the 30th-day milestone),
make-ups that repair a streak, the monthly make-up limit across a month change, and the
ledger sums equalling every total the bot reports."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import date, timedelta
from pathlib import Path

from tests.harness import chat, write_config
from tests.plugins.checkin.helpers import BASE_CONFIG, WORLD, field, last_reply, ledger_sum

DAYS = 35
START = date(2026, 12, 1)
BASE, COST, LIMIT = 5, 20, 2


def bonus(streak: int) -> int:
    return (20 if streak % 7 == 0 else 0) + (100 if streak == 30 else 0)


@dataclass
class Model:
    """The rules, written independently of the plugin."""

    days: set[int] = dc_field(default_factory=set)
    total: int = 0
    makeups: dict[tuple[int, int], int] = dc_field(default_factory=dict)  # (year, month) → bought

    def streak_ending(self, i: int) -> int:
        n = 0
        while i - n in self.days:
            n += 1
        return n

    def check_in(self, i: int) -> tuple[int, int]:
        self.days.add(i)
        streak = self.streak_ending(i)
        self.total += BASE + bonus(streak)
        return streak, self.total

    def make_up(self, today: int, missed: int) -> bool:
        month = ((START + timedelta(days=today)).year, (START + timedelta(days=today)).month)
        if self.makeups.get(month, 0) >= LIMIT or self.total < COST:
            return False
        self.makeups[month] = self.makeups.get(month, 0) + 1
        self.days.add(missed)
        self.total -= COST
        return True

    def current_streak(self, today: int) -> int:
        return self.streak_ending(today) or self.streak_ending(today - 1)

    def longest(self) -> int:
        return max((self.streak_ending(i) for i in self.days), default=0)


# Who checks in when (day indexes from 2026-12-01), and who makes up which missed day.
PLAN_SKIPS = {
    "alice": set(),  # every day: bonuses on days 7, 14, 21, 28, 35 and the 30-day milestone
    "bob": {4, 11, 18, 25, 32},
    "carol": set(range(10, DAYS)),  # stops after ten days: her streak dies
}
MAKEUPS = {12: ("bob", 11), 19: ("bob", 18), 26: ("bob", 25), 33: ("bob", 32)}  # made on day → (who, missed day)


async def test_thirty_five_days_of_streaks_bonuses_and_makeups(tmp_path: Path) -> None:
    models = {name: Model() for name in PLAN_SKIPS}
    async with chat(write_config(tmp_path, BASE_CONFIG), WORLD) as bot:
        for i in range(DAYS):
            for name, skips in PLAN_SKIPS.items():
                if i in skips:
                    continue
                await bot.say("g1", name, "签到")
                reply = last_reply(bot, "OK")
                streak, total = models[name].check_in(i)
                assert (field(reply, "streak"), field(reply, "total")) == (streak, total), (i, name, reply)
                assert field(reply, "bonus") == bonus(streak)
                assert field(reply, "longest") == models[name].longest()
            if i in MAKEUPS:
                name, missed = MAKEUPS[i]
                await bot.say("g1", name, "补签")
                reply = last_reply(bot)
                if models[name].make_up(i, missed):
                    assert reply.startswith("@Bob\u2005MAKEUP"), (i, reply)
                    assert field(reply, "streak") == models[name].current_streak(i)
                    assert field(reply, "total") == models[name].total
                else:
                    assert "补签次数已用完" in reply, (i, reply)
            # Every member's reported total is the ledger sum, every day.
            for name, model in models.items():
                assert await ledger_sum(bot, "g1", name) == model.total, (i, name)
            await bot.wait("1d")

        today = DAYS  # the clock is now on the 36th day; nobody has checked in yet
        for name, model in models.items():
            await bot.say("g1", name, "我的积分")
            reply = last_reply(bot, "ME")
            assert field(reply, "total") == model.total == await ledger_sum(bot, "g1", name)
            assert field(reply, "streak") == model.current_streak(today)
            assert field(reply, "longest") == model.longest()
            assert field(reply, "days") == len(model.days)

        await bot.say("g1", "alice", "连续签到榜")
        board = last_reply(bot, "连续签到榜").splitlines()
        assert board[1] == f"1. Alice {models['alice'].current_streak(today)} 天"
        assert board[2] == f"2. Bob {models['bob'].current_streak(today)} 天"
        assert not any("Carol" in line for line in board)  # her run ended on day 10

        await bot.say("g1", "alice", "积分榜")
        board = last_reply(bot, "积分榜").splitlines()
        ranked = sorted(models.items(), key=lambda kv: -kv[1].total)
        assert board[1:] == [f"{k}. {n.title()} {m.total} 分" for k, (n, m) in enumerate(ranked, start=1)]

    # The expected story, spelled out: alice got five every-7th bonuses and the milestone.
    assert models["alice"].total == DAYS * BASE + 5 * 20 + 100
    assert models["bob"].makeups == {(2026, 12): 2, (2027, 1): 1}  # the third December make-up was refused
