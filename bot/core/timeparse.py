"""Times and durations as people type them in Chinese chat: the one parser every plugin uses.

    九点 · 下午三点半 · 晚上十点 · 8点一刻 · 20:00 · 明天8点 · 后天 9:15 · 下周三晚上7点 ·
    12月24日 20:00 · 2026-12-24 20:00 · 一小时后 · 30分钟后 · 半小时 · 一个半小时 · 1h30m

Everything here is pure: the caller passes the current time (from the injected clock) and the
deployment's timezone. A time that cannot exist (25点), that is ambiguous (明天三点: 3 a.m. or
3 p.m.?) or, through `parse_moment`, that has passed, raises `TimeParseError` whose message is
shown to the person as is (Chinese).

Rules a person can predict:
- ``20:00`` (with a colon) is the 24-hour clock; alone and already past today, it is tomorrow.
- ``九点`` alone, without 上午/下午, is the next 9 o'clock on a 12-hour clock: 09:00 if that is
  still ahead today, else 21:00 if that is, else 09:00 tomorrow.
- With a day (明天, 周三, 12月24日) and no 上午/下午, an hour from 1 to 6 is ambiguous and refused.
- 晚上十二点 is midnight at the end of that day; 晚上一点 is refused (write 凌晨一点).
- A month and day already past this year is next year's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo


class TimeParseError(ValueError):
    """A time or duration someone typed that cannot be used; the message says why, in Chinese."""


class MissingTime(TimeParseError):
    """A day with no time of day after it (明天, 周三): a deadline needs one."""


# --- numbers -----------------------------------------------------------------------------------

_CN_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
NUMBER = r"\d+(?:\.\d+)?|[零〇一二两三四五六七八九十百]+"


def cn_number(text: str) -> int:
    """12, 十二, 二十, 一百二十, 两, 〇五 → int. Raises TimeParseError on anything else."""
    if text.isdigit():
        return int(text)
    try:
        if "百" in text:
            hundreds, _, rest = text.partition("百")
            return (_CN_DIGITS[hundreds] if hundreds else 1) * 100 + (cn_number(rest.lstrip("零〇")) if rest else 0)
        if "十" in text:
            tens, _, ones = text.partition("十")
            return (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[ones] if ones else 0)
        value = 0
        for ch in text:
            value = value * 10 + _CN_DIGITS[ch]
        return value
    except KeyError:
        raise TimeParseError(f"看不懂数字“{text}”") from None


def _amount(text: str) -> float:
    return float(text) if re.fullmatch(r"\d+\.\d+", text) else float(cn_number(text))


# --- durations ---------------------------------------------------------------------------------

_UNIT_SECONDS = {
    "秒钟": 1,
    "秒": 1,
    "s": 1,
    "sec": 1,
    "secs": 1,
    "second": 1,
    "seconds": 1,
    "分钟": 60,
    "分": 60,
    "m": 60,
    "min": 60,
    "mins": 60,
    "minute": 60,
    "minutes": 60,
    "小时": 3600,
    "钟头": 3600,
    "h": 3600,
    "hr": 3600,
    "hrs": 3600,
    "hour": 3600,
    "hours": 3600,
    "天": 86400,
    "日": 86400,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "周": 604800,
    "星期": 604800,
    "礼拜": 604800,
}
# Longest unit first so "分钟" wins over "分", "seconds" over "s".
_UNITS = "|".join(sorted((re.escape(u) for u in _UNIT_SECONDS), key=len, reverse=True))
_DURATION_PART = re.compile(
    rf"(?P<n>{NUMBER}|半)?\s*(?:个)?(?P<half>半)?\s*(?P<u>{_UNITS})(?P<half2>半)?(?![a-z])"
    r"|(?P<q>[一三])刻钟",
    re.IGNORECASE,
)


def duration_at(text: str, pos: int = 0) -> tuple[timedelta, int] | None:
    """A duration starting at `pos` and where it ends: 30分钟, 2小时, 一个半小时, 半天, 一刻钟,
    1h30m, 1小时30分钟, 90s. None when there is none there. Never matches a bare number."""
    total = 0.0
    end = pos
    found = False
    while True:
        match = _DURATION_PART.match(text, end)
        if match is None:
            break
        if match.group("q"):
            total += 900 if match.group("q") == "一" else 2700
        else:
            raw, unit = match.group("n"), match.group("u").lower()
            if raw is None and not match.group("half"):
                break  # a bare unit ("分", "周三", "小时") is not a duration
            amount = 0.5 if raw == "半" else (1.0 if raw is None else _amount(raw))
            if match.group("half") or match.group("half2"):
                amount += 0.5 if raw != "半" else 0
            total += amount * _UNIT_SECONDS[unit]
        found = True
        end = match.end()
        while end < len(text) and text[end] == " ":
            end += 1
    if not found:
        return None
    while end > pos and text[end - 1] == " ":
        end -= 1
    return timedelta(seconds=total), end


def parse_duration(value: object) -> timedelta:
    """A whole value as a duration: a number (seconds), a timedelta, or any `duration_at` form."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return timedelta(seconds=float(value))
    text = str(value).strip()
    if not text:
        raise TimeParseError("时长不能为空")
    found = duration_at(text, 0)
    if found is None or found[1] != len(text):
        raise TimeParseError(f"看不懂时长“{value}”（例如 30分钟、2小时、半小时、一个半小时、90s、1h30m）")
    return found[0]


def describe_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds and seconds % 86400 == 0:
        return f"{seconds // 86400}天"
    if seconds and seconds % 3600 == 0:
        return f"{seconds // 3600}小时"
    if seconds and seconds % 60 == 0:
        return f"{seconds // 60}分钟"
    return f"{seconds}秒"


# --- time of day -------------------------------------------------------------------------------

PERIODS = "凌晨|清晨|早上|早晨|上午|中午|下午|傍晚|晚上|夜里|夜间|半夜|午夜|今早|早|晚"
_LATE = frozenset(("下午", "傍晚", "晚上", "夜里", "夜间", "晚"))
_MORNING = frozenset(("清晨", "早上", "早晨", "上午", "早"))
_NIGHT = frozenset(("晚上", "夜里", "夜间", "晚", "半夜", "午夜"))
_HOUR = r"\d{1,2}|[零〇一二两三四五六七八九十]{1,3}"
_HM = re.compile(rf"(?:(?P<p>{PERIODS})\s*)?(?P<h>\d{{1,2}})\s*[:：]\s*(?P<m>\d{{2}})(?:\s*[:：]\s*(?P<s>\d{{2}}))?")
_DIAN = re.compile(
    rf"(?:(?P<p>{PERIODS})\s*)?(?P<h>{_HOUR})\s*(?:[点點]钟?|[时時])"
    rf"(?:\s*(?:(?P<half>半)|(?P<q>一刻|三刻)|(?P<m>\d{{1,2}}|[零〇一二三四五六七八九十]{{1,3}})\s*分?))?(?:\s*整)?"
)


@dataclass(frozen=True, slots=True)
class Clock:
    """A time of day. `hour` 24 is the midnight that ends the day (晚上十二点). `loose` is a
    点-time without 上午/下午 whose hour could be read on either half of the day."""

    hour: int
    minute: int
    second: int = 0
    loose: bool = False
    said: str = ""

    def time(self) -> time:
        return time(self.hour % 24, self.minute, self.second)


def time_of_day_at(text: str, pos: int = 0, period: str | None = None) -> tuple[Clock, int] | None:
    """A time of day at `pos`: 08:00, 8:00:30, 晚上8点, 8点半, 九点一刻, 20时15分, 下午三点.
    `period` is one said before (今晚 → 晚上). None when there is no time there."""
    match = _HM.match(text, pos)
    colon = match is not None
    if match is None:
        match = _DIAN.match(text, pos)
    if match is None:
        return None
    groups = match.groupdict()
    said = match.group(0).strip()
    hour = cn_number(groups["h"])
    minute = 0
    if groups.get("half"):
        minute = 30
    elif groups.get("q"):
        minute = 15 if groups["q"] == "一刻" else 45
    elif groups.get("m"):
        minute = cn_number(groups["m"])
    second = int(groups["s"]) if groups.get("s") else 0
    if not (0 <= hour <= 24 and 0 <= minute <= 59 and 0 <= second <= 59) or (hour == 24 and (minute or second)):
        raise TimeParseError(f"时间“{said}”不存在")
    own = groups.get("p")
    said_period = "早上" if own == "今早" else own or period
    loose = False
    if said_period is None:
        loose = not colon and 1 <= hour <= 12
    elif said_period in ("凌晨",):
        if hour == 12:
            hour = 0
        elif hour > 6:
            raise TimeParseError(f"“{said}”不对：凌晨是 0 点到 6 点")
    elif said_period in _MORNING:
        if hour > 12:
            raise TimeParseError(f"“{said}”不对：{said_period}没有 {hour} 点")
    elif said_period == "中午":
        if hour < 11:
            hour += 12
    elif said_period in ("半夜", "午夜") and hour == 12:
        hour = 24
    elif said_period in _NIGHT or said_period in _LATE:
        if hour == 12 and said_period in _NIGHT:
            hour = 24
        elif said_period in _NIGHT and 1 <= hour <= 4:
            raise TimeParseError(f"“{said}”是半夜吗？请写“凌晨{groups['h']}点”或 24 小时制（如 {hour:02d}:00）")
        elif hour < 12:
            hour += 12
    return Clock(hour, minute, second, loose, said), match.end()


# --- days --------------------------------------------------------------------------------------

_FULL_DATE = re.compile(r"(?P<y>\d{4})\s*[-/.年]\s*(?P<mo>\d{1,2})\s*[-/.月]\s*(?P<d>\d{1,2})\s*[日号]?")
_MONTH_DAY = re.compile(r"(?P<mo>\d{1,2})\s*(?:[-/]|月)\s*(?P<d>\d{1,2})\s*[日号]?")
_DAY_WORD = re.compile(r"(?P<w>今天|今日|今晚|今早|明天|明日|明晚|明早|后天|大后天)(?:的)?")
_WEEKDAY = re.compile(r"(?P<which>下下|下个?|这个?|本)?(?:周|星期|礼拜)(?P<d>[一二三四五六日天1-7])(?:的)?")
_RELATIVE_TAIL = re.compile(r"\s*(?:以后|之后|后)")
_DAY_WORDS = {
    "今天": (0, None),
    "今日": (0, None),
    "今晚": (0, "晚上"),
    "今早": (0, "早上"),
    "明天": (1, None),
    "明日": (1, None),
    "明晚": (1, "晚上"),
    "明早": (1, "早上"),
    "后天": (2, None),
    "大后天": (3, None),
}
_WEEKDAY_INDEX = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}


def _make_date(year: int, month: int, day: int, said: str) -> date:
    try:
        return date(year, month, day)
    except ValueError:
        raise TimeParseError(f"日期“{said.strip()}”不存在") from None


@dataclass(frozen=True, slots=True)
class Moment:
    """One point in time found in text. `relative` for "…后" forms (30分钟后)."""

    at: datetime
    end: int
    relative: bool = False


def moment_at(text: str, pos: int, now: datetime | None, tz: tzinfo) -> Moment | None:
    """The point in time written at `pos`, or None if there is none there. `now` (from the
    injected clock) is needed for every form but a full date with a year: without it (a
    config file) those raise. The result is in `tz`; it may be in the past (callers decide)."""
    local = now.astimezone(tz) if now is not None else None
    day: date | None = None
    period: str | None = None
    end = pos
    relative = _RELATIVE_TAIL
    if (found := duration_at(text, pos)) is not None and (tail := relative.match(text, found[1])) is not None:
        if local is None:
            raise TimeParseError("配置里请写具体时间，例如 2026-12-24 20:00")
        return Moment(local + found[0], tail.end(), relative=True)
    if (match := _FULL_DATE.match(text, pos)) is not None:
        day = _make_date(int(match.group("y")), int(match.group("mo")), int(match.group("d")), match.group(0))
        end = match.end()
    elif (match := _MONTH_DAY.match(text, pos)) is not None and not _HM.match(text, pos):
        if local is None:
            raise TimeParseError("配置里的日期请写上年份，例如 2026-12-24 20:00")
        day = _make_date(local.year, int(match.group("mo")), int(match.group("d")), match.group(0))
        if day < local.date():
            day = _make_date(local.year + 1, day.month, day.day, match.group(0))  # 1月5日 in December
        end = match.end()
    elif (match := _DAY_WORD.match(text, pos)) is not None:
        if local is None:
            raise TimeParseError("配置里请写完整日期，例如 2026-12-24 20:00")
        offset, period = _DAY_WORDS[match.group("w")]
        day = local.date() + timedelta(days=offset)
        end = match.end()
    elif (match := _WEEKDAY.match(text, pos)) is not None:
        if local is None:
            raise TimeParseError("配置里请写完整日期，例如 2026-12-24 20:00")
        raw = match.group("d")
        weekday = int(raw) % 7 - 1 if raw.isdigit() else _WEEKDAY_INDEX[raw]
        if weekday < 0:
            weekday = 6  # 周7 = Sunday
        today = local.date()
        monday = today - timedelta(days=today.weekday())
        which = (match.group("which") or "").removesuffix("个")
        if which == "下下":
            day = monday + timedelta(days=14 + weekday)
        elif which == "下":
            day = monday + timedelta(days=7 + weekday)
        elif which in ("这", "本"):
            day = monday + timedelta(days=weekday)
        else:
            day = today + timedelta(days=(weekday - today.weekday()) % 7)  # the next one, today included
        end = match.end()

    time_pos = end
    while time_pos < len(text) and text[time_pos].isspace():
        time_pos += 1
    if time_pos < len(text) and text[time_pos] in "Tt" and day is not None:
        time_pos += 1
    found_time = time_of_day_at(text, time_pos, period)
    if found_time is None:
        if day is None:
            return None
        raise MissingTime(f"“{text[pos:end].strip()}”后面请写上几点，例如 {text[pos:end].strip()} 20:00")
    clock, end = found_time
    if day is None:
        if local is None:
            raise TimeParseError("配置里请写完整日期，例如 2026-12-24 20:00")
        return Moment(_next_time(clock, local, tz), end)
    if clock.loose and local is not None and day == local.date():
        return Moment(_next_time(clock, local, tz, same_day=True), end)
    if clock.loose and clock.hour <= 6:
        said = text[pos:end].strip()
        raise TimeParseError(f"“{said}”是凌晨还是下午？请写上午/下午/晚上，或 24 小时制（如 {clock.hour + 12}:00）")
    at = datetime.combine(day, clock.time(), tzinfo=tz)
    if clock.hour == 24:
        at += timedelta(days=1)
    if match is not None and match.re is _WEEKDAY and not match.group("which") and local is not None and at <= local:
        at += timedelta(days=7)  # 周三 said on a Wednesday after the time: next week's
    return Moment(at, end)


def _next_time(clock: Clock, local: datetime, tz: tzinfo, *, same_day: bool = False) -> datetime:
    """A time alone: the next time it comes round (12-hour reading for a loose 点-time).
    `same_day` (今天三点): the later reading today, even when both have passed."""
    today = local.date()
    if clock.hour == 24:
        return datetime.combine(today + timedelta(days=1), time(0, clock.minute), tzinfo=tz)
    hours = [clock.hour % 12, clock.hour % 12 + 12] if clock.loose else [clock.hour]
    for hour in hours:
        at = datetime.combine(today, time(hour, clock.minute, clock.second), tzinfo=tz)
        if at > local or (same_day and hour == hours[-1]):
            return at
    return datetime.combine(today + timedelta(days=1), time(hours[0], clock.minute, clock.second), tzinfo=tz)


_LEAD = re.compile(r"^(?:截止到?|截至|到|于|在)\s*")
_TRAIL = re.compile(r"\s*(?:开奖|截止|截至|结束|为止|之前|以前|前|整)$")


def parse_moment(text: str, now: datetime, tz: tzinfo | None = None, *, future: bool = True) -> datetime:
    """A whole string as one point in time (a deadline): ``九点``, ``下午三点半``, ``明天20:00``,
    ``一小时后``, ``30分钟`` (a bare duration counts from now), ``截止20:00``, ``20:00截止``.
    Raises TimeParseError when it is not a time, has words left over, or (with `future`)
    has passed."""
    tz = tz or now.tzinfo
    assert tz is not None, "now must be timezone-aware"
    found = find_moment(text, now, tz, strict=True)
    if found is None:
        raise TimeParseError(f"看不懂时间“{text.strip()}”。{MOMENT_HELP}")
    if future and found <= now:
        raise TimeParseError(f"时间 {describe_moment(found, now)} 已经过了")
    return found


def find_moment(text: str, now: datetime, tz: tzinfo | None = None, *, strict: bool = False) -> datetime | None:
    """Like `parse_moment`, but None when the text is not a time at all (a prize, an option,
    a day with no time unless `strict`); TimeParseError when it is a time but impossible or
    ambiguous. Past times are returned."""
    tz = tz or now.tzinfo
    assert tz is not None, "now must be timezone-aware"
    body = _LEAD.sub("", text.strip())
    while (cut := _TRAIL.sub("", body)) != body:
        body = cut
    body = body.strip()
    if not body:
        return None
    local = now.astimezone(tz)
    duration = duration_at(body, 0)
    if duration is not None and duration[1] == len(body):
        if duration[0] <= timedelta(0):
            raise TimeParseError(f"时长要大于 0：{text.strip()}")
        return local + duration[0]
    try:
        moment = moment_at(body, 0, local, tz)
    except MissingTime:
        if strict:
            raise
        return None
    if moment is None or moment.end != len(body):
        return None
    return moment.at


def describe_moment(when: datetime, now: datetime) -> str:
    """``今天 20:00``, ``明天 08:30``, ``后天 09:00``, ``12月25日 20:00`` (``2027年1月5日 20:00``)."""
    local = when.astimezone(now.tzinfo)
    days = (local.date() - now.date()).days
    clock = local.strftime("%H:%M")
    if days == 0:
        return f"今天 {clock}"
    if days == 1:
        return f"明天 {clock}"
    if days == 2:
        return f"后天 {clock}"
    if local.year == now.year:
        return f"{local.month}月{local.day}日 {clock}"
    return f"{local.year}年{local.month}月{local.day}日 {clock}"


MOMENT_HELP = (
    "可以写：20:00、九点、下午三点半、晚上十点、8点一刻、明天8点、周三晚上7点、12月25日 20:00、一小时后、30分钟"
)
