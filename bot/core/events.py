"""Platform-neutral events.

Adapters convert platform objects into these once, at the edge; nothing past the adapter
sees a platform object. All events are frozen and carry timezone-aware timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
