"""The one narrow action interface the core defines and every adapter implements.

Plugins never call it for sends directly: sends go through the outbox (pacing, caps,
splitting). Reads (member lists, roles) may be called directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

from bot.core.events import Member


class Capability(StrEnum):
    REMOVE = "remove"  # room.delete works at all on this platform
    INVITE = "invite"
    FRIEND_REQUESTS = "friend_requests"
    IMAGES = "images"
    FILES = "files"


@dataclass(frozen=True, slots=True)
class GroupInfo:
    id: str
    topic: str = ""
    owner_id: str | None = None
    admin_ids: frozenset[str] = frozenset()
    member_count: int = 0
    # Whether the bot account may remove members here: True / False, or None when unknown.
    # Destructive actions fail closed on None.
    bot_can_remove: bool | None = None

    def is_admin(self, member_id: str) -> bool:
        return member_id == self.owner_id or member_id in self.admin_ids


@dataclass(frozen=True, slots=True)
class SendResult:
    ok: bool
    message_id: str | None = None
    error: str | None = None
    # True when the platform said "too frequent": the outbox backs off and may open its breaker.
    rate_limited: bool = False


class PlatformError(Exception):
    """An action the platform refused or failed. `rate_limited` marks "too frequent";
    `permanent` marks a refusal that trying again cannot change (removing someone who is not
    in the group): the outbox gives up on it at once instead of retrying."""

    def __init__(self, message: str, *, rate_limited: bool = False, permanent: bool = False) -> None:
        super().__init__(message)
        self.rate_limited = rate_limited
        self.permanent = permanent


@runtime_checkable
class Platform(Protocol):
    """What a bot account can do. Implemented by adapters; faked by tests."""

    @property
    def bot(self) -> Member: ...

    @property
    def capabilities(self) -> frozenset[Capability]: ...

    async def say(self, group_id: str, text: str, mentions: tuple[str, ...] = ()) -> SendResult: ...

    async def send_private(self, contact_id: str, text: str) -> SendResult: ...

    async def remove_member(self, group_id: str, member_id: str, reason: str = "") -> None: ...

    async def invite(self, group_id: str, contact_id: str) -> None: ...

    async def accept_friend(self, request_id: str) -> None: ...

    async def group_info(self, group_id: str) -> GroupInfo | None: ...

    async def members(self, group_id: str) -> list[Member]: ...

    async def groups(self) -> list[GroupInfo]: ...

    async def fetch_image(self, message_id: str, max_bytes: int) -> bytes:
        """The bytes of an image message (what was posted, not a thumbnail where the platform
        offers a choice). Raises PlatformError when the message has no image the platform can
        hand over, or when the image is larger than `max_bytes` (it is not read past that)."""
        ...


@dataclass(slots=True)
class ActionRecord:
    """One thing the bot did, as adapters report it for transcripts and tests (DESIGN §7)."""

    action: str  # say | private | kick | invite | accept_friend
    at: str
    group: str | None = None
    to: str | None = None
    member: str | None = None
    text: str | None = None
    mentions: list[str] = field(default_factory=list)
    reason: str | None = None
    # Several accounts (a scenario's `bots:`): which one acted. None with one account.
    account: str | None = None

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {"at": self.at, "action": self.action}
        if self.action == "say":
            out.update(group=self.group, text=self.text, mentions=list(self.mentions))
        elif self.action == "private":
            out.update(to=self.to, text=self.text)
        elif self.action == "kick":
            out.update(group=self.group, member=self.member, reason=self.reason or "")
        elif self.action == "invite":
            out.update(group=self.group, member=self.member)
        else:
            out.update({k: v for k, v in (("group", self.group), ("member", self.member)) if v})
        if self.account is not None:
            out["account"] = self.account
        return out
