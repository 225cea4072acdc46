import pickle
import random

import pytest

from bot.core.matching import KeywordMatcher, MatchMode, RegexError, SafeRegex
from bot.core.text import normalize


def matcher(*entries: tuple[str, str, object]) -> KeywordMatcher[object]:
    return KeywordMatcher(entries)


def test_modes() -> None:
    m = matcher(("签到", "exact", "e"), ("红包", "contains", "c"), ("查询", "prefix", "p"))
    assert m.match("签到") == ["e"]
    assert m.match("我要签到") == []
    assert m.match("领红包了") == ["c"]
    assert m.match("查询积分") == ["p"]
    assert m.match("我想查询") == []
    assert m.match("") == []


def test_every_match_in_insertion_order_once() -> None:
    m = matcher(
        ("b", "contains", 1),
        ("签到", "prefix", 2),
        ("签到", "contains", 3),
        ("签到", "exact", 4),
        ("到", "contains", 5),
    )
    assert m.match("签到") == [2, 3, 4, 5]
    assert m.match("签到签到 b b") == [1, 2, 3, 5]
    assert m.first("签到") == 2
    assert m.first("无关") is None


def test_patterns_are_normalised() -> None:
    m = matcher(("ＶＸ", "contains", "vx"), ("  Hello   World ", "exact", "hw"), ("加\u200b微信", "contains", "wx"))
    assert m.match(normalize("加我vx")) == ["vx"]
    assert m.match(normalize("HELLO\u3000world")) == ["hw"]
    assert m.match(normalize("加微信")) == ["wx"]


def test_overlapping_keywords() -> None:
    m = matcher(("she", "contains", 1), ("he", "contains", 2), ("hers", "contains", 3), ("his", "prefix", 4))
    assert m.match("ushers") == [1, 2, 3]
    assert m.match("his") == [4]


def test_empty_matcher() -> None:
    m: KeywordMatcher[int] = KeywordMatcher()
    assert m.match("anything") == []
    assert not m
    assert len(m) == 0
    only_exact = matcher(("x", "exact", 1))
    assert only_exact.match("x") == [1]
    assert only_exact.match("xy") == []


def test_bad_entries() -> None:
    with pytest.raises(ValueError, match=r"unknown match mode 'regex'.*exact, contains, prefix"):
        matcher(("x", "regex", 1))
    with pytest.raises(ValueError, match="empty once normalised"):
        matcher(("\u200b ", "contains", 1))


def test_matches_a_naive_implementation() -> None:
    rng = random.Random(11)
    # Characters of 1 to 4 UTF-8 bytes and both widths of UTF-16 (a prefix hit is one at the
    # first character only, whatever its size).
    alphabet = "签到红包加微信abc é😀"
    entries = [
        ("".join(rng.choices(alphabet, k=rng.randint(1, 4))), rng.choice(list(MatchMode)), i) for i in range(300)
    ]
    entries = [e for e in entries if normalize(e[0])]
    m = KeywordMatcher(entries)
    keyed = [(normalize(pattern), mode, value) for pattern, mode, value in entries]
    for _ in range(1000):
        text = normalize("".join(rng.choices(alphabet, k=rng.randint(0, 12))))
        expected = [
            value
            for key, mode, value in keyed
            if (mode is MatchMode.EXACT and text == key)
            or (mode is MatchMode.CONTAINS and key in text)
            or (mode is MatchMode.PREFIX and text.startswith(key))
        ]
        assert m.match(text) == expected, text


def test_lone_surrogate_in_text_matches_around_it() -> None:
    m = matcher(("红包", "contains", "c"), ("签到", "prefix", "p"))
    assert m.match("签到\ud800红包") == ["c", "p"]
    assert m.match("\ud800签到") == []


def test_matcher_survives_pickling() -> None:
    m = matcher(("红包", "contains", "c"), ("签到", "exact", "e"))
    assert pickle.loads(pickle.dumps(m)).match("抢红包") == ["c"]


# --- SafeRegex ---------------------------------------------------------------------------


def test_regex_named_groups() -> None:
    r = SafeRegex.compile(r"(?P<kind>qq|vx|wx)\s*(?P<num>\d{5,})(?P<tail>x)?")
    assert r.search(normalize("加我 ＶＸ 123456")) == {"kind": "vx", "num": "123456", "tail": ""}
    assert r.search("hello") is None
    assert r.group_names == ("kind", "num", "tail")


def test_regex_without_groups_gives_empty_dict() -> None:
    r = SafeRegex.compile("红包")
    assert r.search("抢红包") == {}
    assert r.search("抢") is None


def test_regex_ignores_case_by_default() -> None:
    assert SafeRegex.compile("VX").search("加vx") == {}
    assert SafeRegex.compile("VX", ignore_case=False).search("加vx") is None


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"(?=a)b", "look-ahead"),
        (r"(?!a)b", "negative look-ahead"),
        (r"(?<=a)b", "look-behind"),
        (r"(?<!a)b", "negative look-behind"),
        (r"(a)\1", "backreferences"),
        ("(ab", "unbalanced parentheses"),
        ("ab)", "unbalanced parentheses"),
        ("[ab", "character class"),
        ("a**", "bad repetition"),
        ("a{5000}", "repetition count"),
        ("", "empty"),
    ],
)
def test_regex_errors_are_readable(pattern: str, reason: str) -> None:
    with pytest.raises(RegexError, match=reason) as info:
        SafeRegex.compile(pattern)
    assert isinstance(info.value, ValueError)


def test_regex_memory_is_bounded() -> None:
    with pytest.raises(RegexError, match="too large"):
        SafeRegex.compile(r"(\w{1,1000}){1,1000}", max_mem=1 << 16)


def test_regex_has_no_catastrophic_backtracking() -> None:
    # Exponential on a backtracking engine; linear on RE2 (returns at once).
    r = SafeRegex.compile(r"^(a+)+$")
    assert r.search("a" * 50_000 + "b") is None


def test_regex_on_odd_text() -> None:
    r = SafeRegex.compile(r"(?P<n>\d+)")
    assert r.search("\ud800 42") == {"n": "42"}
    assert r.search("😀" * 10 + "7") == {"n": "7"}
