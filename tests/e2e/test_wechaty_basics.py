"""End to end over real gRPC: a `qunbot run` process with `adapter: wechaty` against the
offline puppet-service gateway. Welcome on join, keyword replies (group, private, after an
@-mention with U+2005), the own-message echo, and old messages recorded but not answered."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.conftest import BOT_NAME

pytestmark = pytest.mark.e2e

DEV = "room_dev@chatroom"  # owner: Alice; the bot is a member
FUN = "room_fun@chatroom"  # owner: the bot


@pytest.fixture(scope="module")
def stack(functional_stack: Any) -> Any:
    return functional_stack


def test_keyword_reply_in_a_group_once_and_the_echo_of_its_own_reply_is_ignored(stack: Any) -> None:
    gw = stack.gateway
    since = gw.seq()
    gw.say(DEV, "contact_bob", "ding")
    replies = gw.wait_sent(since, roomId=DEV)
    assert [r["text"] for r in replies] == ["dong"]
    # The gateway echoes the bot's own messages back (as real puppets do); "dong" is not a
    # keyword, but the echo must not be treated as a member's message either: wait, then
    # make sure nothing else was sent.
    time.sleep(1.0)
    assert [r["text"] for r in gw.sent(since, roomId=DEV)] == ["dong"]


def test_a_reply_that_mentions_the_sender(stack: Any) -> None:
    gw = stack.gateway
    since = gw.seq()
    gw.say(DEV, "contact_alice", "早上好呀")
    [reply] = gw.wait_sent(since, roomId=DEV)
    assert reply["mentionIds"] == ["contact_alice"]
    assert reply["text"].startswith("@Alice\u2005") and "Alice 早上好" in reply["text"]


def test_welcome_on_join_mentions_the_newcomer(stack: Any) -> None:
    gw = stack.gateway
    since = gw.seq()
    gw.join(DEV, ["contact_dave"], inviter="contact_alice")
    [welcome] = gw.wait_sent(since, roomId=DEV)
    assert welcome["mentionIds"] == ["contact_dave"]
    assert "@Dave" in welcome["text"] and "Dev Team" in welcome["text"]
    assert welcome["text"].count("@Dave") == 1  # the adapter does not add a second @name


def test_a_private_message_gets_a_private_reply(stack: Any) -> None:
    gw = stack.gateway
    since = gw.seq()
    gw.private("contact_carol", "你好")
    [reply] = gw.wait_sent(since, toId="contact_carol")
    assert reply["text"] == "你好，我是群助手" and reply["roomId"] is None


def test_a_command_after_an_at_mention_with_u2005(stack: Any) -> None:
    gw = stack.gateway
    since = gw.seq()
    gw.say(FUN, "contact_alice", f"@{BOT_NAME}\u2005帮助", mentionIds=["bot_self"])
    [help_text] = gw.wait_sent(since, roomId=FUN)
    assert help_text["text"]  # the help menu: the bot understood the command behind its @name


def test_an_old_message_is_recorded_but_not_answered(stack: Any) -> None:
    gw = stack.gateway
    since = gw.seq()
    gw.say(DEV, "contact_bob", "ding", ageMs=600_000)  # ten minutes old: history, not a request
    gw.say(DEV, "contact_bob", "早上好")  # a fresh message right after it is answered
    replies = gw.wait_sent(since, roomId=DEV)
    time.sleep(0.5)
    assert [r["text"] for r in gw.sent(since, roomId=DEV)] == [replies[0]["text"]]
    assert "早上好" in replies[0]["text"]


def test_the_token_never_reaches_the_logs(stack: Any) -> None:
    stack.assert_token_never_logged()
