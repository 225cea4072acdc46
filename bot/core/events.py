"""Platform-neutral events.

Adapters convert platform objects into these once, at the edge; nothing past the adapter
sees a platform object. All events are frozen and carry timezone-aware timestamps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from enum import StrEnum


class MessageKind(StrEnum):
    TEXT = "text"
    URL = "url"
    IMAGE = "image"
    MINI_PROGRAM = "mini_program"
    CONTACT_CARD = "contact_card"
    FILE = "file"
    VIDEO = "video"
    VOICE = "voice"
    EMOTICON = "emoticon"
    SYSTEM = "system"
    OTHER = "other"

    @classmethod
    def parse(cls, value: str | None) -> MessageKind:
        """Lenient: aliases accepted, anything unknown becomes OTHER (never an error)."""
        if not value:
            return cls.TEXT
        key = value.strip().lower().replace("-", "_")
        key = _KIND_ALIASES.get(key, key)
        try:
            return cls(key)
        except ValueError:
            return cls.OTHER


_KIND_ALIASES = {
    "link": "url",
    "miniprogram": "mini_program",
    "mini": "mini_program",
    "card": "contact_card",
    "contact": "contact_card",
    "attachment": "file",
    "audio": "voice",
    "sticker": "emoticon",
    "emoji": "emoticon",
    "picture": "image",
    "photo": "image",
}


@dataclass(frozen=True, slots=True)
class Member:
    id: str
    name: str = ""

    @property
    def display(self) -> str:
        return self.name or self.id


@dataclass(frozen=True, slots=True)
class Quote:
    """The message a reply quotes, as the platform shows it. WeChat gives only the quoted
    sender's display name and (possibly shortened) text, no ids; platforms that know them
    fill `sender_id` and `message_id`."""

    name: str
    text: str
    sender_id: str | None = None
    message_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of every inbound event. `at` is when the platform says it happened."""

    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupMessage(Event):
    group_id: str
    sender: Member
    text: str = ""
    kind: MessageKind = MessageKind.TEXT
    url: str | None = None
    mentions: tuple[str, ...] = ()
    mentions_bot: bool = False
    message_id: str | None = None
    group_topic: str = ""
    quote: Quote | None = None  # the message this one replies to, when it quotes one

    @property
    def session_key(self) -> tuple[str, str]:
        """(group, member): shared by check-ins, rate limits and conversations."""
        return (self.group_id, self.sender.id)


@dataclass(frozen=True, slots=True, kw_only=True)
class PrivateMessage(Event):
    sender: Member
    text: str = ""
    kind: MessageKind = MessageKind.TEXT
    url: str | None = None
    message_id: str | None = None

    @property
    def session_key(self) -> tuple[str, str]:
        return ("", self.sender.id)


@dataclass(frozen=True, slots=True, kw_only=True)
class MembersJoined(Event):
    group_id: str
    members: tuple[Member, ...]
    inviter: Member | None = None
    group_topic: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class MembersLeft(Event):
    group_id: str
    members: tuple[Member, ...]
    # Set when someone removed them; None when they left on their own.
    removed_by: Member | None = None
    group_topic: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupRenamed(Event):
    group_id: str
    old_topic: str
    new_topic: str
    changed_by: Member | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FriendRequest(Event):
    contact: Member
    hello: str = ""
    request_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class BotJoinedGroup(Event):
    """The bot itself was added to a group (derived by the core from MembersJoined)."""

    group_id: str
    inviter: Member | None = None
    group_topic: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class BotLeftGroup(Event):
    """The bot was removed from (or left) a group."""

    group_id: str
    removed_by: Member | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MemberList(Event):
    """Who is in a group, as the platform listed them at `at` (read at start-up, when the bot
    joins a group, and hourly). For the record only: plugins never see it. The recorder gives
    every listed member without an open stay one of unknown join time, and closes the stays
    of members who are gone without a leave event (see `bot.storage.recorder`)."""

    group_id: str
    members: tuple[Member, ...]
    group_topic: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Tick(Event):
    """A scheduled job fired; `job_id` is the stable, namespaced id (e.g. ``broadcast:morning``)."""

    job_id: str
    payload: dict[str, object] = field(default_factory=dict, hash=False)


GroupEvent = GroupMessage | MembersJoined | MembersLeft | GroupRenamed | BotJoinedGroup | BotLeftGroup


def group_of(event: Event) -> str | None:
    """The group an event belongs to, or None for private/global events."""
    return getattr(event, "group_id", None)


def actor_of(event: Event) -> Member | None:
    """Who caused the event (the sender, the first joiner, the requester)."""
    if isinstance(event, (GroupMessage, PrivateMessage)):
        return event.sender
    if isinstance(event, FriendRequest):
        return event.contact
    if isinstance(event, (MembersJoined, MembersLeft)) and event.members:
        return event.members[0]
    return None


# What a database cannot store in text: NUL (PostgreSQL refuses it) and lone UTF-16
# surrogates (not encodable as UTF-8; a nickname cut in the middle of an emoji has one).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _unstorable(value: str) -> bool:
    # A NUL search and an encode are C loops; a regex search costs several times more.
    if "\x00" in value:
        return True
    try:
        value.encode()
    except UnicodeEncodeError:
        return True
    return False


def _storable_text(value: str) -> str:
    return _UNSTORABLE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", value)


def _storable_value(value: object) -> object:
    if isinstance(value, str):
        return _storable_text(value) if _unstorable(value) else value
    if isinstance(value, Member):
        name, id_ = _storable_value(value.name), _storable_value(value.id)
        return value if (name is value.name and id_ is value.id) else Member(id=id_, name=name)  # type: ignore[arg-type]
    if isinstance(value, tuple):
        items = tuple(_storable_value(v) for v in value)
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    return value


def storable(event: Event) -> Event:
    """The event with NUL removed from, and lone surrogates replaced in, every id, name,
    topic and text; the event itself when there was nothing to clean (nearly always).
    Called once, where events enter the bot (the dispatcher), so that storage and plugins
    never see a value the database would refuse."""
    if isinstance(event, GroupMessage):  # the hot path: its strings checked directly
        sender = event.sender
        if not _unstorable(
            f"{event.text}{sender.id}{sender.name}{event.group_id}{event.group_topic}"
            f"{event.message_id or ''}{''.join(event.mentions)}"
        ):
            return event
    changes = {}
    for f in fields(event):
        value = getattr(event, f.name)
        clean = _storable_value(value)
        if clean is not value:
            changes[f.name] = clean
    return replace(event, **changes) if changes else event
