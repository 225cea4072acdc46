"""End to end: the bot survives its puppet service. The gateway is killed and restarted,
frozen (the TCP link stays up, nothing answers), and the bot itself is restarted while the
service replays history. Each time the bot reconnects by itself and answers again, once."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

ROOM = "room_dev@chatroom"
PLUGINS = """\
keyword_reply:
  rules:
    - {name: ding, keywords: [ding], match: exact, replies: [dong]}
"""
CONNECTED = "wechaty: connected to the puppet service"


@pytest.fixture(scope="module")
def stack(stack_factory: Any) -> Any:
    return stack_factory(PLUGINS)


def ding_once(stack: Any, text: str = "ding") -> str:
    """Say ding, expect exactly one dong (also after a pause: no duplicate reply)."""
    gw = stack.gateway
    since = gw.seq()
    message_id = gw.say(ROOM, "contact_bob", text)
    gw.wait_sent(since, roomId=ROOM)
    time.sleep(0.8)
    assert [r["text"] for r in gw.sent(since, roomId=ROOM)] == ["dong"]
    return str(message_id)


def test_reconnects_after_the_gateway_is_killed_and_restarted(stack: Any) -> None:
    gw, bot = stack.gateway, stack.bot
    ding_once(stack)
    connects = bot.count(CONNECTED)
    gw.kill()  # a crash: the event stream breaks
    bot.wait_log("reconnecting in", seconds=15)
    gw.start()  # same ports, a fresh world
    bot.wait_log(CONNECTED, times=connects + 1, seconds=30)
    bot.wait_log("wechaty: logged in as", times=connects + 1, seconds=15)
    ding_once(stack)  # handlers are registered once: one reply, not two


def test_a_frozen_service_is_noticed_and_replayed_messages_trigger_nothing(stack: Any) -> None:
    gw, bot = stack.gateway, stack.bot
    ding_once(stack)
    gw.post("/config", {"replayOnConnect": 1})  # the service will replay that ding on reconnect
    connects = bot.count(CONNECTED)
    gw.freeze()  # no events, no answers, but the TCP connection stays open
    try:
        bot.wait_log("no event or heartbeat from the puppet service", seconds=20)
    finally:
        gw.thaw()
    bot.wait_log(CONNECTED, times=connects + 1, seconds=30)
    bot.wait_log("wechaty: logged in as", times=connects + 1, seconds=15)
    since = gw.seq()
    time.sleep(1.5)  # the replayed ding arrives now: already handled, so no second dong
    assert gw.sent(since, roomId=ROOM) == []
    gw.post("/config", {"replayOnConnect": 0})
    ding_once(stack)


def test_history_replayed_to_a_restarted_bot_is_recorded_but_not_answered(stack: Any) -> None:
    gw, bot = stack.gateway, stack.bot
    since = gw.seq()
    old_id = gw.say(ROOM, "contact_bob", "ding", ageMs=600_000)  # ten minutes old
    time.sleep(0.8)
    assert gw.sent(since, roomId=ROOM) == []
    gw.post("/config", {"replayOnConnect": 1})
    assert bot.stop() == 0  # SIGTERM: a clean shutdown
    bot.start()  # the service replays the old ding to the new process
    time.sleep(1.5)
    assert gw.sent(since, roomId=ROOM) == []
    gw.post("/config", {"replayOnConnect": 0})
    ding_once(stack)
    assert bot.stop() == 0  # flushes the event log
    db = sqlite3.connect(stack.workdir / "bot.db")
    try:
        runs = db.execute("SELECT COUNT(*) FROM event_log WHERE message_id = ?", (old_id,)).fetchone()[0]
    finally:
        db.close()
    # Seen by both processes, logged once (the event log keeps one row per group and message id:
    # a replay is the same message) and answered by neither.
    assert runs == 1


def test_the_token_never_reaches_the_logs(stack: Any) -> None:
    stack.assert_token_never_logged()
