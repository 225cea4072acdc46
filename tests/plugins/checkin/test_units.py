"""Pure pieces: config parsing, the window, what members type, naming members, ranking,
and the calendar grid."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest
from pydantic import ValidationError

from bot.core.events import Member
from plugins.checkin.config import CheckinConfig, CheckinWindow, StreakBonus
from plugins.checkin.models import CheckinRecord
from plugins.checkin.service import competition_ranks
from plugins.checkin.views import (
    TargetError,
    parse_amount,
    parse_day,
    parse_month,
    render_calendar,
    resolve_targets,
)

TODAY = date(2026, 12, 3)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("04:00", time(4, 0)),
        ("4:30", time(4, 30)),
        (240, time(4, 0)),
        (0, time(0, 0)),
        ("23:59", time(23, 59)),
    ],
)
def test_times_of_day_quoted_or_not(value: object, expected: time) -> None:
    # YAML 1.1 reads an unquoted 04:00 as 240 (base 60): both mean four o'clock.
    assert CheckinConfig.model_validate({"day_starts_at": value}).day_starts_at == expected


@pytest.mark.parametrize("value", ["24:00", "4", "04:0", "noon", 1440, -1, True])
def test_bad_times_of_day_are_refused(value: object) -> None:
    with pytest.raises(ValidationError, match="not a time of day"):
        CheckinConfig.model_validate({"day_starts_at": value})


def test_window_plain_and_across_midnight() -> None:
    morning = CheckinWindow.model_validate({"start": "05:00", "end": "10:00"})
    assert morning.contains(time(5, 0)) and morning.contains(time(9, 59, 59))
    assert not morning.contains(time(10, 0)) and not morning.contains(time(4, 59))
    night = CheckinWindow.model_validate({"start": "22:00", "end": "02:00"})
    assert night.contains(time(23, 0)) and night.contains(time(1, 59)) and not night.contains(time(12, 0))
    with pytest.raises(ValidationError, match="empty"):
        CheckinWindow.model_validate({"start": "05:00", "end": "05:00"})


def test_streak_bonus_rules() -> None:
    every, milestone = StreakBonus(every=7, points=20), StreakBonus(on_day=30, points=100)
    assert [d for d in range(1, 31) if every.pays_on(d)] == [7, 14, 21, 28]
    assert [d for d in range(1, 100) if milestone.pays_on(d)] == [30]
    for bad in ({"points": 5}, {"every": 7, "on_day": 30, "points": 5}):
        with pytest.raises(ValidationError, match="exactly one"):
            StreakBonus.model_validate(bad)


def test_config_rejects_clashing_words_and_bad_templates() -> None:
    with pytest.raises(ValidationError, match="already used by keywords"):
        CheckinConfig.model_validate({"words": {"points_board": ["打卡"]}})
    with pytest.raises(ValidationError, match="cannot contain spaces"):
        CheckinConfig.model_validate({"keywords": ["早起 打卡"]})
    with pytest.raises(ValidationError, match="attribute access is not allowed"):
        CheckinConfig.model_validate({"texts": {"success": "{member.__class__}"}})
    with pytest.raises(ValidationError, match="did you mean"):
        CheckinConfig.model_validate({"texts": {"success": "第{rnak}位"}})
    with pytest.raises(ValidationError, match="at least one"):
        CheckinConfig.model_validate({"keywords": []})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", date(2026, 12, 2)),
        ("昨天", date(2026, 12, 2)),
        ("前天", date(2026, 12, 1)),
        ("2026-11-30", date(2026, 11, 30)),
        ("2026/11/30", date(2026, 11, 30)),
        ("2026年11月30日", date(2026, 11, 30)),
        ("11-30", date(2026, 11, 30)),
        ("11月30日", date(2026, 11, 30)),
        ("12-25", date(2025, 12, 25)),
        ("2号", date(2026, 12, 2)),
        ("3", date(2026, 12, 3)),
        ("29日", date(2026, 11, 29)),
        ("31", None),
        ("2026-02-30", None),
        ("明天", None),
        ("12-03-04", None),
    ],
)
def test_parse_day(text: str, expected: date | None) -> None:
    assert parse_day(text, TODAY) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", (2026, 12)),
        ("上月", (2026, 11)),
        ("2026-11", (2026, 11)),
        ("2025年3月", (2025, 3)),
        ("11月", (2026, 11)),
        ("12", (2026, 12)),
        ("2026-13", None),
        ("十一月", None),
    ],
)
def test_parse_month(text: str, expected: tuple[int, int] | None) -> None:
    assert parse_month(text, TODAY) == expected
    assert parse_month("", date(2027, 1, 1)) == (2027, 1) and parse_month("12", date(2027, 1, 5)) == (2026, 12)


def test_parse_amount() -> None:
    assert [parse_amount(t) for t in ("10", "+10", "10分", "-3", "ten", "1.5")] == [10, 10, 10, None, None, None]


ROSTER = [Member("alice", "Alice"), Member("x1", "Mary Ann"), Member("w1", "小王"), Member("w2", "小王")]


def test_resolve_targets_by_mention_nickname_or_id() -> None:
    got = resolve_targets("@Mary Ann @Alice 10 好文", ["x1", "alice", "bot"], ROSTER, "bot")
    assert [m.id for m in got.members] == ["x1", "alice"] and got.args == ["10", "好文"]
    got = resolve_targets("@小明 5", ["stranger"], ROSTER, "bot")  # not on the roster: the id still counts
    assert [m.id for m in got.members] == ["stranger"] and got.args == ["5"]
    assert resolve_targets("alice 5 x", [], ROSTER, "bot").members == [ROSTER[0]]
    assert resolve_targets("@Alice 5", [], ROSTER, "bot").args == ["5"]
    assert resolve_targets("ALICE 5", [], ROSTER, "bot").members == [ROSTER[0]]
    assert resolve_targets("zed 5", [], [], "bot").members == [Member("zed")]  # no roster: take the id
    with pytest.raises(TargetError, match="2 位“小王”"):
        resolve_targets("小王 5", [], ROSTER, "bot")
    with pytest.raises(TargetError, match="找不到"):
        resolve_targets("Bob 5", [], ROSTER, "bot")
    with pytest.raises(TargetError, match="请 @"):
        resolve_targets("", ["bot"], ROSTER, "bot")


def test_competition_ranks() -> None:
    assert competition_ranks([9, 7, 7, 5, 5, 5, 1], lambda v: v) == [1, 2, 2, 4, 4, 4, 7]
    assert competition_ranks([], lambda v: v) == []


def test_calendar_grid() -> None:
    at = datetime(2026, 12, 1, tzinfo=UTC)

    def rec(day: int, makeup: bool = False) -> CheckinRecord:
        return CheckinRecord(group_id="g", member_id="m", day=date(2026, 12, day), at=at, makeup=makeup)

    records = {r.day: r for r in (rec(1), rec(2, makeup=True), rec(7))}
    text = render_calendar(
        "Alice",
        2026,
        12,
        records,
        date(2026, 12, 8),
        streak=0,
        longest=2,
        can_make_up=[date(2026, 12, 3)],
        makeup_note="（示例）",
    )
    lines = text.splitlines()
    assert lines[:4] == ["📅 Alice 的 2026年12月签到", "一二三四五六日", "\u3000✅🔄❌❌❌❌", "✅⬜⬜⬜⬜⬜⬜"]
    assert len(lines[2]) == len(lines[3]) == 7  # every row is a full week of cells
    assert "本月签到 3 天（含补签 1 天），漏签 4 天" in lines
    assert lines[-1] == "可补签：12-03（示例）"
