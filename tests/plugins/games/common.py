"""Shared test world and config for the games tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from plugins.games.models import Lottery, LotteryEntry
from tests.harness import Chat, write_config

MEMBERS = ["alice", "bob", "carol", "dave", "erin", "frank"]

WORLD: dict[str, Any] = {
    "clock": "2026-12-01T08:00:00+08:00",
    "contacts": [
        {"id": "owner1", "name": "群主"},
        {"id": "boss", "name": "Boss"},
        *({"id": m, "name": m.capitalize()} for m in MEMBERS),
    ],
    "groups": [
        {"id": "g1", "topic": "宝妈交流群", "owner": "owner1", "admins": ["carol"], "members": ["owner1", *MEMBERS]},
        {"id": "g2", "topic": "读书群", "owner": "owner1", "admins": [], "members": ["owner1", "alice", "bob"]},
    ],
}

CONFIG = """
bot_admins: [boss]
groups: [{id: g1, name: 宝妈交流群}, {id: g2, name: 读书群}]
plugins:
  games:
    lottery:
      join_reply: each
    quiz:
      timeout_seconds: 60
      bank:
        - {question: "中国的首都是哪座城市？", answers: [北京, 北京市], hint: 两个字}
        - {question: "一年有几个月？", answers: ["12", 十二]}
        - {question: "Hello 的中文？", answer: 你好}
"""


def config(
    tmp_path: Path, *, lottery: str = "", poll: str = "", quiz: str = "", extra: str = "", name: str = "bot.yaml"
) -> Path:
    """The test config, with extra lines (YAML, one setting per line) in a game's section."""

    def indent(lines: str) -> str:
        return "".join(f"      {line.strip()}\n" for line in lines.splitlines() if line.strip())

    text = CONFIG.replace("      join_reply: each\n", "      join_reply: each\n" + indent(lottery))
    text = text.replace("      timeout_seconds: 60\n", "      timeout_seconds: 60\n" + indent(quiz))
    text = text.replace("  games:\n", "  games:\n" + (f"    poll:\n{indent(poll)}" if poll else ""))
    return write_config(tmp_path, text + extra, name)


def said_texts(bot: Chat, group: str = "g1") -> list[str]:
    return [a.text or "" for a in bot.said(group)]


def last(bot: Chat, group: str = "g1") -> str:
    texts = said_texts(bot, group)
    return texts[-1] if texts else ""


async def lotteries(bot: Chat) -> list[Lottery]:
    async with bot.sim.app.db.session() as s:  # type: ignore[union-attr]
        return list((await s.execute(sa.select(Lottery).order_by(Lottery.id))).scalars().all())


async def entries(bot: Chat, lottery_id: int) -> list[LotteryEntry]:
    async with bot.sim.app.db.session() as s:  # type: ignore[union-attr]
        stmt = sa.select(LotteryEntry).where(LotteryEntry.lottery_id == lottery_id).order_by(LotteryEntry.id)
        return list((await s.execute(stmt)).scalars().all())
