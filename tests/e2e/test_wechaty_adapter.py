"""The adapter in this process against the gateway over real gRPC: every mapping and action
at the level of the core's interface, with python-wechaty's real client underneath."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest

from bot.config.models import WechatyReconnect, WechatySettings
from bot.core.clock import SystemClock
from bot.core.events import (
    Event,
    FriendRequest,
    GroupMessage,
    GroupRenamed,
    Member,
    MembersJoined,
    MembersLeft,
    MessageKind,
    PrivateMessage,
)
from bot.core.platform import PlatformError
from tests.e2e.conftest import MISSING
from tests.e2e.support import ENDPOINT_ENV, TOKEN_ENV, Gateway

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(MISSING is not None, reason=MISSING or "")]

DEV, FUN, OPS = "room_dev@chatroom", "room_fun@chatroom", "room_ops@chatroom"
TOKEN = "adapter-test-token-5f1e"
SETTINGS = WechatySettings(
    heartbeat_interval=1,
    liveness_timeout=3,
    rpc_timeout=5,
    connect_timeout=3,
    send_wait=5,
    reconnect=WechatyReconnect(initial_delay=0.2, max_delay=1),
)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gw = Gateway(tmp_path_factory.mktemp("adapter"), TOKEN).start()
    try:
        yield gw
    finally:
        gw.close()


class Live:
    def __init__(self, gateway: Gateway, platform: Any) -> None:
        self.gw = gateway
        self.platform = platform
        self.events: list[Event] = []
        self._arrived = asyncio.Event()

    async def record(self, event: Event) -> None:
        self.events.append(event)
        self._arrived.set()

    async def next_event(self, kind: type[Event], seconds: float = 10) -> Any:
        async with asyncio.timeout(seconds):
            while True:
                for event in self.events:
                    if isinstance(event, kind):
                        self.events.remove(event)
                        return event
                self._arrived.clear()
                await self._arrived.wait()


@pytest.fixture
async def live(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Live]:
    from bot.adapters.wechaty import library, redact
    from bot.adapters.wechaty.connection import PuppetConnection
    from bot.adapters.wechaty.platform import WechatyPlatform

    monkeypatch.setenv(ENDPOINT_ENV, gateway.endpoint)  # restored after the test
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    redactor = redact.SecretRedactor([TOKEN])
    lib = library.load(gateway.endpoint)
    redact.install(redactor, lib.logger_names, level=logging.WARNING)
    conn = PuppetConnection(
        SETTINGS, gateway.endpoint, lambda: lib.puppet_class(lib.options_class(token=TOKEN)), redact=redactor.redact
    )
    platform = WechatyPlatform(
        conn,
        SETTINGS,
        SystemClock("Asia/Shanghai"),
        Member("cfg", "cfg"),
        redact=redactor.redact,
        url_link_payload=lambda *a: library.url_link_payload(lib, *a),
    )
    state = Live(gateway, platform)
    platform.attach(state.record)
    task = asyncio.create_task(conn.run())
    try:
        async with asyncio.timeout(20):
            await conn.logged_in.wait()
            while platform.bot.id != "bot_self":  # noqa: ASYNC110 - set by the login handler
                await asyncio.sleep(0.02)
        yield state
    finally:
        await conn.close()
        await asyncio.wait_for(task, 10)
        await platform.aclose()


async def test_inbound_messages_of_every_shape(live: Live) -> None:
    gw = live.gw
    message_id = gw.say(DEV, "contact_alice", "@HarnessBot\u2005签到", mentionIds=["bot_self"])
    text = await live.next_event(GroupMessage)
    assert text.message_id == message_id and text.group_id == DEV and text.group_topic == "Dev Team"
    assert text.sender == Member("contact_alice", "Alice") and text.kind is MessageKind.TEXT
    assert text.text == "@HarnessBot\u2005签到" and text.mentions == ("bot_self",) and text.mentions_bot
    assert abs(text.at - live.platform.clock.now()) < timedelta(seconds=30)  # the platform's timestamp

    gw.say(DEV, "contact_bob", "ignored", kind="url", url="http://ad.example/x", title="点击领取", description="免费送")
    link = await live.next_event(GroupMessage)
    assert link.kind is MessageKind.URL and link.url == "http://ad.example/x" and link.text == "点击领取\n免费送"

    gw.say(DEV, "contact_bob", "<img/>", kind="image")
    image = await live.next_event(GroupMessage)
    assert image.kind is MessageKind.IMAGE and image.text == ""

    old = gw.say(DEV, "contact_bob", "old news", ageMs=3_600_000)
    stale = await live.next_event(GroupMessage)
    assert stale.message_id == old and live.platform.clock.now() - stale.at > timedelta(minutes=59)

    gw.private("contact_carol", "进群")
    private = await live.next_event(PrivateMessage)
    assert private.sender == Member("contact_carol", "Carol") and private.text == "进群"


async def test_joins_leaves_topics_and_friend_requests(live: Live) -> None:
    gw = live.gw
    gw.join(OPS, ["contact_dave"], inviter="contact_bob")
    joined = await live.next_event(MembersJoined)
    assert joined.group_id == OPS and joined.members == (Member("contact_dave", "Dave"),)
    assert joined.inviter == Member("contact_bob", "Bob") and joined.group_topic == "Ops"

    gw.post(f"/rooms/{OPS}/leave", {"contactIds": ["contact_dave"]})
    left = await live.next_event(MembersLeft)
    assert left.members == (Member("contact_dave", "Dave"),) and left.removed_by is None

    gw.post(f"/rooms/{OPS}/leave", {"contactIds": ["contact_eve"], "remover": "contact_bob"})
    removed = await live.next_event(MembersLeft)
    assert removed.removed_by == Member("contact_bob", "Bob")

    gw.post(f"/rooms/{OPS}/topic", {"topic": "运维群", "changer": "contact_bob"})
    renamed = await live.next_event(GroupRenamed)
    assert (renamed.old_topic, renamed.new_topic, renamed.changed_by) == ("Ops", "运维群", Member("contact_bob", "Bob"))
    gw.say(OPS, "contact_bob", "hi")
    assert (await live.next_event(GroupMessage)).group_topic == "运维群"  # no stale topic cache

    request = gw.post("/contacts/contact_mallory/friendship", {"hello": "加我"})
    friend = await live.next_event(FriendRequest)
    assert friend.contact == Member("contact_mallory", "Mallory") and friend.hello == "加我"
    since = gw.seq()
    await live.platform.accept_friend(friend.request_id)
    assert gw.actions(since, action="friendship-accept")[0]["friendshipId"] == request["friendshipId"]


async def test_actions_and_reads(live: Live, caplog: pytest.LogCaptureFixture) -> None:
    gw, platform = live.gw, live.platform
    since = gw.seq()
    result = await platform.say(FUN, "欢迎", ("contact_carol",))
    [sent] = gw.sent(since, roomId=FUN)
    assert result.ok and result.message_id == sent["messageId"]
    assert sent["text"] == "@Carol\u2005欢迎" and sent["mentionIds"] == ["contact_carol"]
    await platform.send_private("contact_alice", "私聊")
    assert gw.sent(since, toId="contact_alice")[0]["text"] == "私聊"

    fun = await platform.group_info(FUN)
    dev = await platform.group_info(DEV)
    assert fun is not None and fun.owner_id == "bot_self" and fun.bot_can_remove is True
    assert dev is not None and dev.owner_id == "contact_alice" and dev.bot_can_remove is False
    assert {g.id for g in await platform.groups()} >= {DEV, FUN}
    assert Member("contact_alice", "Alice") in await platform.members(FUN)

    await platform.remove_member(FUN, "contact_carol", "广告")
    assert "contact_carol" not in gw.room(FUN)["memberIds"]
    assert "contact_carol" not in [m.id for m in await platform.members(FUN)]  # read fresh, not cached

    caplog.set_level(logging.INFO, logger="qunbot.wechaty")
    await platform.invite(FUN, "contact_carol")
    assert "contact_carol" in gw.room(FUN)["memberIds"] and "added contact_carol" in caplog.text
    gw.post("/config", {"roomAddMode": "invite"})  # a group above 40 members: an invitation
    try:
        await platform.invite(FUN, "contact_dave")
    finally:
        gw.post("/config", {"roomAddMode": "join"})
    assert "contact_dave" not in gw.room(FUN)["memberIds"] and "invitation to" in caplog.text

    assert await platform.room_qr_code(FUN) == f"mock-qrcode://{FUN}"  # the room id is sent
    since = gw.seq()
    await platform.send_url_link(FUN, "https://example.com/a", "标题", "说明")
    [card] = gw.sent(since, roomId=FUN)
    assert card["kind"] == "url" and card["extra"]["url"] == "https://example.com/a"
    assert card["extra"]["title"] == "标题"


async def test_service_errors_become_platform_errors(live: Live) -> None:
    gw, platform = live.gw, live.platform
    gw.post("/faults", {"rpc": "messageSendText", "message": "send message too frequent", "count": 1})
    with pytest.raises(PlatformError) as limited:
        await platform.say(DEV, "hello")
    assert limited.value.rate_limited
    gw.post("/faults", {"rpc": "roomDel", "message": "permission denied", "count": 1})
    with pytest.raises(PlatformError) as denied:
        await platform.remove_member(DEV, "contact_mallory")
    assert not denied.value.rate_limited and "permission denied" in str(denied.value)
    assert (await platform.say(DEV, "hello")).ok  # one fault each: back to normal


def test_the_library_tried_to_log_the_token_and_it_was_masked(
    gateway: Gateway, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENDPOINT_ENV, gateway.endpoint)
    caplog.set_level(logging.WARNING)
    from bot.adapters.wechaty import library, redact

    lib = library.load(gateway.endpoint)
    redact.install(redact.SecretRedactor([TOKEN]), lib.logger_names)
    lib.puppet_class(lib.options_class(token=TOKEN))  # warns "there are endpoint<…> and token<…>"
    assert "token<***>" in caplog.text and TOKEN not in caplog.text
