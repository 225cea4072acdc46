"""End to end: SIGTERM to `qunbot run` on the Wechaty adapter stops taking events, lets the
ones received go through, writes the event log and the activity points (whose own flush is an
hour away), and exits 0."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

ROOM = "room_dev@chatroom"
PLUGINS = """\
keyword_reply:
  rules:
    - {name: mark, keywords: [到此为止], match: exact, replies: [收到标记]}
checkin:
  activity: {enabled: true, points: 1, daily_cap: 1000, min_chars: 1, min_interval_seconds: 0, flush_seconds: 10}
"""
SENDERS = ["contact_alice", "contact_bob", "contact_mallory"]


def test_sigterm_flushes_what_was_received_and_exits_0(stack_factory: Any) -> None:
    stack = stack_factory(PLUGINS)
    gw, bot = stack.gateway, stack.bot
    since = gw.seq()
    n = 150
    for i in range(n):
        gw.say(ROOM, SENDERS[i % 3], f"第{i}条消息")
    gw.say(ROOM, "contact_alice", "到此为止")
    gw.wait_sent(since, roomId=ROOM, match=lambda e: e["text"] == "收到标记", seconds=60)  # all handled
    assert bot.stop() == 0
    assert "wechaty: shutting down" in bot.log()
    db = sqlite3.connect(stack.workdir / "bot.db")
    try:
        messages = db.execute(
            "SELECT COUNT(*) FROM event_log WHERE type = 'message' AND group_id = ?", (ROOM,)
        ).fetchone()[0]
        points = db.execute(
            "SELECT SUM(delta) FROM points_ledger WHERE reason = 'activity' AND group_id = ?", (ROOM,)
        ).fetchone()[0]
    finally:
        db.close()
    assert messages == n + 1
    assert points == n + 1
