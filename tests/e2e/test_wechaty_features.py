"""End to end over real gRPC: the feature plugins through the Wechaty adapter. Check-in,
ad removal (the spammer is gone from the room), keyword invite (the contact is added), and
a relay between two rooms. A test whose plugin is not in the tree yet skips and names it."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.conftest import plugin_missing

pytestmark = pytest.mark.e2e


def needs(plugin: str) -> pytest.MarkDecorator:
    reason = plugin_missing(plugin)
    return pytest.mark.skipif(reason is not None, reason=reason or "")


@pytest.fixture(scope="module")
def stack(functional_stack: Any) -> Any:
    return functional_stack


@needs("checkin")
def test_check_in(stack: Any) -> None:
    gw = stack.gateway
    room = "room_checkin@chatroom"
    since = gw.seq()
    gw.say(room, "contact_bob", "签到")
    [reply] = gw.wait_sent(since, roomId=room)
    assert "签到成功" in reply["text"] and "第1位" in reply["text"]
    assert reply["mentionIds"] == ["contact_bob"]
    since = gw.seq()
    # The other check-in word: the same text from the same member within one second would be
    # dropped by the core as a puppet's double delivery.
    gw.say(room, "contact_bob", "打卡")
    [again] = gw.wait_sent(since, roomId=room)
    assert "已经签到" in again["text"]


@needs("antispam")
def test_an_ad_gets_its_sender_removed_where_the_bot_owns_the_group(stack: Any) -> None:
    gw = stack.gateway
    room = "room_ads@chatroom"
    since = gw.seq()
    gw.say(
        room,
        "contact_mallory",
        "兼职刷单日结，加微信 abc12345 领取福利 http://spam.example/free",
        kind="url",
        url="http://spam.example/free",
        title="兼职刷单日结 加微信领取福利",
    )
    removal = gw.wait_action(since, "room-del", roomId=room)
    assert removal["contactIds"] == ["contact_mallory"]
    assert "contact_mallory" not in gw.room(room)["memberIds"]


@needs("antispam")
def test_no_removal_is_attempted_where_the_bot_may_not_remove(stack: Any) -> None:
    gw = stack.gateway
    room = "room_ads_guest@chatroom"  # owned by Alice: bot_can_remove is False, removal fails closed
    since = gw.seq()
    gw.say(
        room,
        "contact_mallory",
        "兼职刷单日结，加微信 abc12345 领取福利 http://spam.example/free",
        kind="url",
        url="http://spam.example/free",
        title="兼职刷单日结 加微信领取福利",
    )
    time.sleep(1.5)
    assert gw.actions(since, action="room-del") == []
    assert "contact_mallory" in gw.room(room)["memberIds"]


@needs("invite")
def test_a_keyword_in_private_gets_the_contact_added_to_the_group(stack: Any) -> None:
    gw = stack.gateway
    room = "room_join@chatroom"
    since = gw.seq()
    gw.private("contact_grace", "进群")
    added = gw.wait_action(since, "room-add", roomId=room)
    assert added["contactIds"] == ["contact_grace"]
    assert "contact_grace" in gw.room(room)["memberIds"]
    [answer] = gw.wait_sent(since, toId="contact_grace")
    assert "新人群" in answer["text"]


@needs("invite")
def test_a_friend_request_with_the_keyword_is_accepted_and_invited(stack: Any) -> None:
    gw = stack.gateway
    room = "room_join@chatroom"
    since = gw.seq()
    request = gw.post("/contacts/contact_heidi/friendship", {"hello": "进群"})
    accepted = gw.wait_action(since, "friendship-accept")
    assert accepted["friendshipId"] == request["friendshipId"]
    gw.wait_action(since, "room-add", roomId=room)
    assert "contact_heidi" in gw.room(room)["memberIds"]


@needs("relay")
def test_a_relay_between_two_rooms(stack: Any) -> None:
    gw = stack.gateway
    source, target = "room_live@chatroom", "room_hall@chatroom"
    since = gw.seq()
    gw.say(source, "contact_eve", "大家好，今天讲 Wechaty")
    [relayed] = gw.wait_sent(since, roomId=target)
    assert "Eve" in relayed["text"] and "大家好，今天讲 Wechaty" in relayed["text"]
    time.sleep(0.8)
    assert gw.sent(since, roomId=source) == []  # nothing echoed back into the source room
    assert len(gw.sent(since, roomId=target)) == 1  # the bot's own echo in the target is not relayed again


def test_the_token_never_reaches_the_logs(stack: Any) -> None:
    stack.assert_token_never_logged()
