"""The wechaty adapter's Platform and inbound mapping, over a fake puppet client."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import datetime
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.adapters.wechaty import platform as platform_module
from bot.adapters.wechaty.connection import PuppetConnection
from bot.adapters.wechaty.platform import WechatyPlatform
from bot.config.models import WechatySettings
from bot.core.clock import VirtualClock
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
    Quote,
)
from bot.core.platform import Capability, Platform, PlatformError
from tests.adapters.wechaty_fakes import FakePuppet, FakeWorld, FriendshipType, MessageType, text_message

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=TZ)
SETTINGS = WechatySettings(send_wait=0.05, rpc_timeout=1)


@dataclasses.dataclass
class LinkPayload:  # the shape of wechaty_puppet.UrlLinkPayload
    url: str
    title: str
    thumbnailUrl: str  # the library's field name
    description: str


class Setup:
    def __init__(self, world: FakeWorld, platform: WechatyPlatform, puppet: FakePuppet) -> None:
        self.world = world
        self.platform = platform
        self.puppet = puppet
        self.events: list[Event] = []

    async def feed(self, name: str, payload: Any) -> Event:
        before = len(self.events)
        await self.platform.on_puppet_event(name, payload, self.puppet)
        assert len(self.events) == before + 1, f"{name} produced no event"
        return self.events[-1]


def make(world: FakeWorld, settings: WechatySettings = SETTINGS, *, connected: bool = True) -> Setup:
    puppet = FakePuppet(world)
    conn = PuppetConnection(settings, "127.0.0.1:1", lambda: puppet)
    platform = WechatyPlatform(
        conn,
        settings,
        VirtualClock(NOW, TZ),
        Member("wxid_cfg", "配置名"),
        url_link_payload=lambda url, title, desc, thumb: LinkPayload(url, title, thumb, desc),
    )
    if connected:
        conn.puppet = puppet
        conn.logged_in.set()
    setup = Setup(world, platform, puppet)

    async def record(event: Event) -> None:
        setup.events.append(event)

    platform.attach(record)
    return setup


@pytest.fixture
async def s() -> AsyncIterator[Setup]:
    setup = make(FakeWorld())
    await setup.platform.on_puppet_event("login", SimpleNamespace(contact_id="bot"), setup.puppet)
    yield setup
    await setup.platform.aclose()


@pytest.fixture(autouse=True)
def _no_verify_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform_module, "VERIFY_PAUSE", 0.0)


async def test_login_sets_the_bot_identity() -> None:
    setup = make(FakeWorld())
    assert setup.platform.bot == Member("wxid_cfg", "配置名")  # until the account logs in
    await setup.platform.on_puppet_event("login", SimpleNamespace(contact_id="bot"), setup.puppet)
    assert setup.platform.bot == Member("bot", "小助手")
    assert Capability.REMOVE in setup.platform.capabilities and Capability.INVITE in setup.platform.capabilities
    assert isinstance(setup.platform, Platform)  # the core's interface, method for method


async def test_say_adds_only_missing_mentions_and_sends_the_ids(s: Setup) -> None:
    result = await s.platform.say("g1@chatroom", "@Alice\u2005欢迎", ("alice",))
    assert result.ok and result.message_id == "out-1"
    await s.platform.say("g1@chatroom", "欢迎新朋友", ("bob",))
    await s.platform.say("g1@chatroom", "大家好")
    assert s.world.sent == [
        ("g1@chatroom", "@Alice\u2005欢迎", ["alice"]),
        ("g1@chatroom", "@Bob\u2005欢迎新朋友", ["bob"]),
        ("g1@chatroom", "大家好", None),
    ]
    await s.platform.send_private("alice", "你好")
    assert s.world.sent[-1] == ("alice", "你好", None)


async def test_remove_member_checks_the_member_is_gone(s: Setup) -> None:
    await s.platform.remove_member("g1@chatroom", "bob", "广告")
    assert "bob" not in s.world.rooms["g1@chatroom"]["members"]
    s.world.delete_works = False  # e.g. a puppet that ignores removals by a non-owner
    with pytest.raises(PlatformError, match="still a member") as err:
        await s.platform.remove_member("g1@chatroom", "alice", "广告")
    assert not err.value.rate_limited


async def test_removing_someone_not_in_the_group_is_a_permanent_refusal_without_a_call(s: Setup) -> None:
    with pytest.raises(PlatformError, match="carol is not in the group") as err:
        await s.platform.remove_member("g1@chatroom", "carol", "广告")
    assert err.value.permanent and not err.value.rate_limited
    assert not [c for c in s.world.calls if c[0] == "room_delete"]


async def test_invite_tells_an_added_member_from_a_pending_invitation(
    s: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="qunbot.wechaty")
    await s.platform.invite("g1@chatroom", "carol")
    assert "carol" in s.world.rooms["g1@chatroom"]["members"]
    assert "added carol to g1@chatroom" in caplog.text
    s.world.add_mode = "invite"  # a group above 40 members
    await s.platform.invite("g2@chatroom", "bob")
    assert "bob" not in s.world.rooms["g2@chatroom"]["members"]
    assert "invitation to g2@chatroom sent to bob" in caplog.text
    calls = len([c for c in s.world.calls if c[0] == "room_add"])
    await s.platform.invite("g1@chatroom", "alice")  # already a member: no call
    assert len([c for c in s.world.calls if c[0] == "room_add"]) == calls


async def test_too_frequent_becomes_a_rate_limited_platform_error(s: Setup) -> None:
    s.world.fail["message_send_text"] = RuntimeError("send message too frequent, try later")
    with pytest.raises(PlatformError) as err:
        await s.platform.say("g1@chatroom", "hi")
    assert err.value.rate_limited and "say in g1@chatroom" in str(err.value)
    s.world.fail["room_delete"] = RuntimeError("room not found")
    with pytest.raises(PlatformError) as err:
        await s.platform.remove_member("g1@chatroom", "bob")
    assert not err.value.rate_limited


async def test_calls_while_disconnected_wait_briefly_then_fail() -> None:
    setup = make(FakeWorld(), connected=False)
    assert setup.platform.connected is False  # what account health reads
    with pytest.raises(PlatformError, match="not connected"):
        await setup.platform.say("g1@chatroom", "hi")
    conn = setup.platform.connection

    async def reconnect_soon() -> None:
        await asyncio.sleep(0.01)
        conn.puppet = setup.puppet
        conn.logged_in.set()

    task = asyncio.create_task(reconnect_soon())
    result = await setup.platform.send_private("alice", "hi")  # waits for the connection
    await task
    assert result.ok and setup.platform.connected is True


async def test_group_info_reports_owner_admins_and_removal_rights(s: Setup) -> None:
    g1 = await s.platform.group_info("g1@chatroom")
    assert g1 is not None and g1.owner_id == "bot" and g1.bot_can_remove is True and g1.member_count == 3
    g2 = await s.platform.group_info("g2@chatroom")
    assert g2 is not None and g2.admin_ids == frozenset({"bot"}) and g2.bot_can_remove is False
    g3 = await s.platform.group_info("g3@chatroom")
    assert g3 is not None and g3.owner_id is None and g3.bot_can_remove is None  # unknown: fail closed
    lenient = make(s.world, WechatySettings(admins_can_remove=True))
    await lenient.platform.on_puppet_event("login", SimpleNamespace(contact_id="bot"), lenient.puppet)
    g2_admin = await lenient.platform.group_info("g2@chatroom")
    assert g2_admin is not None and g2_admin.bot_can_remove is True


async def test_members_and_groups(s: Setup) -> None:
    assert await s.platform.members("g1@chatroom") == [
        Member("bot", "小助手"),
        Member("alice", "Alice"),
        Member("bob", "Bob"),
    ]
    s.world.rooms["x@chatroom"] = {"topic": "别人的群", "owner": "owner", "admins": [], "members": ["owner"]}
    ids = sorted(g.id for g in await s.platform.groups())
    assert ids == ["g1@chatroom", "g2@chatroom", "g3@chatroom"]


async def test_probe_at_ready_finds_where_the_bot_may_remove(s: Setup, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="qunbot.wechaty")
    result = await s.platform.probe_groups(s.puppet)
    assert result.can_remove == {"g1@chatroom": True, "g2@chatroom": False, "g3@chatroom": None}
    assert "may remove members in: 宝妈群 (g1@chatroom)" in caplog.text


async def test_group_text_with_a_mention_of_the_bot(s: Setup) -> None:
    ts = int(NOW.timestamp() * 1000) - 5000
    text_message(s.world, "m1", "alice", "@小助手\u2005签到", room="g1@chatroom", mentions=("bot",), timestamp=ts)
    event = await s.feed("message", SimpleNamespace(message_id="m1"))
    assert isinstance(event, GroupMessage)
    assert event.group_id == "g1@chatroom" and event.sender == Member("alice", "Alice")
    assert event.text == "@小助手\u2005签到" and event.kind is MessageKind.TEXT
    assert event.mentions == ("bot",) and event.mentions_bot and event.message_id == "m1"
    assert event.group_topic == "宝妈群"
    assert event.at == datetime.fromtimestamp(ts / 1000, TZ)  # the platform's time: the stale guard uses it
    text_message(s.world, "m2", "bob", "@小助手 在吗", room="g1@chatroom")  # no mention ids from the puppet
    assert (await s.feed("message", SimpleNamespace(message_id="m2"))).mentions_bot  # type: ignore[attr-defined]
    text_message(s.world, "m3", "bob", "看这个 https://x.cn/a", room="g1@chatroom")
    plain = await s.feed("message", SimpleNamespace(message_id="m3"))
    assert isinstance(plain, GroupMessage) and not plain.mentions_bot and plain.url == "https://x.cn/a"


async def test_a_quote_reply_becomes_the_reply_and_a_quote(s: Setup) -> None:
    quoted = "「Alice：兼职日结 https://x.cn/a」\n- - - - - - - - - - - - - - -\n广告"
    text_message(s.world, "q1", "bob", quoted, room="g1@chatroom")
    event = await s.feed("message", SimpleNamespace(message_id="q1"))
    assert isinstance(event, GroupMessage)
    assert event.text == "广告" and event.url is None  # the quoted link is not the reply's
    assert event.quote == Quote(name="Alice", text="兼职日结 https://x.cn/a")


async def test_private_messages_and_other_kinds(s: Setup) -> None:
    text_message(s.world, "p1", "alice", "进群")
    private = await s.feed("message", SimpleNamespace(message_id="p1"))
    assert isinstance(private, PrivateMessage) and private.sender.id == "alice" and private.text == "进群"
    assert private.at == NOW  # no timestamp in the payload: now

    text_message(s.world, "u1", "bob", "<appmsg>…</appmsg>", room="g1@chatroom", kind=MessageType.MESSAGE_TYPE_URL)
    s.world.links["u1"] = SimpleNamespace(url="http://ad.example/x", title="点击领取", description="免费送")
    link = await s.feed("message", SimpleNamespace(message_id="u1"))
    assert isinstance(link, GroupMessage) and link.kind is MessageKind.URL
    assert link.url == "http://ad.example/x" and link.text == "点击领取\n免费送"

    text_message(s.world, "i1", "bob", "<msg><img/></msg>", room="g1@chatroom", kind=MessageType.MESSAGE_TYPE_IMAGE)
    image = await s.feed("message", SimpleNamespace(message_id="i1"))
    assert image.kind is MessageKind.IMAGE and image.text == ""  # type: ignore[attr-defined]
    text_message(
        s.world,
        "f1",
        "bob",
        "<xml/>",
        room="g1@chatroom",
        kind=MessageType.MESSAGE_TYPE_ATTACHMENT,
        filename="报价.pdf",
    )
    file = await s.feed("message", SimpleNamespace(message_id="f1"))
    assert file.kind is MessageKind.FILE and file.text == "报价.pdf"  # type: ignore[attr-defined]
    text_message(s.world, "mp", "bob", "<xml/>", room="g1@chatroom", kind=MessageType.MESSAGE_TYPE_MINI_PROGRAM)
    mini = await s.feed("message", SimpleNamespace(message_id="mp"))
    assert mini.kind is MessageKind.MINI_PROGRAM and mini.text == "小程序标题"  # type: ignore[attr-defined]


async def test_joins_leaves_topics_and_friend_requests(s: Setup) -> None:
    ts = int(NOW.timestamp() * 1000)
    joined = await s.feed(
        "room-join", SimpleNamespace(invited_ids=["carol"], inviter_id="alice", room_id="g1@chatroom", timestamp=ts)
    )
    assert isinstance(joined, MembersJoined)
    assert joined.members == (Member("carol", "Carol"),) and joined.inviter == Member("alice", "Alice")
    assert joined.group_topic == "宝妈群" and joined.at == NOW

    removed = await s.feed(
        "room-leave", SimpleNamespace(removed_ids=["bob"], remover_id="bot", room_id="g1@chatroom", timestamp=ts)
    )
    assert isinstance(removed, MembersLeft) and removed.removed_by == Member("bot", "小助手")
    left = await s.feed(
        "room-leave", SimpleNamespace(removed_ids=["alice"], remover_id="alice", room_id="g1@chatroom", timestamp=ts)
    )
    assert isinstance(left, MembersLeft) and left.removed_by is None and left.members == (Member("alice", "Alice"),)

    s.world.rooms["g1@chatroom"]["topic"] = "新群名"
    renamed = await s.feed(
        "room-topic",
        SimpleNamespace(
            changer_id="owner", new_topic="新群名", old_topic="宝妈群", room_id="g1@chatroom", timestamp=ts
        ),
    )
    assert isinstance(renamed, GroupRenamed) and renamed.changed_by == Member("owner", "群主")
    assert (renamed.old_topic, renamed.new_topic) == ("宝妈群", "新群名")
    text_message(s.world, "m9", "carol", "hi", room="g1@chatroom")
    assert (await s.feed("message", SimpleNamespace(message_id="m9"))).group_topic == "新群名"  # type: ignore[attr-defined]

    s.world.friendships["f1"] = SimpleNamespace(
        id="f1", contact_id="carol", hello="我想进群", type=FriendshipType.FRIENDSHIP_TYPE_RECEIVE
    )
    request = await s.feed("friendship", SimpleNamespace(friendship_id="f1"))
    assert isinstance(request, FriendRequest)
    assert request.contact == Member("carol", "Carol") and request.hello == "我想进群" and request.request_id == "f1"
    s.world.friendships["f2"] = SimpleNamespace(
        id="f2", contact_id="carol", hello="", type=FriendshipType.FRIENDSHIP_TYPE_CONFIRM
    )
    before = len(s.events)
    await s.platform.on_puppet_event("friendship", SimpleNamespace(friendship_id="f2"), s.puppet)
    assert len(s.events) == before  # a confirmation is not a request
    await s.platform.accept_friend("f1")
    assert ("friendship_accept", ("f1",)) in s.world.calls


async def test_events_wait_until_the_bot_is_attached() -> None:
    world = FakeWorld()
    puppet = FakePuppet(world)
    conn = PuppetConnection(SETTINGS, "127.0.0.1:1", lambda: puppet)
    platform = WechatyPlatform(conn, SETTINGS, VirtualClock(NOW, TZ), Member("bot", "小助手"))
    text_message(world, "m1", "alice", "hi", room="g1@chatroom")
    pending = asyncio.create_task(platform.on_puppet_event("message", SimpleNamespace(message_id="m1"), puppet))
    await asyncio.sleep(0.02)
    assert not pending.done()
    got: list[Event] = []

    async def handler(event: Event) -> None:
        got.append(event)

    platform.attach(handler)
    await asyncio.wait_for(pending, 1)
    assert len(got) == 1 and isinstance(got[0], GroupMessage)


async def test_link_cards_are_built_without_fetching_and_qr_codes_name_the_group(s: Setup) -> None:
    await s.platform.send_url_link("g1@chatroom", "https://example.com/a", "标题", "说明")
    conversation, body, _ = s.world.sent[-1]
    assert conversation == "g1@chatroom"
    assert json.loads(body) == {
        "url": "https://example.com/a",
        "title": "标题",
        "description": "说明",
        "thumbnailUrl": "",
    }
    assert await s.platform.room_qr_code("g2@chatroom") == "qr://g2@chatroom"


async def test_status_events_produce_no_qunbot_event(s: Setup, caplog: pytest.LogCaptureFixture) -> None:
    for name, payload in [
        ("logout", SimpleNamespace(contact_id="bot", data="kicked")),
        ("scan", SimpleNamespace(status=2, qrcode="abc")),
        ("error", SimpleNamespace(data="boom")),
        ("room-invite", SimpleNamespace(room_invitation_id="inv1")),
    ]:
        await s.platform.on_puppet_event(name, payload, s.puppet)
    assert s.events == []
    assert "wechaty.js.org/qrcode/abc" in caplog.text and "reported an error: boom" in caplog.text


# --- images (what the anti-spam QR check fetches) -----------------------------------------------


async def test_fetch_image_reads_an_inline_file_box_and_asks_for_the_hd_image(s: Setup) -> None:
    import base64

    png = b"\x89PNG\r\n\x1a\n" + bytes(range(200))
    s.world.images["img-1"] = SimpleNamespace(name="a.png", base64=base64.b64encode(png).decode())
    s.world.images["img-2"] = SimpleNamespace(name="b.png", base64=b"data:image/png;base64," + base64.b64encode(png))
    assert await s.platform.fetch_image("img-1", 10_000) == png
    assert await s.platform.fetch_image("img-2", 10_000) == png
    assert ("message_image", ("img-1", 2)) in s.world.calls
    with pytest.raises(PlatformError, match="larger than 100 bytes"):
        await s.platform.fetch_image("img-1", 100)


async def test_fetch_image_downloads_a_file_box_by_url_up_to_the_cap(s: Setup) -> None:
    body = bytes(range(256)) * 40  # 10,240 bytes

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
            + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        s.world.images["img-3"] = SimpleNamespace(name="c.png", base64=None, remoteUrl=f"http://127.0.0.1:{port}/c.png")
        assert await s.platform.fetch_image("img-3", 20_000) == body
        with pytest.raises(PlatformError, match="larger than 5000 bytes"):
            await s.platform.fetch_image("img-3", 5000)


async def test_fetch_image_failures_are_platform_errors(s: Setup) -> None:
    s.world.images["img-4"] = SimpleNamespace(name="d.png", base64="", remoteUrl="")
    with pytest.raises(PlatformError, match="no image data"):
        await s.platform.fetch_image("img-4", 10_000)
    s.world.fail["message_image"] = RuntimeError("message not found")
    with pytest.raises(PlatformError, match="read image img-4"):
        await s.platform.fetch_image("img-4", 10_000)


async def test_member_lists_are_read_when_the_account_is_ready(s: Setup) -> None:
    # The core's reader over the Wechaty platform, as the runner wires it (`on_ready`).
    from bot.core.events import MemberList
    from bot.core.members import MemberLists

    recorded: list[Event] = []
    lists = MemberLists(s.platform, s.platform.clock, recorded.append)
    s.platform.on_ready = lists.refresh
    await s.platform.on_puppet_event("ready", SimpleNamespace(), s.puppet)
    await asyncio.gather(*s.platform._tasks)
    by_group = {e.group_id: [m.id for m in e.members] for e in recorded if isinstance(e, MemberList)}
    assert by_group == {"g1@chatroom": ["alice", "bob"], "g2@chatroom": ["owner", "alice"], "g3@chatroom": ["carol"]}
    # Once per log-in session: another "ready" of the same session reads nothing.
    await s.platform.on_puppet_event("ready", SimpleNamespace(), s.puppet)
    await asyncio.gather(*s.platform._tasks)
    assert len(recorded) == 3
    s.platform.connection.sessions += 1  # a new log-in
    await s.platform.on_puppet_event("ready", SimpleNamespace(), s.puppet)
    await asyncio.gather(*s.platform._tasks)
    assert len(recorded) == 6
