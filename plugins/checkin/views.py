"""Plain-text views for chat: leaderboards, the month calendar, points history, and the
parsing of what members type (dates, months, @-named members, amounts). Pure functions."""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from bot.core.commands import split_args
from bot.core.events import Member
from bot.storage.points import PointsEntry
from plugins.checkin.models import CheckinRecord
from plugins.checkin.service import BoardRow

WEEKDAYS = "一二三四五六日"
BLANK = "\u3000"  # an ideographic space: as wide as a CJK character or an emoji cell
MARK_DONE, MARK_MAKEUP, MARK_MISSED, MARK_OPEN = "✅", "🔄", "❌", "⬜"

REASON_LABELS = {
    "checkin": "签到",
    "streak_bonus": "连签奖励",
    "makeup": "补签",
    "activity": "发言",
    "invite": "邀请",
    "invite_revoked": "邀请撤回",
    "admin": "管理员调整",
}


def cn_day(day: date) -> str:
    return f"{day.month}月{day.day}日"


def month_bounds(year: int, month: int) -> tuple[date, date]:
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


# --- what members type ----------------------------------------------------------------
_YMD = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})[日号]?$")
_MD = re.compile(r"^(\d{1,2})[-/.月](\d{1,2})[日号]?$")
_D = re.compile(r"^(\d{1,2})[日号]?$")
_YM = re.compile(r"^(\d{4})[-/.年](\d{1,2})月?$")
_M = re.compile(r"^(\d{1,2})月?$")
_AMOUNT = re.compile(r"^\+?(\d{1,9})分?$")


def parse_day(text: str, today: date) -> date | None:
    """A day as members write it; empty means yesterday. Dates without a year (or month)
    are the latest such day not after today. None when it is not a date."""
    text = text.strip()
    if text in ("", "昨天", "昨日"):
        return today - timedelta(days=1)
    if text == "前天":
        return today - timedelta(days=2)
    try:
        if m := _YMD.match(text):
            return date(int(m[1]), int(m[2]), int(m[3]))
        if m := _MD.match(text):
            day = date(today.year, int(m[1]), int(m[2]))
            return day if day <= today else date(today.year - 1, day.month, day.day)
        if m := _D.match(text):
            n = int(m[1])
            if n <= today.day:
                return today.replace(day=n)
            last_month = today.replace(day=1) - timedelta(days=1)
            return last_month.replace(day=n)
    except ValueError:
        return None
    return None


def parse_month(text: str, today: date) -> tuple[int, int] | None:
    """(year, month); empty means this month. None when it is not a month."""
    text = text.strip()
    if text in ("", "本月", "这个月"):
        return today.year, today.month
    if text in ("上月", "上个月"):
        prev = today.replace(day=1) - timedelta(days=1)
        return prev.year, prev.month
    if m := _YM.match(text):
        year, month = int(m[1]), int(m[2])
    elif m := _M.match(text):
        year, month = today.year, int(m[1])
        if month > today.month:
            year -= 1
    else:
        return None
    return (year, month) if 1 <= month <= 12 else None


def parse_amount(text: str) -> int | None:
    m = _AMOUNT.match(text.strip())
    return int(m[1]) if m else None


class TargetError(ValueError):
    """The member(s) an admin command names cannot be found, in words for the admin."""


@dataclass(frozen=True, slots=True)
class Targets:
    members: list[Member]
    args: list[str]  # what follows the names


def resolve_targets(rest: str, mentions: Sequence[str], roster: Sequence[Member], bot_id: str) -> Targets:
    """Who an admin command is about: the @-mentioned members (ids from the message), or,
    without mentions, the first argument as a member id or group nickname."""
    by_id = {m.id: m for m in roster}
    ids = list(dict.fromkeys(i for i in mentions if i != bot_id))
    if ids:
        members = [by_id.get(i, Member(i)) for i in ids]
        text = rest
        # Cut the "@name" runs out first: names may contain spaces.
        for name in sorted({m.display for m in members} | {m.id for m in members}, key=len, reverse=True):
            text = text.replace(f"@{name}", " ")
        return Targets(members, [t for t in split_args(text) if not t.startswith("@")])
    args = list(split_args(rest))
    if not args:
        raise TargetError("请 @ 要操作的成员")
    wanted = args[0].removeprefix("@")
    if wanted in by_id or not roster:
        return Targets([by_id.get(wanted, Member(wanted))], args[1:])
    matches = [m for m in roster if wanted in (m.name, m.display)]
    if not matches:
        matches = [m for m in roster if m.display.casefold() == wanted.casefold()]
    if not matches:
        raise TargetError(f"群里找不到“{wanted}”，请 @ 对方")
    if len(matches) > 1:
        raise TargetError(f"群里有 {len(matches)} 位“{wanted}”，请 @ 对方")
    return Targets(matches, args[1:])


# --- leaderboards ---------------------------------------------------------------------
def _name(row: BoardRow, names: Mapping[str, str]) -> str:
    return names.get(row.member_id) or row.name or row.member_id


def render_today_board(
    rows: Sequence[BoardRow], names: Mapping[str, str], day: date, top_n: int, tz: tzinfo, me: str, hint: str
) -> str:
    if not rows:
        return f"📋 {cn_day(day)}还没有人签到，{hint}"
    lines = [f"📋 今日签到榜 · {cn_day(day)}（已签到 {len(rows)} 人）"]
    for row in rows[:top_n]:
        lines.append(f"{row.rank}. {_name(row, names)} {row.at.astimezone(tz):%H:%M}")
    mine = next((r for r in rows if r.member_id == me), None)
    if mine is None:
        lines.append(f"你今天还没签到，{hint}")
    elif mine.rank > top_n:
        lines.append(f"你是今日第{mine.rank}位")
    return "\n".join(lines)


def render_streak_board(rows: Sequence[BoardRow], names: Mapping[str, str], top_n: int, me: str) -> str:
    if not rows:
        return "🔥 还没有人在连续签到，今天就开始吧！"
    lines = ["🔥 连续签到榜"]
    lines.extend(f"{r.rank}. {_name(r, names)} {r.value} 天" for r in rows[:top_n])
    mine = next((r for r in rows if r.member_id == me), None)
    if mine is not None and mine not in rows[:top_n]:
        lines.append(f"你：连续 {mine.value} 天（第{mine.rank}名）")
    return "\n".join(lines)


def render_points_board(rows: Sequence[BoardRow], names: Mapping[str, str], top_n: int, me: str) -> str:
    if not rows:
        return "💰 还没有人有积分，发送“签到”开始赚积分吧！"
    lines = ["💰 积分榜"]
    lines.extend(f"{r.rank}. {_name(r, names)} {r.value} 分" for r in rows[:top_n])
    mine = next((r for r in rows if r.member_id == me), None)
    if mine is not None and mine not in rows[:top_n]:
        lines.append(f"你：{mine.value} 分（第{mine.rank}名）")
    return "\n".join(lines)


# --- the month calendar ---------------------------------------------------------------
def render_calendar(
    who: str,
    year: int,
    month: int,
    records: Mapping[date, CheckinRecord],
    today: date,
    *,
    streak: int,
    longest: int,
    can_make_up: Iterable[date] = (),
    makeup_note: str = "",
) -> str:
    """A compact month grid, Monday first: ✅ checked in, 🔄 made up, ❌ missed, ⬜ to come."""
    first, last = month_bounds(year, month)
    cells = [BLANK] * first.weekday()
    missed = 0
    for n in range(1, last.day + 1):
        day = date(year, month, n)
        record = records.get(day)
        if record is not None:
            cells.append(MARK_MAKEUP if record.makeup else MARK_DONE)
        elif day < today:
            cells.append(MARK_MISSED)
            missed += 1
        else:
            cells.append(MARK_OPEN)
    rows = ["".join(cells[i : i + 7]) for i in range(0, len(cells), 7)]
    made_up = sum(1 for r in records.values() if r.makeup)
    lines = [
        f"📅 {who} 的 {year}年{month}月签到",
        WEEKDAYS,
        *rows,
        f"{MARK_DONE}签到 {MARK_MAKEUP}补签 {MARK_MISSED}漏签 {MARK_OPEN}未到",
    ]
    summary = f"本月签到 {len(records)} 天"
    if made_up:
        summary += f"（含补签 {made_up} 天）"
    if missed:
        summary += f"，漏签 {missed} 天"
    lines.append(summary)
    lines.append(f"🔥 当前连续 {streak} 天，最长 {longest} 天")
    open_days = sorted(can_make_up)
    if open_days:
        shown = "、".join(f"{d.month}-{d.day:02d}" for d in open_days[-5:])
        lines.append(f"可补签：{shown}{makeup_note}")
    return "\n".join(lines)


# --- points history -------------------------------------------------------------------
def render_history(who: str, entries: Sequence[PointsEntry], total: int, tz: tzinfo) -> str:
    if not entries:
        return f"🧾 {who} 还没有积分记录"
    lines = [f"🧾 {who} 的积分明细（共 {total} 分，最近 {len(entries)} 条）"]
    for e in entries:
        at: datetime = e.at.astimezone(tz)
        label = REASON_LABELS.get(e.reason) or ("游戏" if e.reason.startswith("game") else e.reason)
        note = f"（{e.note}）" if e.note and e.note != label else ""
        lines.append(f"{at:%m-%d %H:%M} {e.delta:+d} {label}{note}")
    return "\n".join(lines)
