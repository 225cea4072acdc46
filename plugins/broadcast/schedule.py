# Over 500 lines: one grammar, the Chinese time syntax admins type, with the Schedule value it produces.
"""When a broadcast fires: the `Schedule` value (cron, interval or one date-time), and the
forgiving Chinese time syntax admins type in chat (每天08:00, 工作日 9点半, 每周一三五 20:00,
每月1号 10点, 每2小时, 2026-12-24 20:00, 明天8点, 30分钟后, cron 0 8 * * 1-5).

Everything here is pure: the current time and the timezone are passed in. APScheduler 3.x
triggers (through `bot.core.scheduler`) compute the fire times.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, ConfigDict

from bot.core.scheduler import cron_trigger, date_trigger, interval_trigger
from bot.core.timeparse import (
    Clock,
    TimeParseError,
    cn_number,
    describe_duration,
    moment_at,
    time_of_day_at,
)

# Broadcast specs are time specs: one error type, raised by the core parser and by this module.
SpecError = TimeParseError

# --- the schedule value ------------------------------------------------------------------------


class Schedule(BaseModel):
    """One broadcast's timing, storable as JSON. Local date-times without an offset are in
    the deployment's configured timezone (applied when the trigger is built)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["cron", "interval", "date"]
    cron: str | None = None  # crontab, 5 fields, weekday 0/7 = Sunday
    every_seconds: int | None = None
    start: str | None = None  # ISO date-time: the interval's anchor (its first occurrence)
    at: str | None = None  # ISO date-time of a one-off
    label: str = ""  # how the admin wrote it, shown in lists

    def trigger(self, tz: tzinfo) -> BaseTrigger:
        if self.kind == "cron":
            assert self.cron is not None
            return cron_trigger(self.cron, tz)
        if self.kind == "interval":
            assert self.every_seconds and self.start
            # Anchored on a stored start so every process and restart computes the same
            # occurrences (delivery claims key on them).
            return interval_trigger(tz, start=local_datetime(self.start, tz), seconds=self.every_seconds)
        assert self.at is not None
        return date_trigger(local_datetime(self.at, tz), tz)

    def describe(self) -> str:
        if self.label:
            return self.label
        if self.kind == "cron":
            return f"cron {self.cron}"
        if self.kind == "interval":
            return f"每{describe_duration(timedelta(seconds=self.every_seconds or 0))}"
        return f"{(self.at or '').replace('T', ' ')[:16]} 一次"

    @property
    def recurring(self) -> bool:
        return self.kind != "date"

    def shortest_gap(self) -> timedelta | None:
        """The shortest time between two occurrences (None for a one-off). For a cron, every
        day is assumed to be allowed, so a gap across midnight counts even when the day
        fields would rule the next day out: the answer is never longer than the real one."""
        if self.kind == "interval":
            return timedelta(seconds=self.every_seconds or 0)
        if self.kind == "date":
            return None
        assert self.cron is not None
        minute, hour = self.cron.split()[:2]
        trigger = CronTrigger(minute=minute, hour=hour, timezone=UTC)
        fire = trigger.get_next_fire_time(None, _GAP_PROBE_START)
        shortest: timedelta | None = None
        # Two days hold every gap of a daily pattern, the one across midnight included.
        while fire is not None and fire < _GAP_PROBE_START + timedelta(days=2):
            following = trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
            if following is None:
                break
            gap = following - fire
            if shortest is None or gap < shortest:
                shortest = gap
                if gap <= timedelta(minutes=1):  # a cron cannot fire more often
                    break
            fire = following
        return shortest


_GAP_PROBE_START = datetime(2000, 1, 3, tzinfo=UTC)
DEFAULT_MIN_INTERVAL = timedelta(minutes=5)


def require_min_interval(schedule: Schedule, minimum: timedelta) -> None:
    """SpecError when `schedule` would send more often than once per `minimum`."""
    gap = schedule.shortest_gap()
    if gap is not None and gap < minimum:
        raise SpecError(
            f"定时群发的间隔至少 {describe_duration(minimum)}（群发太频繁容易被封号）："
            f"“{schedule.describe()}”最短 {describe_duration(gap)} 就发一次"
        )


def local_datetime(text: str, tz: tzinfo) -> datetime:
    """An ISO date-time; without an offset it is a local time in `tz`."""
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=tz) if value.tzinfo is None else value


def occurrences(trigger: BaseTrigger, after: datetime, before: datetime) -> Iterator[datetime]:
    """Fire times t with after < t < before, oldest first (the scheduler's own stepping)."""
    fire = trigger.get_next_fire_time(None, after + timedelta(microseconds=1))
    while fire is not None and fire < before:
        if fire > after:  # a date trigger returns its time even when that has passed
            yield fire
        fire = trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))


def next_after(trigger: BaseTrigger, fire: datetime) -> datetime | None:
    return trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))


# --- parsing: shared pieces ----------------------------------------------------------------------


def _times_at(text: str, pos: int, period: str | None = None) -> tuple[list[Clock], int] | None:
    """One time, or several joined by 、,， 和 (每天 8:00、20:00)."""
    first = time_of_day_at(text, pos, period)
    if first is None:
        return None
    times, end = [first[0]], first[1]
    while True:
        sep = re.compile(r"\s*(?:、|,|，|和|及)\s*").match(text, end)
        if sep is None:
            break
        more = time_of_day_at(text, sep.end(), period)
        if more is None:
            break
        times.append(more[0])
        end = more[1]
    return times, end


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


# --- recurring ------------------------------------------------------------------------------------

_WEEKDAY_CHARS = {
    "一": 1,
    "二": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "日": 0,
    "天": 0,
    "末": -1,
    "1": 1,
    "2": 2,
    "3": 3,
    "4": 4,
    "5": 5,
    "6": 6,
    "7": 0,
}
_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")

_EVERY_DAY = re.compile(r"(?:每天|每日|天天)(?:的)?")
_WORKDAYS = re.compile(r"(?:每个?)?(?:工作日|周一(?:到|至|~|-)周五|星期一(?:到|至|~|-)星期五)(?:的)?")
_WEEKEND = re.compile(r"(?:每个?)?(?:周末|双休日)(?:的)?")
_WEEKLY = re.compile(
    r"每个?(?:周|星期|礼拜)(?P<days>"
    r"[一二三四五六日天](?:(?:、|,|，|和|及|到|至|~|-)?(?:周|星期)?[一二三四五六日天])*"
    r"|[1-7](?:(?:、|,|，|到|至|~|-)[1-7])*(?![\d:：]))(?:的)?"
)
_MONTHLY = re.compile(
    r"每个?月(?:的)?\s*(?P<days>\d{1,2}(?:\s*(?:、|,|，|和)\s*\d{1,2})*|最后一天)\s*(?:日|号)?(?:的)?"
)
_EVERY_N = re.compile(
    r"每(?:隔)?\s*(?P<n>\d+|[一两二三四五六七八九十]{1,3}|半)?\s*(?:个)?\s*(?P<u>分钟|分|小时|钟头|天|日)"
)
_CRON_KEYWORD = re.compile(r"cron\s*[:：=]?\s*", re.IGNORECASE)
_CRON_FIELD = r"[0-9A-Za-z*/,\-?]+"
_CRON_FIVE = re.compile(rf"(?P<q>[\"'“”「『]?)(?P<expr>{_CRON_FIELD}(?:[ \t]+{_CRON_FIELD}){{4}})(?P=q)?(?=\s|$)")


def _weekdays(text: str) -> list[int]:
    """ "一三五" → [1, 3, 5]; "一到五" → [1..5]; crontab numbering (0 = Sunday)."""
    cleaned = re.sub(r"周|星期|礼拜|\s", "", text)
    days: list[int] = []
    i = 0
    while i < len(cleaned):
        ch = cleaned[i]
        if ch in "、,，和及":
            i += 1
            continue
        day = _WEEKDAY_CHARS.get(ch)
        if day is None or day < 0:
            raise SpecError(f"看不懂星期 {text!r}")
        if i + 2 < len(cleaned) and cleaned[i + 1] in "到至~-":
            end = _WEEKDAY_CHARS.get(cleaned[i + 2])
            if end is None or end < 0:
                raise SpecError(f"看不懂星期 {text!r}")
            lo, hi = (day or 7), (end or 7)  # Sunday last in a Chinese week
            if lo > hi:
                raise SpecError(f"星期范围 {text!r} 写反了")
            days.extend(d % 7 for d in range(lo, hi + 1))
            i += 3
            continue
        days.append(day)
        i += 1
    return sorted(set(days), key=lambda d: (d + 6) % 7)


def _cron_for(times: list[Clock], dom: str, dow: str, label: str) -> Schedule:
    minutes = {t.minute for t in times}
    if len(minutes) > 1 or any(t.second for t in times):
        raise SpecError("同一条定时群发的几个时间要在同一分钟（例如 8:00、20:00）；不同分钟请分别创建")
    # 24 (晚上十二点) is midnight: as a daily time, 0.
    hours = ",".join(str(h) for h in sorted({t.hour % 24 for t in times}))
    return Schedule(kind="cron", cron=f"{minutes.pop()} {hours} {dom} * {dow}", label=label)


def _recurring_at(text: str, pos: int, now: datetime | None, tz: tzinfo) -> tuple[Schedule, int] | None:
    # cron first: "0 8 * * *" also starts with a number.
    keyword = _CRON_KEYWORD.match(text, pos)
    five = _CRON_FIVE.match(text, keyword.end() if keyword else pos)
    if five is not None and (keyword or five.group("expr")[0] in "0123456789*"):
        expr = " ".join(five.group("expr").split())
        try:
            cron_trigger(expr, tz)
        except ValueError as exc:
            if keyword:
                raise SpecError(f"cron 表达式 {expr!r} 有误：{exc}") from None
        else:
            return Schedule(kind="cron", cron=expr, label=f"cron {expr}"), five.end()
    elif keyword and text[keyword.end() : keyword.end() + 1].strip():
        raise SpecError("cron 后面要跟 5 个字段：分 时 日 月 星期，例如 cron 0 8 * * 1-5")

    for pattern, dom, dow in ((_EVERY_DAY, "*", "*"), (_WORKDAYS, "*", "mon-fri"), (_WEEKEND, "*", "sat,sun")):
        match = pattern.match(text, pos)
        if match:
            return _with_times(text, match, dom, dow)
    match = _WEEKLY.match(text, pos)
    if match:
        days = _weekdays(match.group("days"))
        return _with_times(text, match, "*", ",".join(_CRON_DAYS[d] for d in days))
    match = _MONTHLY.match(text, pos)
    if match:
        raw = match.group("days")
        if raw == "最后一天":
            dom = "last"
        else:
            numbers = sorted({int(d) for d in re.split(r"\s*(?:、|,|，|和)\s*", raw)})
            if any(not 1 <= d <= 31 for d in numbers):
                raise SpecError(f"每月 {raw} 号不存在")
            dom = ",".join(str(d) for d in numbers)
        return _with_times(text, match, dom, "*")
    match = _EVERY_N.match(text, pos)
    if match:
        return _every_n(text, match, now, tz)
    return None


def _with_times(text: str, match: re.Match[str], dom: str, dow: str) -> tuple[Schedule, int]:
    found = _times_at(text, _skip_space(text, match.end()))
    if found is None:
        raise SpecError(f"“{match.group(0).strip()}”后面请写上时间，例如 {match.group(0).strip()} 08:00")
    times, end = found
    return _cron_for(times, dom, dow, " ".join(text[match.start() : end].split())), end


def _every_n(text: str, match: re.Match[str], now: datetime | None, tz: tzinfo) -> tuple[Schedule, int]:
    raw_n, unit = match.group("n"), match.group("u")
    end = match.end()
    label = match.group(0)
    if raw_n == "半":
        if unit not in ("小时", "钟头"):
            raise SpecError(f"看不懂 {label!r}")
        return Schedule(kind="cron", cron="0,30 * * * *", label=label), end
    n = cn_number(raw_n) if raw_n else 1
    if n < 1:
        raise SpecError(f"间隔 {label!r} 必须大于 0")
    if unit in ("分钟", "分"):
        # Too short an interval is refused by `require_min_interval`, as for every schedule.
        if 60 % n == 0:
            return Schedule(kind="cron", cron=f"*/{n} * * * *", label=label), end
        return _interval(n * 60, label, end, now, tz, None)
    if unit in ("小时", "钟头"):
        # 每小时 / 每2小时 [的]30分: on the clock, like a cron.
        minute = 0
        at = re.compile(r"\s*(?:的)?\s*(?:第)?\s*(\d{1,2})\s*分").match(text, end)
        if at:
            minute = int(at.group(1))
            if minute > 59:
                raise SpecError(f"{minute} 分不存在")
            end = at.end()
            label = text[match.start() : end]
        if 24 % n == 0:
            return Schedule(kind="cron", cron=f"{minute} {'*' if n == 1 else f'*/{n}'} * * *", label=label), end
        return _interval(n * 3600, label, end, now, tz, Clock(0, minute))
    # 每N天 + a time: anchored on the next such time.
    found = _times_at(text, _skip_space(text, end))
    if found is None:
        raise SpecError(f"“{label}”后面请写上时间，例如 {label} 08:00")
    times, end = found
    if len(times) > 1:
        raise SpecError("每隔几天的群发只能写一个时间")
    label = " ".join(text[match.start() : end].split())
    if n == 1:
        return _cron_for(times, "*", "*", label), end
    return _interval(n * 86400, label, end, now, tz, times[0])


def _interval(
    seconds: int, label: str, end: int, now: datetime | None, tz: tzinfo, at: Clock | None
) -> tuple[Schedule, int]:
    if now is None:
        # In YAML the anchor is explicit: `every:` with `start:`.
        raise SpecError(f"“{label}”需要一个起点：在配置里请用 every + start")
    local = now.astimezone(tz)
    if at is None:
        start = local.replace(second=0, microsecond=0) + timedelta(minutes=1)
    else:
        start = local.replace(hour=at.hour % 24, minute=at.minute, second=at.second, microsecond=0)
        if start <= local:
            start += timedelta(days=1)
    return Schedule(kind="interval", every_seconds=seconds, start=start.isoformat(), label=label), end


# --- one-off -------------------------------------------------------------------------------------


def _once_at(text: str, pos: int, now: datetime | None, tz: tzinfo) -> tuple[Schedule, int] | None:
    """A one-off (明天8点, 30分钟后, 周三 20:00, 2026-12-24 20:00), read by the core parser.
    Without `now` (YAML) only a full date is accepted, stored as a local time."""
    moment = moment_at(text, pos, now, tz)
    if moment is None:
        return None
    when = moment.at.replace(microsecond=0)
    if moment.relative and when.second:
        when = when.replace(second=0) + timedelta(minutes=1)  # round up to the minute
    label = " ".join(text[pos : moment.end].split())
    if now is None:
        return Schedule(kind="date", at=when.replace(tzinfo=None).isoformat(), label=label), moment.end
    return Schedule(kind="date", at=when.isoformat(), label=label), moment.end


# --- entry points ----------------------------------------------------------------------------------


def schedule_at(text: str, pos: int, now: datetime | None, tz: tzinfo) -> tuple[Schedule, int] | None:
    """The schedule written at `pos` and where it ends, or None if there is none there.
    `now` is needed for relative forms (明天, 30分钟后, a time alone); None (YAML) rejects them."""
    found = _recurring_at(text, pos, now, tz)
    if found is None:
        found = _once_at(text, pos, now, tz)
    return found


def parse_when(text: str, tz: tzinfo, now: datetime | None = None) -> Schedule:
    """A whole string as a schedule (YAML `when:`); anything left over is an error."""
    stripped = text.strip()
    found = schedule_at(stripped, 0, now, tz)
    if found is None:
        raise SpecError(f"看不懂时间 {text!r}。{WHEN_HELP}")
    schedule, end = found
    if stripped[end:].strip():
        raise SpecError(f"时间 {text!r} 后面多了 {stripped[end:].strip()!r}")
    return schedule


WHEN_HELP = (
    "时间可以写：每天08:00 · 工作日 9点半 · 每周一三五 20:00 · 每月1号 10:00 · 每2小时 · 每30分钟 · "
    "2026-12-24 20:00 · 12月24日 晚上8点 · 明天8点 · 30分钟后 · cron 0 8 * * 1-5"
)
