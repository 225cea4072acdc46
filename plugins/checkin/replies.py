"""Merged check-in replies (`replies.mode: merged` / `silent`): what a window of check-ins
says in one message instead of one @-reply each. Pure: the plugin collects `Entry`s per
group and renders them with `render_batch` when the window closes (or at shutdown)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, tzinfo
from enum import StrEnum

from bot.core.events import Member
from bot.core.templates import Template
from plugins.checkin import config as cfgmod
from plugins.checkin.config import CheckinTexts
from plugins.checkin.service import BoardRow
from plugins.checkin.views import cn_day

# A group's batch is flushed early past this many entries: a burst never piles up in memory
# (a WeChat group holds at most 500 members, so a busy morning window stays under it).
MAX_ENTRIES = 500
# Members listed on one line of a names section (已签到过, 不在签到时间 …).
NAMES_PER_LINE = 8
# @-mentions in one message at most: WeChat shows long @-lists badly (as the welcome's max_mentions).
MAX_MENTIONS = 30


class Kind(StrEnum):
    DONE = "done"  # checked in now
    LATE = "late"  # a check-in held during an outage, done now
    ALREADY = "already"  # checked in before, today
    OUTSIDE = "outside"  # outside the check-in window: not recorded
    HELD = "held"  # the database is away: recorded on disk, done when it is back
    NOT_HELD = "not_held"  # the database is away and the held queue is full: not recorded

    @property
    def confirms(self) -> bool:
        """Whether it only confirms something recorded (silent groups hear nothing of it)."""
        return self in (Kind.DONE, Kind.LATE, Kind.ALREADY, Kind.HELD)


@dataclass(slots=True)
class Entry:
    kind: Kind
    member: Member
    day: date | None = None
    values: Mapping[str, object] = field(default_factory=dict)  # the line's placeholders


@dataclass(slots=True)
class Batch:
    """One group's entries of the open window; a member appears once per kind."""

    entries: list[Entry] = field(default_factory=list)
    _seen: set[tuple[Kind, str]] = field(default_factory=set)

    def add(self, entry: Entry) -> bool:
        key = (entry.kind, entry.member.id)
        if key in self._seen:
            return False
        # Checked in within this window and again: the first line already answers them.
        if entry.kind is Kind.ALREADY and ((Kind.DONE, entry.member.id) in self._seen):
            return False
        self._seen.add(key)
        self.entries.append(entry)
        return True

    def __len__(self) -> int:
        return len(self.entries)


@dataclass(frozen=True, slots=True)
class Line:
    text: str
    mentions: tuple[str, ...] = ()
    heading: bool = False


@dataclass(frozen=True, slots=True)
class Message:
    text: str
    mentions: tuple[str, ...]


def _who(member: Member, mention: bool) -> str:
    # WeChat separates an @name from what follows with U+2005 (as Context.reply does).
    return f"@{member.display}\u2005" if mention else member.display


def _render(text: str, fields: tuple[str, ...], values: Mapping[str, object]) -> str:
    return Template.parse(text, fields).render(dict(values))


def _done_line(entry: Entry, texts: CheckinTexts, mention: bool, day: date | None) -> str:
    values = dict(entry.values)
    values["member"] = _who(entry.member, mention).rstrip()
    line = _render(texts.merged_line, cfgmod.MERGED_LINE_FIELDS, values)
    if values.get("bonus"):
        line += _render(texts.merged_bonus, cfgmod.BONUS_FIELDS, values)
    if entry.day is not None and day is not None and entry.day != day:
        line = f"{cn_day(entry.day)} {line}"  # a late one from another day says which
    return line


def render_batch(
    entries: Sequence[Entry],
    texts: CheckinTexts,
    *,
    mention: bool,
    window: tuple[str, str] | None,
    group: str,
    max_lines: int,
    max_chars: int,
    silent: bool = False,
) -> list[Message]:
    """The messages a closed window says: the check-ins (header + one line each), then those
    done late, then the names of those already in, outside the window, held, not recorded.
    Each message has at most `max_lines` lines and `max_chars` characters (so the outbox
    never cuts it), and @-mentions exactly the members it names. `silent`: only what was not
    recorded."""
    if silent:
        entries = [e for e in entries if not e.kind.confirms]
    by_kind: dict[Kind, list[Entry]] = {kind: [] for kind in Kind}
    for entry in entries:
        by_kind[entry.kind].append(entry)
    lines: list[Line] = []
    done = by_kind[Kind.DONE]
    day = next((e.day for e in done if e.day is not None), None)
    if done:
        header = {"date": cn_day(day) if day else "", "count": len(done), "group": group}
        lines.append(Line(_render(texts.merged_header, cfgmod.MERGED_HEADER_FIELDS, header), heading=True))
        lines.extend(Line(_done_line(e, texts, mention, day), (e.member.id,) if mention else ()) for e in done)
    late = by_kind[Kind.LATE]
    if late:
        lines.append(Line(texts.held_done.strip(), heading=True))
        lines.extend(Line(_done_line(e, texts, mention, day), (e.member.id,) if mention else ()) for e in late)
    start, end = window or ("", "")
    sections = (
        (Kind.ALREADY, texts.merged_already),
        (Kind.OUTSIDE, _render(texts.merged_outside, ("start", "end"), {"start": start, "end": end})),
        (Kind.HELD, texts.merged_held),
        (Kind.NOT_HELD, texts.merged_not_held),
    )
    for kind, heading in sections:
        members = [e.member for e in by_kind[kind]]
        if not members:
            continue
        lines.append(Line(heading, heading=True))
        for i in range(0, len(members), NAMES_PER_LINE):
            chunk = members[i : i + NAMES_PER_LINE]
            text = (
                " ".join(_who(m, mention).rstrip() for m in chunk) if mention else "、".join(m.display for m in chunk)
            )
            lines.append(Line(text, tuple(m.id for m in chunk) if mention else ()))
    return _pack(lines, max_lines, max_chars)


def _pack(lines: list[Line], max_lines: int, max_chars: int) -> list[Message]:
    """Lines into messages of at most `max_lines` lines, `max_chars` characters and
    `MAX_MENTIONS` @-mentions; a heading never ends a message when a line follows it (it moves
    on with its lines)."""
    messages: list[Message] = []
    current: list[Line] = []
    size = 0

    def close() -> None:
        nonlocal current, size
        carry: list[Line] = []
        while len(current) > 1 and current[-1].heading:
            carry.insert(0, current.pop())
        messages.append(
            Message("\n".join(x.text for x in current), tuple(dict.fromkeys(i for x in current for i in x.mentions)))
        )
        current = carry
        size = sum(len(x.text) + 1 for x in current)

    for line in lines:
        if len(line.text) > max_chars:
            line = Line(line.text[: max_chars - 1] + "…", line.mentions, line.heading)
        mentioned = sum(len(x.mentions) for x in current)
        if current and (
            len(current) >= max_lines
            or size + len(line.text) > max_chars
            or mentioned + len(line.mentions) > MAX_MENTIONS
        ):
            close()
        current.append(line)
        size += len(line.text) + 1
    while current:  # each close() says at least one line
        close()
    return messages


def render_summary(
    texts: CheckinTexts,
    day: date,
    group: str,
    today: Sequence[BoardRow],
    streaks: Sequence[BoardRow],
    names: Mapping[str, str],
    top_n: int,
    tz: tzinfo,
) -> str:
    """The daily summary: how many checked in, the earliest `top_n`, the longest streaks."""

    def name(row: BoardRow) -> str:
        return names.get(row.member_id) or row.name or row.member_id

    lines = [_render(texts.summary, cfgmod.SUMMARY_FIELDS, {"date": cn_day(day), "count": len(today), "group": group})]
    if today:
        lines.append("🏅 最早签到：")
        lines.extend(f"{r.rank}. {name(r)} {r.at.astimezone(tz):%H:%M}" for r in today[:top_n])
    alive = [r for r in streaks if r.value > 1][: min(top_n, 5)]
    if alive:
        lines.append("🔥 连续签到：" + "、".join(f"{name(r)} {r.value} 天" for r in alive))
    return "\n".join(lines)
