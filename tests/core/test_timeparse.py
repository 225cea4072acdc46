"""The one Chinese time and duration parser: many forms, in the deployment's timezone, with
clear Chinese errors for what cannot exist, is ambiguous or has passed."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.core.timeparse import (
    TimeParseError,
    cn_number,
    describe_moment,
    duration_at,
    find_moment,
    parse_duration,
    parse_moment,
    time_of_day_at,
)

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=TZ)  # a Tuesday, 10 a.m.
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def at(day: int, hour: int, minute: int = 0, month: int = 12, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=TZ)


@pytest.mark.parametrize(
    ("text", "value"),
    [("8", 8), ("十", 10), ("十二", 12), ("二十", 20), ("二十三", 23), ("两", 2), ("〇五", 5), ("一百二十", 120)],
)
def test_chinese_numerals(text: str, value: int) -> None:
    assert cn_number(text) == value


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("30分钟", 30 * MIN),
        ("三十分钟", 30 * MIN),
        ("10分", 10 * MIN),
        ("半小时", 30 * MIN),
        ("一个半小时", 90 * MIN),
        ("1小时半", 90 * MIN),
        ("两个小时", 2 * HOUR),
        ("3个钟头", 3 * HOUR),
        ("1.5小时", 90 * MIN),
        ("1小时30分钟", 90 * MIN),
        ("一刻钟", 15 * MIN),
        ("三刻钟", 45 * MIN),
        ("半天", 12 * HOUR),
        ("两天", 48 * HOUR),
        ("一周", timedelta(days=7)),
        ("90s", timedelta(seconds=90)),
        ("1h30m", 90 * MIN),
        ("2h", 2 * HOUR),
        ("1d", timedelta(days=1)),
    ],
)
def test_durations(text: str, delta: timedelta) -> None:
    assert parse_duration(text) == delta


@pytest.mark.parametrize("text", ["", "soon", "15", "分钟", "周三", "明天", "30分钟多"])
def test_what_is_not_a_duration_is_refused_in_chinese(text: str) -> None:
    with pytest.raises(TimeParseError, match="时长"):
        parse_duration(text)


def test_a_duration_is_found_inside_text_and_numbers_alone_are_not_durations() -> None:
    assert duration_at("每 30分钟 提醒", 2) == (30 * MIN, 6)
    assert duration_at("2026-12-24", 0) is None
    assert duration_at("8点", 0) is None
    assert parse_duration(90) == timedelta(seconds=90)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a time alone: the next time it comes round; 点 without 上午/下午 on a 12-hour clock
        ("九点", at(1, 21)),  # 09:00 has passed at 10:00: tonight
        ("十一点", at(1, 11)),
        ("三点", at(1, 15)),
        ("十二点", at(1, 12)),
        ("九点整", at(1, 21)),
        ("9点钟", at(1, 21)),
        ("下午三点半", at(1, 15, 30)),
        ("下午3点半", at(1, 15, 30)),
        ("晚上十点", at(1, 22)),
        ("晚上8:30", at(1, 20, 30)),
        ("8点一刻", at(1, 20, 15)),
        ("八点三刻", at(1, 20, 45)),
        ("八点零五", at(1, 20, 5)),
        ("8点15分", at(1, 20, 15)),
        ("20时15分", at(1, 20, 15)),
        ("中午十二点", at(1, 12)),
        ("中午1点", at(1, 13)),
        ("凌晨两点", at(2, 2)),
        ("晚上十二点", at(2, 0)),  # midnight at the end of today
        ("上午十一点", at(1, 11)),
        ("早上7点", at(2, 7)),  # passed today: tomorrow
        # a 24-hour clock time alone: today, or tomorrow once past
        ("20:00", at(1, 20)),
        ("20：00", at(1, 20)),
        ("7:30", at(2, 7, 30)),
        # days
        ("今天三点", at(1, 15)),
        ("今晚8点", at(1, 20)),
        ("明天8点", at(2, 8)),
        ("明天 20:00", at(2, 20)),
        ("明早七点半", at(2, 7, 30)),
        ("明晚九点", at(2, 21)),
        ("后天下午两点", at(3, 14)),
        ("大后天 9:00", at(4, 9)),
        ("周三晚上7点", at(2, 19)),
        ("星期五 20:00", at(4, 20)),
        ("礼拜天上午十点", at(6, 10)),
        ("周二 9:00", at(8, 9)),  # today is Tuesday and 9:00 has passed: next week's
        ("周二 11:00", at(1, 11)),
        ("下周一 9:00", at(7, 9)),
        ("下个周三晚上8点", at(9, 20)),
        ("12月25日20点", at(25, 20)),
        ("12-25 20:00", at(25, 20)),
        ("1月5日 9:00", at(5, 9, month=1, year=2027)),  # written in December: next January
        ("2027-01-05 09:00", at(5, 9, month=1, year=2027)),
        ("2026年12月24日 晚上8点", at(24, 20)),
        # durations from now
        ("一小时后", NOW + HOUR),
        ("1小时后", NOW + HOUR),
        ("30分钟后", NOW + 30 * MIN),
        ("半小时后", NOW + 30 * MIN),
        ("一个半小时以后", NOW + 90 * MIN),
        ("两天之后", NOW + 48 * HOUR),
        ("30分钟", NOW + 30 * MIN),  # a bare duration is a deadline that far off
        ("半小时", NOW + 30 * MIN),
        # deadline words around it
        ("截止九点", at(1, 21)),
        ("20:00截止", at(1, 20)),
        ("2小时后开奖", NOW + 2 * HOUR),
    ],
)
def test_moments(text: str, expected: datetime) -> None:
    assert parse_moment(text, NOW) == expected


@pytest.mark.parametrize("text", ["电影票", "15", "", "火锅", "明天", "周三"])
def test_what_is_not_a_time_is_none_when_looking(text: str) -> None:
    assert find_moment(text, NOW) is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("25:00", "不存在"),
        ("12:61", "不存在"),
        ("2-30 10:00", "不存在"),
        ("明天三点", "凌晨还是下午"),  # ambiguous: 03:00 or 15:00?
        ("周五两点", "凌晨还是下午"),
        ("晚上两点", "凌晨两点"),
        ("凌晨八点", "凌晨是 0 点到 6 点"),
        ("上午十五点", "上午没有 15 点"),
        ("今天早上九点", "已经过了"),
        ("这周一 9:00", "已经过了"),
        ("2026-11-30 9:00", "已经过了"),
        ("明天", "后面请写上几点"),
        ("随便什么时候", "看不懂时间"),
        ("八点 多余", "看不懂时间"),
    ],
)
def test_impossible_ambiguous_and_past_times_are_explained(text: str, problem: str) -> None:
    with pytest.raises(TimeParseError, match=problem):
        parse_moment(text, NOW)


def test_past_times_are_returned_when_the_caller_decides() -> None:
    assert parse_moment("今天早上九点", NOW, future=False) == at(1, 9)


def test_the_deployment_timezone_not_the_host_or_the_clock_offset() -> None:
    ny = ZoneInfo("America/New_York")
    utc_now = NOW.astimezone(ZoneInfo("UTC"))
    # 02:00 UTC is 21:00 the evening before in New York: 晚上八点 there has passed, so the next one
    assert parse_moment("晚上八点", utc_now, ny) == datetime(2026, 12, 1, 20, 0, tzinfo=ny)
    assert parse_moment("20:00", utc_now, TZ) == at(1, 20)


def test_time_of_day_knows_periods_and_loose_hours() -> None:
    clock, end = time_of_day_at("每天 九点一刻 提醒", 3) or (None, 0)
    assert clock is not None and (clock.hour, clock.minute, clock.loose, end) == (9, 15, True, 7)
    clock, _ = time_of_day_at("8点", 0, "晚上") or (None, 0)
    assert clock is not None and clock.hour == 20 and not clock.loose
    assert time_of_day_at("电影票", 0) is None


def test_describe_moment() -> None:
    assert describe_moment(at(1, 20), NOW) == "今天 20:00"
    assert describe_moment(at(2, 8, 30), NOW) == "明天 08:30"
    assert describe_moment(at(25, 20), NOW) == "12月25日 20:00"
    assert describe_moment(at(5, 9, month=1, year=2027), NOW) == "2027年1月5日 09:00"
