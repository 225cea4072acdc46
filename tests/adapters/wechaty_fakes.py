"""A fake puppet-service client with the same methods as python-wechaty's PuppetService (and
the adapter's additions), over a small in-memory world: what the connection and platform
tests drive instead of a gRPC channel."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from types import SimpleNamespace
from typing import Any


class MessageType(Enum):
    MESSAGE_TYPE_TEXT = 6
    MESSAGE_TYPE_URL = 14
    MESSAGE_TYPE_IMAGE = 5
    MESSAGE_TYPE_MINI_PROGRAM = 10
    MESSAGE_TYPE_ATTACHMENT = 1


class FriendshipType(Enum):
    FRIENDSHIP_TYPE_CONFIRM = 1
    FRIENDSHIP_TYPE_RECEIVE = 2


@dataclass
class FakeWorld:
    self_id: str = "bot"
    contacts: dict[str, str] = field(
        default_factory=lambda: {"bot": "小助手", "alice": "Alice", "bob": "Bob", "carol": "Carol", "owner": "群主"}
    )
    rooms: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            "g1@chatroom": {"topic": "宝妈群", "owner": "bot", "admins": [], "members": ["bot", "alice", "bob"]},
            "g2@chatroom": {
                "topic": "读书群",
                "owner": "owner",
                "admins": ["bot"],
                "members": ["bot", "owner", "alice"],
            },
            "g3@chatroom": {"topic": "", "owner": "", "admins": [], "members": ["bot", "carol"]},
        }
    )
    messages: dict[str, Any] = field(default_factory=dict)
    links: dict[str, Any] = field(default_factory=dict)
    images: dict[str, Any] = field(default_factory=dict)  # message id -> FileBox-like (base64 / remoteUrl)
    friendships: dict[str, Any] = field(default_factory=dict)
    sent: list[tuple[str, str, list[str] | None]] = field(default_factory=list)
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    # room_add behaviour: "join" adds the member, "invite" only records the call, "noop" for deletes too
    add_mode: str = "join"
    delete_works: bool = True
    fail: dict[str, Exception] = field(default_factory=dict)  # method name -> exception to raise once


class FakePuppet:
    """One client = one connection. `listen()` delivers `login` then waits until `end()`."""

    def __init__(
        self,
        world: FakeWorld,
        *,
        answer_ding: bool = True,
        handshake_error: Exception | None = None,
        login: bool = True,
    ) -> None:
        self.world = world
        self.listeners: dict[str, list[Callable[..., None]]] = defaultdict(list)
        self.answer_ding = answer_ding
        self.handshake_error = handshake_error
        self.login = login
        self._end = asyncio.Event()
        self.stream_error: BaseException | None = None
        self.dings = 0
        self.stopped = False
        self.closed = False
        self.listening = asyncio.Event()

    # --- life cycle (what PuppetConnection uses) ---------------------------------------------
    def on(self, name: str, fn: Callable[..., None]) -> None:
        self.listeners[name].append(fn)

    def emit(self, name: str, payload: Any = None) -> None:
        for fn in list(self.listeners[name]):
            fn(payload)

    async def handshake(self) -> None:
        if self.handshake_error is not None:
            raise self.handshake_error

    async def listen(self) -> None:
        self.listening.set()
        if self.login:
            self.emit("login", SimpleNamespace(contact_id=self.world.self_id))
            self.emit("ready", SimpleNamespace(data="ready"))
        await self._end.wait()
        if self.stream_error is not None:
            raise self.stream_error

    def end(self, error: BaseException | None = None) -> None:
        self.stream_error = error
        self._end.set()

    async def ding(self, data: str = "") -> None:
        self.dings += 1
        if self.answer_ding:
            self.emit("dong", SimpleNamespace(data=data))

    async def stop(self) -> None:
        self.stopped = True

    def close_channel(self) -> None:
        self.closed = True
        self.listeners.clear()

    # --- payloads and actions (what WechatyPlatform uses) -------------------------------------
    def _check(self, name: str, *args: Any) -> None:
        self.world.calls.append((name, args))
        error = self.world.fail.pop(name, None)
        if error is not None:
            raise error

    async def message_payload(self, message_id: str) -> Any:
        self._check("message_payload", message_id)
        return self.world.messages[message_id]

    async def message_url(self, message_id: str) -> Any:
        self._check("message_url", message_id)
        return self.world.links[message_id]

    async def message_mini_program(self, message_id: str) -> Any:
        self._check("message_mini_program", message_id)
        return SimpleNamespace(title="小程序标题", description="")

    async def message_image(self, message_id: str, image_type: int = 3) -> Any:
        self._check("message_image", message_id, image_type)
        return self.world.images[message_id]

    async def contact_payload(self, contact_id: str) -> Any:
        self._check("contact_payload", contact_id)
        return SimpleNamespace(id=contact_id, name=self.world.contacts.get(contact_id, ""))

    async def room_payload(self, room_id: str) -> Any:
        self._check("room_payload", room_id)
        room = self.world.rooms.get(room_id)
        if room is None:
            raise RuntimeError(f"room {room_id} not found")
        return SimpleNamespace(
            id=room_id,
            topic=room["topic"],
            owner_id=room["owner"],
            admin_ids=list(room["admins"]),
            member_ids=list(room["members"]),
        )

    async def room_members(self, room_id: str) -> list[str]:
        self._check("room_members", room_id)
        return list(self.world.rooms[room_id]["members"])

    async def room_list(self) -> list[str]:
        self._check("room_list")
        return list(self.world.rooms)

    async def room_add(self, room_id: str, contact_id: str) -> None:
        self._check("room_add", room_id, contact_id)
        if self.world.add_mode == "join":
            self.world.rooms[room_id]["members"].append(contact_id)

    async def room_delete(self, room_id: str, contact_id: str) -> None:
        self._check("room_delete", room_id, contact_id)
        if self.world.delete_works:
            self.world.rooms[room_id]["members"].remove(contact_id)

    async def message_send_text(self, conversation_id: str, message: str, mention_ids: list[str] | None = None) -> str:
        self._check("message_send_text", conversation_id, message, mention_ids)
        self.world.sent.append((conversation_id, message, mention_ids))
        return f"out-{len(self.world.sent)}"

    async def message_send_url(self, conversation_id: str, url: str) -> str:
        self._check("message_send_url", conversation_id, url)
        self.world.sent.append((conversation_id, url, None))
        return f"out-{len(self.world.sent)}"

    async def room_qr_code(self, room_id: str) -> str:
        self._check("room_qr_code", room_id)
        return f"qr://{room_id}"

    async def friendship_payload(self, friendship_id: str) -> Any:
        self._check("friendship_payload", friendship_id)
        return self.world.friendships[friendship_id]

    async def friendship_accept(self, friendship_id: str) -> None:
        self._check("friendship_accept", friendship_id)


def text_message(
    world: FakeWorld,
    message_id: str,
    sender: str,
    text: str,
    *,
    room: str = "",
    mentions: tuple[str, ...] = (),
    timestamp: int = 0,
    kind: MessageType = MessageType.MESSAGE_TYPE_TEXT,
    filename: str = "",
) -> str:
    world.messages[message_id] = SimpleNamespace(
        id=message_id,
        text=text,
        timestamp=timestamp,
        type=kind,
        from_id=sender,
        room_id=room,
        to_id="" if room else world.self_id,
        mention_ids=list(mentions),
        filename=filename,
    )
    return message_id
