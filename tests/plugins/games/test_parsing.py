"""The forgiving Chinese syntax: times, lottery and poll arguments, answers and votes."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from plugins.games.parsing import (
    ParseError,
    answer_key,
    format_when,
    has_time_marker,
    parse_duration,
    parse_lottery,
    parse_poll,
    parse_vote,
    parse_when,
    tokenize,
)

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=TZ)
HOUR = timedelta(hours=1)


def at(day: int, hour: int, minute: int = 0, month: int = 12, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=TZ)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20:00", at(1, 20)),
        ("20：00", at(1, 20)),  # full-width colon
        ("7:30", at(2, 7, 30)),  # passed today: tomorrow
        ("明天20:00", at(2, 20)),
        ("明天 20:00", at(2, 20)),
        ("后天8点", at(3, 8)),
        ("今晚8点", at(1, 20)),
        ("下午3点半", at(1, 15, 30)),
        ("中午12点", at(1, 12)),
        ("12-25 20:00", at(25, 20)),
        ("12月25日20点", at(25, 20)),
        ("2027-01-05 09:00", at(5, 9, month=1, year=2027)),
        ("1月5日 9:00", at(5, 9, month=1, year=2027)),  # January, written in December
        ("30分钟", NOW + timedelta(minutes=30)),
        ("2小时后", NOW + 2 * HOUR),
        ("1天", NOW + timedelta(days=1)),
        ("90s", NOW + timedelta(seconds=90)),
        ("截止20:00", at(1, 20)),
        ("20:00截止", at(1, 20)),
        ("30分钟后开奖", NOW + timedelta(minutes=30)),
        ("电影票", None),
        ("15", None),
        ("", None),
    ],
)
def test_parse_when(text: str, expected: datetime | None) -> None:
    assert parse_when(text, NOW) == expected


@pytest.mark.parametrize("text", ["25:00", "12:61", "2-30 10:00"])
def test_impossible_times_are_errors(text: str) -> None:
    with pytest.raises(ParseError):
        parse_when(text, NOW)


def test_times_follow_the_clock_timezone_not_the_host() -> None:
    ny = ZoneInfo("America/New_York")
    now = datetime(2026, 12, 1, 8, 0, tzinfo=ny)
    assert parse_when("20:00", now) == datetime(2026, 12, 1, 20, 0, tzinfo=ny)


def test_durations_and_markers() -> None:
    assert parse_duration("2个小时") == 2 * HOUR
    assert parse_duration("3个钟头") == 3 * HOUR
    assert parse_duration("10分") == timedelta(minutes=10)
    assert parse_duration("明天") is None
    assert has_time_marker("12:00截止") and has_time_marker("截止12:00") and has_time_marker("30分钟后")
    assert not has_time_marker("19:00")


def test_format_when() -> None:
    assert format_when(at(1, 20), NOW) == "今天 20:00"
    assert format_when(at(2, 8, 5), NOW) == "明天 08:05"
    assert format_when(at(3, 8), NOW) == "后天 08:00"
    assert format_when(at(25, 20), NOW) == "12月25日 20:00"
    assert format_when(at(5, 9, month=1, year=2027), NOW) == "2027年1月5日 09:00"


def test_tokenize_keeps_quoted_phrases() -> None:
    assert tokenize('“电影 票” 「两张 券」 "a b" c') == ["电影 票", "两张 券", "a b", "c"]


def lottery(text: str):  # type: ignore[no-untyped-def]
    return parse_lottery(text, NOW, default_keyword="参与抽奖", default_winners=1, default_duration=HOUR)


@pytest.mark.parametrize(
    ("text", "prize", "winners", "keyword", "ends_at", "full"),
    [
        ("奖品=电影票 人数=3 口令=我要抽奖 截止=20:00", "电影票", 3, "我要抽奖", at(1, 20), None),
        ("电影票 3人 满50人开奖", "电影票", 3, "参与抽奖", None, 50),
        ("奖品：电影票 截止=明天 20:00", "电影票", 1, "参与抽奖", at(2, 20), None),
        ("奖品＝电影票 名额=2人 暗号=冲鸭", "电影票", 2, "冲鸭", NOW + HOUR, None),  # default duration
        ("“电影 票” 抽2人 30分钟后开奖", "电影 票", 2, "参与抽奖", NOW + timedelta(minutes=30), None),
        ("iPhone 15 满100人 截止=12-25 20:00", "iPhone 15", 1, "参与抽奖", at(25, 20), 100),
        ("红包 2名 明天 20:00", "红包", 2, "参与抽奖", at(2, 20), None),
        ("红包 满=20 人数=2", "红包", 2, "参与抽奖", None, 20),
    ],
)
def test_parse_lottery(text, prize, winners, keyword, ends_at, full) -> None:  # type: ignore[no-untyped-def]
    req = lottery(text)
    assert (req.prize, req.winners, req.keyword, req.ends_at, req.max_participants) == (
        prize,
        winners,
        keyword,
        ends_at,
        full,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "要写奖品"),
        ("人数=3", "要写奖品"),
        ("奖品=电影票 颜色=红", "不认识的设置“颜色”"),
        ("奖品=电影票 截止=昨天", "看不懂时间"),
        ("奖品=电影票 人数=三", "中奖人数要写数字"),
        ("奖品=电影票 人数=0", "至少 1 人"),
        ("奖品=电影票 截止=2026-11-30 20:00", "已经过了"),
        ("奖品=电影票 奖品=可乐", "写了两次"),
        ("奖品=电影票 可乐", "看不懂“可乐”"),
        ("电影票 口令=" + "长" * 21, "口令要 1~20 个字"),
    ],
)
def test_bad_lottery_input_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        lottery(text)


def poll(text: str):  # type: ignore[no-untyped-def]
    return parse_poll(text, NOW, default_duration=HOUR, max_options=5)


@pytest.mark.parametrize(
    ("text", "title", "options", "ends_at"),
    [
        ("午饭吃什么 火锅 烧烤 日料 截止=12:00", "午饭吃什么", ["火锅", "烧烤", "日料"], at(1, 12)),
        ("标题=周末活动 选项=爬山/看电影,聚餐 时长=2小时", "周末活动", ["爬山", "看电影", "聚餐"], NOW + 2 * HOUR),
        ("午饭 火锅/烧烤、日料", "午饭", ["火锅", "烧烤", "日料"], NOW + HOUR),
        ("午饭？ 1.火锅 2、烧烤 C)日料", "午饭?", ["火锅", "烧烤", "日料"], NOW + HOUR),
        # Plain times are options; only a marked one is the deadline.
        (
            "开会时间 19:00 20:00 21:00 30分钟后截止",
            "开会时间",
            ["19:00", "20:00", "21:00"],
            NOW + timedelta(minutes=30),
        ),
        ("时长 1.5小时 2小时", "时长", ["1.5小时", "2小时"], NOW + HOUR),
    ],
)
def test_parse_poll(text: str, title: str, options: list[str], ends_at: datetime) -> None:
    req = poll(text)
    assert (req.title, req.options, req.ends_at) == (title, options, ends_at)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "要写投票标题"),
        ("午饭 火锅", "至少要两个选项"),
        ("午饭 a b c d e f", "选项最多 5 个"),
        ("午饭 火锅 火锅", "选项有重复"),
        ("标题=午饭 选项=a/b 多余", "看不懂“多余”"),
        ("午饭 a b 截止=25:00", "不存在"),
    ],
)
def test_bad_poll_input(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        poll(text)


def test_answers_compare_normalised() -> None:
    assert answer_key("北京！") == answer_key(" 北京 ") == "北京"
    assert answer_key("ＡＢ c") == "abc"
    assert answer_key("!!!") == "!!!"  # nothing but punctuation: kept, never empty


@pytest.mark.parametrize(
    ("text", "number"), [("2", 2), ("投2", 2), ("第 3 个", 3), ("２", 2), ("2点", None), ("两", None)]
)
def test_parse_vote(text: str, number: int | None) -> None:
    assert parse_vote(text) == number
