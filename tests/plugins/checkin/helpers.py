"""Shared helpers for the check-in tests: a world, a config, and reading totals back."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from tests.harness import Chat

WORLD: dict[str, Any] = {
    "clock": "2026-12-01T08:00:00+08:00",
    "bot": {"id": "wxid_bot", "name": "小助手"},
    "contacts": [
        {"id": "owner1", "name": "群主"},
        {"id": "alice", "name": "Alice"},
        {"id": "bob", "name": "Bob"},
        {"id": "carol", "name": "Carol"},
        {"id": "dave", "name": "Dave"},
        {"id": "erin", "name": "Erin"},
    ],
    "groups": [
        {
            "id": "g1",
            "topic": "宝妈交流群",
            "owner": "owner1",
            "admins": [],
            "members": ["owner1", "alice", "bob", "carol", "dave"],
        },
        {"id": "g2", "topic": "读书群", "owner": "owner1", "admins": ["alice"], "members": ["owner1", "alice", "bob"]},
    ],
}

# Plain numbers, texts that show every value: the tests read them back.
BASE_CONFIG = """
timezone: Asia/Shanghai
bot_admins: []
plugins:
  checkin:
    day_starts_at: "04:00"
    board_cooldown_seconds: 0
    replies: {mode: each}  # these tests read each member's own reply
    points:
      base: 5
      streak_bonuses: [{every: 7, points: 20}, {on_day: 30, points: 100}]
    makeup: {cost: 20, monthly_limit: 2, max_days_back: 7}
    texts:
      success: "OK rank={rank} streak={streak} longest={longest} points={points} bonus={bonus}
        total={total} days={days}"
      already: "ALREADY rank={rank} streak={streak} total={total}"
      my_points: "ME total={total} prank={points_rank} streak={streak} longest={longest}
        days={days} left={makeups_left}"
      makeup_success: "MAKEUP {date} cost={cost} streak={streak} total={total} used={used}/{limit}"
"""


def field(text: str | None, name: str) -> int:
    match = re.search(rf"\b{name}=(-?\d+)", text or "")
    assert match, f"{name}= not in {text!r}"
    return int(match.group(1))


def last_reply(bot: Chat, contains: str = "") -> str:
    said = [a for a in bot.new_actions() if a.action == "say" and contains in (a.text or "")]
    assert said, f"no reply containing {contains!r}"
    return said[-1].text or ""


async def ledger_sum(bot: Chat, group: str, member: str) -> int:
    """The member's total straight from the ledger table (not through the plugin)."""
    db = bot.sim.app.db
    assert db is not None
    async with db.engine.connect() as conn:
        value = await conn.execute(
            sa.text("SELECT COALESCE(SUM(delta), 0) FROM points_ledger WHERE group_id = :g AND member_id = :m"),
            {"g": group, "m": member},
        )
        return int(value.scalar_one())
