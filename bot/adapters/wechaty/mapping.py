"""Pure conversions between puppet-service payloads and qunbot's platform-neutral values.

Nothing here imports python-wechaty: payloads are read by attribute name (they are the
betterproto messages of wechaty-grpc 0.20), enums by member name, so this module is tested
without the optional extra installed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from bot.core.events import MessageKind, Quote
from bot.core.platform import PlatformError
from bot.core.text import strip_mention

# wechaty-grpc MessageType member name (after python-wechaty's own type mapping) → kind.
_KINDS: dict[str, MessageKind] = {
    "MESSAGE_TYPE_TEXT": MessageKind.TEXT,
    "MESSAGE_TYPE_URL": MessageKind.URL,
    "MESSAGE_TYPE_IMAGE": MessageKind.IMAGE,
    "MESSAGE_TYPE_MINI_PROGRAM": MessageKind.MINI_PROGRAM,
    "MESSAGE_TYPE_CONTACT": MessageKind.CONTACT_CARD,
    "MESSAGE_TYPE_ATTACHMENT": MessageKind.FILE,
    "MESSAGE_TYPE_VIDEO": MessageKind.VIDEO,
    "MESSAGE_TYPE_AUDIO": MessageKind.VOICE,
    "MESSAGE_TYPE_EMOTICON": MessageKind.EMOTICON,
    # A recall notice is something the platform says, not something a member wrote.
    "MESSAGE_TYPE_RECALLED": MessageKind.SYSTEM,
    # Location, chat history, transfer, red envelope, unspecified (group notes, system tips …).
}


def message_kind(message_type: object) -> MessageKind:
    """Kind of a message from its wechaty-grpc `MessageType` (enum member, or its name)."""
    name = getattr(message_type, "name", message_type)
    return _KINDS.get(str(name), MessageKind.OTHER)


# wechaty-grpc FriendshipType: betterproto hands the field over as a plain int (2) or as the
# enum member (FRIENDSHIP_TYPE_RECEIVE), depending on the path; both mean "someone asks".
_FRIENDSHIP_RECEIVE = 2


def is_friend_request(friendship_type: object) -> bool:
    name = getattr(friendship_type, "name", None)
    if name is not None:
        return str(name) == "FRIENDSHIP_TYPE_RECEIVE"
    try:
        # Whatever the payload holds is tried; what int() refuses is caught below.
        return int(friendship_type) == _FRIENDSHIP_RECEIVE  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return str(friendship_type) == "FRIENDSHIP_TYPE_RECEIVE"


# Puppet timestamps come in milliseconds (wechaty-puppet-service 1.x) or seconds (older
# services); anything above this is milliseconds (2286-11-20 in seconds).
_MS_THRESHOLD = 10_000_000_000


def platform_time(timestamp: object, tz: tzinfo, fallback: datetime) -> datetime:
    """The aware datetime of a puppet timestamp (ms or s since the epoch) in `tz`;
    `fallback` when the payload carries none (0, None, garbage)."""
    try:
        # Whatever the payload holds is tried; what float() refuses is caught below.
        value = float(timestamp)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return fallback
    if value <= 0:
        return fallback
    if value > _MS_THRESHOLD:
        value /= 1000.0
    try:
        return datetime.fromtimestamp(value, UTC).astimezone(tz)
    except (OverflowError, OSError, ValueError):
        return fallback


def mentions_bot(text: str, mention_ids: list[str] | tuple[str, ...], bot_id: str, bot_name: str) -> bool:
    """True when the message @-mentions the bot: by id (what the puppet reports) or by name
    followed by the U+2005 WeChat puts after an @name (puppets that leave `mention_ids` empty)."""
    if bot_id and bot_id in mention_ids:
        return True
    return bool(bot_name) and strip_mention(text, bot_name) != text


def with_mentions(text: str, names: list[tuple[str, str]]) -> str:
    """`text` with an "@name" + U+2005 in front for each mentioned (id, name) whose @name it
    does not already contain. The core's templates usually write the @names themselves
    (`ctx.reply(mention=True)`, welcome's `{members}`); python-wechaty's `Room.say` would add
    them a second time, so the adapter only adds the missing ones."""
    missing = [name for _id, name in names if name and f"@{name}" not in text]
    if not missing:
        return text
    return "".join(f"@{name}\u2005" for name in missing) + text


# WeChat sends a reply that quotes a message as one text: the quoted sender's name and text
# in 「」, a line of spaced dashes, then the reply ("「Alice：原文」\n- - - - …\n广告").
_QUOTE = re.compile(
    r"\A「(?P<name>[^：:\n」]{1,80})[：:](?P<text>.*)」[ \t]*\r?\n[ \t]*-(?:[ \t]*-){5,}[ \t]*\r?\n(?P<reply>.*)\Z",
    re.DOTALL,
)


def split_quote(text: str) -> tuple[str, Quote | None]:
    """(the reply, the quoted message) of a WeChat quote-reply; (text, None) for any other text."""
    if not text.startswith("「"):
        return text, None
    found = _QUOTE.match(text)
    if found is None:
        return text, None
    return found.group("reply").strip(), Quote(name=found.group("name").strip(), text=found.group("text").strip())


# --- errors -----------------------------------------------------------------------------------

# How puppets and WeChat word "you are sending too fast" (English and Chinese variants seen in
# puppet error messages), plus gRPC's RESOURCE_EXHAUSTED.
_RATE_LIMITED = re.compile(
    r"too\s*(?:frequent|fast|many|often)|rate[\s_-]*limit|frequency|resource[\s_]*exhausted|\b429\b"
    r"|频繁|太快|过快|次数过多|稍后再试|操作过于",
    re.IGNORECASE,
)


def is_rate_limited(message: str) -> bool:
    return bool(_RATE_LIMITED.search(message or ""))


@dataclass(frozen=True, slots=True)
class ErrorText:
    """What a failed call said, already redacted."""

    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}" if self.message else self.kind


def describe_error(exc: BaseException, redact: Callable[[str], str] = str) -> ErrorText:
    """A short, redacted description of an exception raised by python-wechaty or grpclib.
    GRPCError keeps its status name (RESOURCE_EXHAUSTED is a rate limit)."""
    status = getattr(exc, "status", None)
    message = getattr(exc, "message", None) if status is not None else None
    text = str(message if message is not None else exc)
    if status is not None:
        text = f"{getattr(status, 'name', status)} {text}".strip()
    return ErrorText(type(exc).__name__, redact(text))


def to_platform_error(what: str, exc: BaseException, redact: Callable[[str], str] = str) -> PlatformError:
    """The core's PlatformError for a failed call: a readable, token-free message and
    `rate_limited` when the platform said "too frequent"."""
    if isinstance(exc, PlatformError):
        return exc
    error = describe_error(exc, redact)
    return PlatformError(f"{what} failed: {error}", rate_limited=is_rate_limited(error.message))
