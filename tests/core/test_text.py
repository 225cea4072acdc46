import random

import pytest

from bot.core.text import normalize, normalize_for_command, strip_mention


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Hello   WORLD ", "hello world"),
        ("ＶＸ：ａｂｃ１２３！", "vx:abc123!"),  # full-width to half-width
        ("今天\u3000天气\u2005很好\u00a0吧", "今天 天气 很好 吧"),
        ("第一行\n\n第二行\t\r\n", "第一行 第二行"),
        ("加\u200b微\u200d信", "加微信"),  # invisible characters dodge filters
        ("\u202e信微加\u202c", "信微加"),  # RTL override
        ("Straße", "strasse"),  # casefold, not lower
        ("①②", "12"),
        ("ｶﾀｶﾅ", "カタカナ"),
        ("", ""),
        ("   ", ""),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_normalize_keeps_emoji_and_cjk() -> None:
    assert normalize("早安😀 大家好") == "早安😀 大家好"


@pytest.mark.parametrize(
    "odd",
    ["\ud800", "a\udfffb", "\x00\x01\x7f", "\u200f\u202a\u2066", "👨‍👩‍👧🇨🇳", "\ufeff", "\U000e0041"],
)
def test_normalize_odd_input_never_raises_and_gives_valid_utf8(odd: str) -> None:
    out = normalize(odd)
    out.encode("utf-8")  # lone surrogates were replaced


def test_normalize_huge_text() -> None:
    big = ("ａ\u200b\ud800好 " * 200_000)[:1_000_000]
    out = normalize(big)
    assert out.startswith("a�好 a")
    out.encode("utf-8")
    assert normalize(("x" * 10) * 100_000) == "x" * 1_000_000


def test_normalize_is_idempotent() -> None:
    rng = random.Random(3)
    ascii_ = "".join(map(chr, range(0x20, 0x7F)))
    alphabet = "签到ＡＢａｂ Cc\u3000\u2005\u00a0\u200b！？，。😀\n\t①ﬁ" + ascii_
    for _ in range(2000):
        text = "".join(rng.choices(alphabet, k=rng.randint(0, 20)))
        once = normalize(text)
        assert normalize(once) == once
        assert once == once.strip()
        assert "  " not in once


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("@小助手\u2005签到", "签到"),
        ("@小助手 签到", "签到"),
        ("  @小助手\u2005 签到 ", "签到"),
        ("签到 @小助手\u2005", "签到"),
        ("签到 @小助手", "签到"),
        ("@小助手\u2005签到 @小助手", "签到"),
        ("＠小助手\u2005签到", "签到"),
        ("@小助手", ""),
    ],
)
def test_strip_mention(raw: str, expected: str) -> None:
    assert strip_mention(raw, "小助手") == expected


@pytest.mark.parametrize(
    "raw",
    [
        "@小助手们 签到",  # someone else
        "签到",
        "问一下@小助手\u2005怎么签到",  # the mention is in the middle
        "mail@小助手",  # no boundary before the @
    ],
)
def test_strip_mention_leaves_other_text_alone(raw: str) -> None:
    assert strip_mention(raw, "小助手") == raw


def test_strip_mention_without_bot_name() -> None:
    assert strip_mention("@ 签到", "") == "@ 签到"


def test_normalize_for_command() -> None:
    assert normalize_for_command("@小助手\u2005ＨＥＬＰ  me", "小助手") == "help me"
    assert normalize_for_command("@Bot签到", "Bot") == "@bot签到"
