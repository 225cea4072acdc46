"""The account's hourly send budget through the whole bot: sends past it wait, and the bot
admins hear about it once, privately, at 80%."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from tests.harness import chat, write_config

CONFIG = """
bot_admins: [owner1]
outbox: {min_gap: 1, jitter: 0, per_minute: 100, per_group_per_minute: 100, per_hour: 10}
plugins:
  keyword_reply:
    rules:
      - {keywords: [在吗], match: exact, replies: ["在的"]}
"""


async def test_the_admins_are_alerted_once_at_80_percent_and_the_budget_holds(tmp_path: Path) -> None:
    async with chat(write_config(tmp_path, CONFIG)) as bot:
        for _ in range(14):
            await bot.say("g1", "alice", "在吗")  # the simulator lets each reply go out, however long it waits
        sends = [datetime.fromisoformat(a.at) for a in bot.sim.actions if a.action in ("say", "private")]
        assert len(sends) == 15  # 14 replies and one alert
        # Never more than 10 in any hour: the 11th send waited for the first to be an hour old.
        assert all(sum(1 for t in sends if at <= t < at + timedelta(hours=1)) <= 10 for at in sends)
        assert sends[10] - sends[0] >= timedelta(hours=1)
        [alert] = [a for a in bot.sim.actions if a.action == "private"]
        assert alert.to == "owner1" and "发送量提醒" in (alert.text or "")
        assert "最近一小时已发送 8 条" in (alert.text or "") and "每小时上限 10 条" in (alert.text or "")
