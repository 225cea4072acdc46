"""Pure conversions of the wechaty adapter (no python-wechaty needed)."""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime
from enum import Enum
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from bot.adapters.wechaty.connection import Backoff
from bot.adapters.wechaty.mapping import (
    is_friend_request,
    is_rate_limited,
    mentions_bot,
    message_kind,
    platform_time,
    split_quote,
    to_platform_error,
    with_mentions,
)
from bot.adapters.wechaty.platform import removal_right
from bot.adapters.wechaty.redact import SecretRedactor, install
from bot.config.models import WechatyReconnect
from bot.core.events import MessageKind, Quote
from bot.core.platform import PlatformError

SHANGHAI = ZoneInfo("Asia/Shanghai")
FALLBACK = datetime(2026, 1, 1, tzinfo=UTC)


class MessageType(Enum):  # the member names of wechaty-grpc 0.20's enum
    MESSAGE_TYPE_UNSPECIFIED = 0
    MESSAGE_TYPE_ATTACHMENT = 1
    MESSAGE_TYPE_AUDIO = 2
    MESSAGE_TYPE_CONTACT = 3
    MESSAGE_TYPE_EMOTICON = 4
    MESSAGE_TYPE_IMAGE = 5
    MESSAGE_TYPE_TEXT = 6
    MESSAGE_TYPE_VIDEO = 7
    MESSAGE_TYPE_CHAT_HISTORY = 8
    MESSAGE_TYPE_LOCATION = 9
    MESSAGE_TYPE_MINI_PROGRAM = 10
    MESSAGE_TYPE_TRANSFER = 11
    MESSAGE_TYPE_RED_ENVELOPE = 12
    MESSAGE_TYPE_RECALLED = 13
    MESSAGE_TYPE_URL = 14


@pytest.mark.parametrize(
    ("wechaty_type", "kind"),
    [
        (MessageType.MESSAGE_TYPE_TEXT, MessageKind.TEXT),
        (MessageType.MESSAGE_TYPE_URL, MessageKind.URL),
        (MessageType.MESSAGE_TYPE_IMAGE, MessageKind.IMAGE),
        (MessageType.MESSAGE_TYPE_MINI_PROGRAM, MessageKind.MINI_PROGRAM),
        (MessageType.MESSAGE_TYPE_CONTACT, MessageKind.CONTACT_CARD),
        (MessageType.MESSAGE_TYPE_ATTACHMENT, MessageKind.FILE),
        (MessageType.MESSAGE_TYPE_VIDEO, MessageKind.VIDEO),
        (MessageType.MESSAGE_TYPE_AUDIO, MessageKind.VOICE),
        (MessageType.MESSAGE_TYPE_EMOTICON, MessageKind.EMOTICON),
        (MessageType.MESSAGE_TYPE_RECALLED, MessageKind.SYSTEM),
        (MessageType.MESSAGE_TYPE_LOCATION, MessageKind.OTHER),
        (MessageType.MESSAGE_TYPE_RED_ENVELOPE, MessageKind.OTHER),
        (MessageType.MESSAGE_TYPE_UNSPECIFIED, MessageKind.OTHER),
        ("MESSAGE_TYPE_URL", MessageKind.URL),
        (None, MessageKind.OTHER),
    ],
)
def test_message_kinds(wechaty_type: object, kind: MessageKind) -> None:
    assert message_kind(wechaty_type) is kind


def test_friend_request_types_as_ints_or_enum_members() -> None:
    class FriendshipType(Enum):
        FRIENDSHIP_TYPE_CONFIRM = 1
        FRIENDSHIP_TYPE_RECEIVE = 2

    assert is_friend_request(FriendshipType.FRIENDSHIP_TYPE_RECEIVE) and is_friend_request(2)
    assert not is_friend_request(FriendshipType.FRIENDSHIP_TYPE_CONFIRM) and not is_friend_request(1)
    assert is_friend_request("FRIENDSHIP_TYPE_RECEIVE") and not is_friend_request(None)


def test_timestamps_in_milliseconds_or_seconds_become_aware_local_times() -> None:
    ms = platform_time(1_795_811_884_451, SHANGHAI, FALLBACK)
    s = platform_time(1_795_811_884, SHANGHAI, FALLBACK)
    assert ms.tzinfo is SHANGHAI and s.tzinfo is SHANGHAI
    assert abs((ms - s).total_seconds()) < 1
    assert ms.astimezone(UTC) == datetime.fromtimestamp(1_795_811_884.451, UTC)


@pytest.mark.parametrize("raw", [0, None, "", "nope", -5])
def test_a_missing_timestamp_falls_back_to_now(raw: object) -> None:
    assert platform_time(raw, SHANGHAI, FALLBACK) is FALLBACK


def test_mentions_of_the_bot_by_id_or_by_name_with_u2005() -> None:
    assert mentions_bot("hi", ["bot"], "bot", "小助手")
    assert mentions_bot("@小助手\u2005签到", [], "bot", "小助手")
    assert mentions_bot("@小助手 签到", [], "bot", "小助手")
    assert not mentions_bot("@小助手们\u2005好", [], "bot", "小助手")
    assert not mentions_bot("@Alice\u2005hi", ["alice"], "bot", "小助手")


def test_missing_mentions_are_prefixed_with_u2005_and_present_ones_are_not_doubled() -> None:
    assert with_mentions("欢迎", [("a", "Alice")]) == "@Alice\u2005欢迎"
    assert with_mentions("@Alice\u2005欢迎", [("a", "Alice")]) == "@Alice\u2005欢迎"
    assert with_mentions("@Alice\u2005和 Bob", [("a", "Alice"), ("b", "Bob")]) == "@Bob\u2005@Alice\u2005和 Bob"
    assert with_mentions("text", []) == "text"
    assert with_mentions("text", [("x", "")]) == "text"


@pytest.mark.parametrize(
    "message",
    [
        "Too frequent, try again later",
        "operation too fast",
        "RESOURCE_EXHAUSTED quota",
        "rate limit exceeded",
        "操作过于频繁，请稍后再试",
        "发送太快",
        "HTTP 429",
    ],
)
def test_rate_limit_wordings(message: str) -> None:
    assert is_rate_limited(message)


@pytest.mark.parametrize("message", ["room not found", "not the owner", "没有权限", "", "deadline 4290 ms"])
def test_other_errors_are_not_rate_limits(message: str) -> None:
    assert not is_rate_limited(message)


class GRPCError(Exception):  # the shape of grpclib's: status + message
    def __init__(self, status: object, message: str) -> None:
        super().__init__(status, message)
        self.status = status
        self.message = message


def test_platform_errors_are_redacted_and_flag_rate_limits() -> None:
    redactor = SecretRedactor(["s3cret-token"])
    err = to_platform_error("say in g1", RuntimeError("auth s3cret-token failed"), redactor.redact)
    assert isinstance(err, PlatformError) and not err.rate_limited
    assert "s3cret-token" not in str(err) and "***" in str(err)
    status = SimpleNamespace(name="RESOURCE_EXHAUSTED")
    limited = to_platform_error("say in g1", GRPCError(status, "slow down"), redactor.redact)
    assert limited.rate_limited and "RESOURCE_EXHAUSTED" in str(limited)
    assert to_platform_error("x", GRPCError(SimpleNamespace(name="UNKNOWN"), "发送过于频繁")).rate_limited
    original = PlatformError("kept", rate_limited=True)
    assert to_platform_error("x", original) is original


def test_removal_rights() -> None:
    assert removal_right("bot", "bot", frozenset(), False) is True
    assert removal_right("bot", "owner", frozenset({"bot"}), True) is True
    assert removal_right("bot", "owner", frozenset({"bot"}), False) is False
    assert removal_right("bot", "owner", frozenset(), True) is False
    assert removal_right("bot", None, frozenset(), False) is None


def test_backoff_grows_exponentially_with_jitter_caps_and_resets() -> None:
    settings = WechatyReconnect(initial_delay=1, max_delay=8, multiplier=2, jitter=0.5)
    backoff = Backoff(settings, random.Random(7))
    delays = [backoff.next_delay() for _ in range(6)]
    ceilings = [1, 2, 4, 8, 8, 8]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling * 0.5 <= delay <= ceiling
    assert len(set(delays)) == len(delays)  # jitter: no two alike
    backoff.reset()
    assert backoff.next_delay() <= 1
    exact = Backoff(WechatyReconnect(initial_delay=1, max_delay=8, jitter=0), random.Random(1))
    assert [exact.next_delay() for _ in range(5)] == [1, 2, 4, 8, 8]


def test_the_redactor_masks_messages_arguments_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    redactor = SecretRedactor(["tok_abc", ""])
    logger = logging.getLogger("PuppetServiceTest")
    logger.addFilter(redactor)
    try:
        with caplog.at_level(logging.INFO, logger="PuppetServiceTest"):
            logger.warning("there are endpoint<%s> and token<%s>", "127.0.0.1:1", "tok_abc")
            try:
                raise ValueError("bad token tok_abc")
            except ValueError:
                logger.exception("failed")
        text = caplog.text + "".join(r.exc_text or "" for r in caplog.records)
        assert "tok_abc" not in text
        assert "token<***>" in caplog.text
        assert "bad token ***" in (caplog.records[-1].exc_text or "")
    finally:
        logger.removeFilter(redactor)


def test_install_reroutes_library_loggers_and_filters_their_handlers() -> None:
    redactor = SecretRedactor(["tok_xyz"])
    library = logging.getLogger("QunbotFakeWechatyLib")
    own = logging.StreamHandler()
    library.addHandler(own)
    library.propagate = False
    other = logging.getLogger("qunbot.fake.other")
    other_handler = logging.StreamHandler()
    other.addHandler(other_handler)
    try:
        install(redactor, {"QunbotFakeWechatyLib"}, level=logging.ERROR)
        assert library.handlers == [] and library.propagate is True and library.level == logging.ERROR
        assert redactor in library.filters and redactor in other_handler.filters and redactor in other.filters
        assert all(redactor in h.filters for h in logging.getLogger().handlers)
        install(redactor, {"QunbotFakeWechatyLib"})  # idempotent
        assert other_handler.filters.count(redactor) == 1
    finally:
        other.removeHandler(other_handler)
        for target in (library, other, other_handler, logging.getLogger(), *logging.getLogger().handlers):
            target.removeFilter(redactor)


def test_split_quote_reads_wechat_quote_replies_only() -> None:
    reply, quote = split_quote("「小美：姐妹们看过来」\n- - - - - - - - - - - - - - -\n广告")
    assert (reply, quote) == ("广告", Quote(name="小美", text="姐妹们看过来"))
    reply, quote = split_quote("「Bob: 第一行\n第二行「引号」」\n- - - - - - - - - - - - - - -\n误判 @Bob")
    assert reply == "误判 @Bob" and quote == Quote(name="Bob", text="第一行\n第二行「引号」")
    for text in ("「书名」很好看", "「小美：没有分隔线」\n广告", "广告", ""):
        assert split_quote(text) == (text, None)
