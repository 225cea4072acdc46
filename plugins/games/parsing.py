"""Forgiving Chinese command syntax for the games: pure functions, no I/O.

Admins type things like::

    发起抽奖 奖品=电影票 人数=3 口令=我要抽奖 截止=20:00
    发起抽奖 电影票 3人 满50人开奖
    发起投票 午饭吃什么 火锅/烧烤/日料 截止=12:00
    发起投票 标题=周末活动 选项=爬山,看电影 时长=2小时

Settings are `key=value` (also `key:value` and the full-width forms); anything else is a
free word, recognised by its shape (``3人``, ``满50人``, ``20:00``, ``30分钟``). Quotes (“…”,
「…」, "…") keep words with spaces together. Times are read in the clock's timezone: a bare
time that has passed today means tomorrow.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.core.text import normalize
from bot.core.timeparse import MOMENT_HELP, TimeParseError, describe_moment, duration_at, find_moment


class ParseError(ValueError):
    """Input the admin should fix; the message is shown to them as is (Chinese)."""


# --- tokens ----------------------------------------------------------------------------
_TOKEN = re.compile(r"“([^”]*)”|「([^」]*)」|\"([^\"]*)\"|'([^']*)'|(\S+)")


def tokenize(text: str) -> list[str]:
    """Whitespace-separated words; a quoted phrase is one word (quotes removed)."""
    text = unicodedata.normalize("NFKC", text).replace("\u2005", " ")
    out = []
    for m in _TOKEN.finditer(text):
        word = next(g for g in m.groups() if g is not None)
        if word.strip():
            out.append(word.strip())
    return out


_KV = re.compile(r"^(?P<key>[^\s=:]+?)\s*(?P<sep>[=:])\s*(?P<value>.*)$")


def split_settings(
    tokens: list[str], aliases: dict[str, str], timed: frozenset[str]
) -> tuple[dict[str, str], list[str]]:
    """Separate `key=value` settings (keys by alias → canonical name) from free words.

    A value may be the next word (``截止= 20:00``); a time-valued setting takes the next
    word too when together they read as one time (``截止=明天 20:00``). An unknown key with
    ``=`` is an error (a typo must not silently become part of the prize)."""
    settings: dict[str, str] = {}
    free: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        m = _KV.match(tok)
        key = m.group("key").casefold() if m else ""
        if m and (key in aliases or m.group("sep") == "="):
            if key not in aliases:
                first: dict[str, str] = {}  # the first alias of each setting is the one to show
                for alias, canonical in aliases.items():
                    first.setdefault(canonical, alias)
                known = "、".join(first.values())
                raise ParseError(f"不认识的设置“{m.group('key')}”，可以写：{known}")
            name = aliases[key]
            value = m.group("value").strip()
            if not value and i + 1 < len(tokens):
                i += 1
                value = tokens[i]
            if name in timed and i + 1 < len(tokens) and _takes_next(value, tokens[i + 1]):
                i += 1
                value = f"{value} {tokens[i]}"
            if not value:
                raise ParseError(f"“{m.group('key')}”后面要写内容")
            if name in settings:
                raise ParseError(f"“{m.group('key')}”写了两次")
            settings[name] = value
        else:
            free.append(tok)
        i += 1
    return settings, free


def _takes_next(value: str, following: str) -> bool:
    probe = datetime(2000, 1, 1, 12, 0, tzinfo=UTC)
    try:
        return parse_when(f"{value} {following}", probe) is not None
    except ParseError:
        return False


# --- times: the core's Chinese time parser, with the games' error type ---------------------
_LEAD = re.compile(r"^(?:截止到?|截至|到|于|在)\s*")
_TRAIL = re.compile(r"\s*(?:开奖|截止|截至|结束|为止|之前|以前|前|整)$")


def parse_duration(text: str) -> timedelta | None:
    """``30分钟``, ``2小时``, ``半小时``, ``一个半小时``, ``1天``, ``90s``; None if it is not a duration."""
    body = normalize(text).replace(" ", "")
    found = duration_at(body, 0)
    if found is None or found[1] != len(body):
        return None
    if found[0] <= timedelta(0):
        raise ParseError(f"时长要大于 0：{text}")
    return found[0]


def parse_when(text: str, now: datetime, *, strict: bool = False) -> datetime | None:
    """An end time in `now`'s timezone (the deployment's), read by `bot.core.timeparse`:
    ``20:00``, ``九点``, ``下午三点半``, ``明天20:00``, ``周五晚上8点``, ``12-25 20:00``, a
    duration from now (``30分钟``, ``一小时后``), with ``截止…``/``…开奖`` around it. None if the
    text is not a time at all; ParseError if it is one but impossible or ambiguous. Past
    times are returned (the caller says so). `strict`: the text is meant as a time (``截止=…``),
    so a day without a time (``周三``) is an error that says so, not "not a time"."""
    try:
        return find_moment(unicodedata.normalize("NFKC", text), now, strict=strict)
    except TimeParseError as exc:
        raise ParseError(str(exc)) from None


def has_time_marker(word: str) -> bool:
    """Whether a free word says it is a deadline (``12:00截止``, ``30分钟后``, ``截止12:00``)."""
    w = unicodedata.normalize("NFKC", word).strip()
    return bool(_LEAD.match(w) or _TRAIL.search(w) or w.endswith("后"))


format_when = describe_moment


def _free_time(free: list[str], i: int, now: datetime, *, marked_only: bool) -> tuple[datetime | None, int]:
    """A time starting at free word i (one or two words); returns (time, words used)."""
    for width in (2, 1):
        if i + width > len(free):
            continue
        text = " ".join(free[i : i + width])
        if marked_only and not has_time_marker(text):
            continue
        when = parse_when(text, now)
        if when is not None:
            return when, width
    return None, 0


def _count(value: str, what: str) -> int:
    m = re.fullmatch(r"(\d+)\s*(?:人|名|个|位)?", value.strip())
    if not m:
        raise ParseError(f"{what}要写数字：{value}")
    return int(m.group(1))


def _deadline(value: str, now: datetime) -> datetime:
    when = parse_when(value, now, strict=True)
    if when is None:
        raise ParseError(f"看不懂时间“{value}”，{MOMENT_HELP}")
    return when


# --- lottery ---------------------------------------------------------------------------
LOTTERY_KEYS = {
    **dict.fromkeys(("奖品", "奖励", "礼品", "奖项", "prize"), "prize"),
    **dict.fromkeys(("人数", "中奖人数", "名额", "中奖", "中奖名额", "winners"), "winners"),
    **dict.fromkeys(("口令", "关键词", "关键字", "暗号", "参与口令", "keyword"), "keyword"),
    **dict.fromkeys(("截止", "截止时间", "截至", "开奖", "开奖时间", "结束", "结束时间", "时间", "时长", "end"), "end"),
    **dict.fromkeys(("满", "满员", "满人", "人满", "参与人数", "开奖人数", "full"), "full"),
}

LOTTERY_USAGE = (
    "用法：发起抽奖 奖品 [N人] [截止时间] [满M人开奖] [口令=参与口令]\n"
    "例：发起抽奖 奖品=电影票 人数=3 口令=我要抽奖 截止=20:00\n"
    "例：发起抽奖 电影票 3人 满50人开奖\n"
    "时间可写 20:00、九点、下午三点半、明天20:00、12-25 20:00、30分钟、一小时后；"
    "时间和人数都不写则 {minutes} 分钟后开奖。"
)

_FULL = re.compile(r"^(?:满员?|人满)\s*(\d+)\s*(?:人|名|位)?(?:就|即|自动|后)?(?:开奖|开)?$")
_WINNERS = re.compile(r"^(?:抽|中奖)?\s*(\d+)\s*(?:人|名|个|位)(?:中奖)?$")


@dataclass(frozen=True, slots=True)
class LotteryRequest:
    prize: str
    winners: int
    keyword: str
    ends_at: datetime | None
    max_participants: int | None


def parse_lottery(
    rest: str, now: datetime, *, default_keyword: str, default_winners: int, default_duration: timedelta
) -> LotteryRequest:
    settings, free = split_settings(tokenize(rest), LOTTERY_KEYS, frozenset({"end"}))
    prize_words: list[str] = []
    ends_at = _deadline(settings["end"], now) if "end" in settings else None
    winners = _count(settings["winners"], "中奖人数") if "winners" in settings else None
    full = _count(settings["full"], "开奖人数") if "full" in settings else None
    i = 0
    while i < len(free):
        word = free[i]
        if (m := _FULL.match(word)) and full is None:
            full = int(m.group(1))
        elif (m := _WINNERS.match(word)) and winners is None:
            winners = int(m.group(1))
        else:
            when, used = (None, 0) if ends_at is not None else _free_time(free, i, now, marked_only=False)
            if when is not None:
                ends_at = when
                i += used
                continue
            prize_words.append(word)
        i += 1
    prize = settings.get("prize") or " ".join(prize_words)
    if settings.get("prize") and prize_words:
        raise ParseError(f"看不懂“{' '.join(prize_words)}”（奖品已经写了：{settings['prize']}）")
    if not prize:
        raise ParseError("要写奖品")
    if len(prize) > 100:
        raise ParseError("奖品写得太长了（最多 100 字）")
    keyword = settings.get("keyword", default_keyword).strip()
    if not keyword or len(keyword) > 20:
        raise ParseError("口令要 1~20 个字")
    winners = default_winners if winners is None else winners
    if winners < 1:
        raise ParseError("中奖人数至少 1 人")
    if full is not None and full < 1:
        raise ParseError("开奖人数至少 1 人")
    if ends_at is None and full is None:
        ends_at = now + default_duration
    if ends_at is not None and ends_at <= now:
        raise ParseError(f"截止时间 {format_when(ends_at, now)} 已经过了")
    return LotteryRequest(prize, winners, keyword, ends_at, full)


# --- poll ------------------------------------------------------------------------------
POLL_KEYS = {
    **dict.fromkeys(("标题", "主题", "题目", "问题", "title"), "title"),
    **dict.fromkeys(("选项", "选择", "options"), "options"),
    **dict.fromkeys(("截止", "截止时间", "截至", "结束", "结束时间", "时间", "时长", "期限", "end"), "end"),
}

POLL_USAGE = (
    "用法：发起投票 标题 选项1 选项2 … [截止=时间]\n"
    "例：发起投票 午饭吃什么 火锅 烧烤 日料 截止=12:00\n"
    "例：发起投票 标题=周末活动 选项=爬山/看电影/聚餐 时长=2小时\n"
    "不写截止时间则 {minutes} 分钟后截止；大家发送“投 2”投票。"
)

_OPTION_SPLIT = re.compile(r"[/|,;、]+")
_NUMBERING = re.compile(r"^(?:\d{1,2}|[A-Za-z])\s*[.、):]\s*(?=\D)")


@dataclass(frozen=True, slots=True)
class PollRequest:
    title: str
    options: list[str]
    ends_at: datetime


def _clean_option(text: str) -> str:
    return _NUMBERING.sub("", text.strip()).strip()


def parse_poll(rest: str, now: datetime, *, default_duration: timedelta, max_options: int) -> PollRequest:
    settings, free = split_settings(tokenize(rest), POLL_KEYS, frozenset({"end"}))
    ends_at = _deadline(settings["end"], now) if "end" in settings else None
    words: list[str] = []
    i = 0
    while i < len(free):
        # A free word is the deadline only when it says so ("12:00截止", "30分钟后"): plain
        # times are common options ("19:00 20:00 21:00").
        when, used = (None, 0) if ends_at is not None else _free_time(free, i, now, marked_only=True)
        if when is not None:
            ends_at = when
            i += used
            continue
        words.append(free[i])
        i += 1
    title = settings.get("title")
    if title is None:
        if not words:
            raise ParseError("要写投票标题和选项")
        title, words = words[0], words[1:]
    if "options" in settings:
        if words:
            raise ParseError(f"看不懂“{' '.join(words)}”（选项已经写了）")
        raw = _OPTION_SPLIT.split(settings["options"])
    elif len(words) == 1:
        raw = _OPTION_SPLIT.split(words[0])
    else:
        raw = words
    options = [o for o in (_clean_option(r) for r in raw) if o]
    if len(options) < 2:
        raise ParseError("至少要两个选项")
    if len(options) > max_options:
        raise ParseError(f"选项最多 {max_options} 个")
    if len(set(options)) != len(options):
        raise ParseError("选项有重复")
    if any(len(o) > 50 for o in options) or len(title) > 100:
        raise ParseError("标题或选项写得太长了")
    ends_at = ends_at or now + default_duration
    if ends_at <= now:
        raise ParseError(f"截止时间 {format_when(ends_at, now)} 已经过了")
    return PollRequest(title, options, ends_at)


# --- answers ---------------------------------------------------------------------------
def answer_key(text: str) -> str:
    """The form answers are compared in: normalised (NFKC, case-folded) without spaces,
    punctuation or symbols, so “北京！” matches 北京 and "A B" matches "ab"."""
    norm = normalize(text)
    key = "".join(ch for ch in norm if unicodedata.category(ch)[0] not in "PZS")
    return key or norm


_VOTE = re.compile(r"^(?:投|选|投给|选择)?\s*(?:第)?\s*(\d{1,2})\s*(?:号|个|项)?$")


def parse_vote(text: str) -> int | None:
    """An option number from ``2``, ``投2``, ``第2个``, ``选 2`` (None otherwise)."""
    m = _VOTE.match(normalize(text))
    return int(m.group(1)) if m else None


def parse_int(text: str) -> int | None:
    """``5``, ``-3``, and with a measure word as people write it: ``3个``, ``5题``, ``2颗``."""
    m = re.fullmatch(r"([+-]?\d{1,9})\s*(?:个|颗|题|道|次|人|号)?", normalize(text))
    return int(m.group(1)) if m else None


__all__ = [
    "LOTTERY_USAGE",
    "POLL_USAGE",
    "LotteryRequest",
    "ParseError",
    "PollRequest",
    "answer_key",
    "format_when",
    "has_time_marker",
    "parse_duration",
    "parse_int",
    "parse_lottery",
    "parse_poll",
    "parse_vote",
    "parse_when",
    "split_settings",
    "tokenize",
]
