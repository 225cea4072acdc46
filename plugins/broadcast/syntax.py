"""The chat command that creates a broadcast::

    定时群发 <时间> [群=g1,g2 | 全部群 | 分组=名称 | 本群] [宽限=30分钟] <内容>

The time, the targets and the grace may come in any order, separated by spaces; the content
is everything after them (it may span lines). Several messages are separated by a line of
`---` (or `||` inline). Parsing is pure; group names are resolved by the caller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo

from bot.core.timeparse import parse_duration
from plugins.broadcast.schedule import WHEN_HELP, Schedule, SpecError, schedule_at

ALL = "all"
HERE = "here"

USAGE = (
    "用法：定时群发 时间 [群=g1,g2 | 全部群 | 分组=名称 | 本群] [宽限=30分钟] 内容\n"
    f"{WHEN_HELP}\n"
    "多条消息用单独一行的 --- 分隔；占位符：{date} {time} {weekday} {group} {year} {month} {day}"
)

_SEP = re.compile(r"[,，、;；]+")
_TARGET_KEY = re.compile(r"(?:群|群聊|群组|目标|发到|发给|to|groups?)\s*[=:：]\s*(?P<v>\S+)", re.IGNORECASE)
_SET_KEY = re.compile(r"(?:分组|群分组|set|sets)\s*[=:：]\s*(?P<v>\S+)", re.IGNORECASE)
_ALL_WORD = re.compile(r"(?:全部群聊|所有群聊|全部的群|所有的群|全部群|所有群|全部|所有|all)(?=\s|$)", re.IGNORECASE)
_HERE_WORD = re.compile(r"(?:本群|这个群|当前群|here)(?=\s|$)", re.IGNORECASE)
_SET_WORD = re.compile(r"set:(?P<v>\S+)(?=\s|$)", re.IGNORECASE)
_GRACE = re.compile(r"(?:宽限|宽限期|grace)\s*[=:：]?\s*(?P<v>\d[^\s]*)(?=\s|$)", re.IGNORECASE)
_MESSAGE_BREAK = re.compile(r"^[ \t]*(?:-{3,}|—{2,}|={3,})[ \t]*$|\|\|", re.MULTILINE)
_ALL_VALUES = {"全部", "所有", "全部群", "所有群", "all", "*"}
_HERE_VALUES = {"本群", "这个群", "当前群", "here"}


@dataclass
class ParsedCommand:
    schedule: Schedule
    targets: list[str] | None  # None: not given (the caller defaults to this group)
    grace: timedelta | None
    messages: list[str] = field(default_factory=list)


def target_values(raw: str) -> list[str]:
    """ "g1,g2、set:x" → selectors; 全部 → "all", 本群 → "here"."""
    out: list[str] = []
    for value in _SEP.split(raw):
        value = value.strip()
        if not value:
            continue
        if value.lower() in _ALL_VALUES:
            value = ALL
        elif value.lower() in _HERE_VALUES:
            value = HERE
        elif value.lower().startswith(("set:", "分组:", "分组：")):
            value = "set:" + re.split(r"[:：]", value, maxsplit=1)[1]
        if value not in out:
            out.append(value)
    return out


def split_messages(content: str) -> list[str]:
    return [part.strip() for part in _MESSAGE_BREAK.split(content) if part.strip()]


def parse_command(text: str, now: datetime, tz: tzinfo) -> ParsedCommand:
    """Parse everything after the command word. Raises SpecError with a Chinese message."""
    pos = 0
    schedule: Schedule | None = None
    targets: list[str] | None = None
    grace: timedelta | None = None
    while True:
        pos = _skip_space(text, pos)
        if pos >= len(text):
            break
        if targets is None:
            found = _targets_at(text, pos)
            if found is not None:
                targets, pos = found
                continue
        if grace is None and (match := _GRACE.match(text, pos)) is not None:
            grace = parse_duration(match.group("v"))
            pos = match.end()
            continue
        if schedule is None:
            at = schedule_at(text, pos, now, tz)
            if at is not None:
                schedule, pos = at
                continue
        break
    if schedule is None:
        raise SpecError(f"没有看到时间。\n{USAGE}")
    messages = split_messages(text[pos:])
    if not messages:
        raise SpecError(f"没有要发送的内容。\n{USAGE}")
    return ParsedCommand(schedule, targets, grace, messages)


def _targets_at(text: str, pos: int) -> tuple[list[str], int] | None:
    match = _TARGET_KEY.match(text, pos)
    if match is not None:
        return target_values(match.group("v")), match.end()
    match = _SET_KEY.match(text, pos)
    if match is not None:
        names = [v.removeprefix("set:") for v in target_values(match.group("v")) if v not in (ALL, HERE)]
        return [f"set:{name}" for name in names], match.end()
    match = _SET_WORD.match(text, pos)
    if match is not None:
        return [f"set:{match.group('v')}"], match.end()
    match = _ALL_WORD.match(text, pos)
    if match is not None:
        return [ALL], match.end()
    match = _HERE_WORD.match(text, pos)
    if match is not None:
        return [HERE], match.end()
    return None


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos
