"""Pure units: the Chinese time syntax, the chat command, crontab weekdays, YAML entries."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from bot.core.scheduler import cron_trigger, crontab_weekdays
from bot.core.timeparse import describe_duration, parse_duration
from plugins.broadcast.config import BroadcastConfig
from plugins.broadcast.schedule import (
    SpecError,
    next_after,
    occurrences,
    parse_when,
    require_min_interval,
)
from plugins.broadcast.syntax import ALL, HERE, parse_command, split_messages

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 7, 30, tzinfo=SH)  # a Tuesday


@pytest.mark.parametrize(
    ("text", "cron"),
    [
        ("每天08:00", "0 8 * * *"),
        ("每天 8点", "0 8 * * *"),
        ("每天早上8点半", "30 8 * * *"),
        ("每日晚上八点", "0 20 * * *"),
        ("天天 下午3点15", "15 15 * * *"),
        ("每天 8:00、20:00", "0 8,20 * * *"),
        ("工作日 9:00", "0 9 * * mon-fri"),
        ("周一到周五 9点", "0 9 * * mon-fri"),
        ("周末 10点", "0 10 * * sat,sun"),
        ("每周一三五 20:00", "0 20 * * mon,wed,fri"),
        ("每周一三五20:00", "0 20 * * mon,wed,fri"),
        ("每周1,3,5 20:00", "0 20 * * mon,wed,fri"),
        ("每周一到五 8:00", "0 8 * * mon,tue,wed,thu,fri"),
        ("每周日 九点一刻", "15 9 * * sun"),
        ("每月1号 10点", "0 10 1 * *"),
        ("每月1、15日 9:00", "0 9 1,15 * *"),
        ("每月最后一天 18:00", "0 18 last * *"),
        ("每小时", "0 * * * *"),
        ("每小时30分", "30 * * * *"),
        ("每2小时", "0 */2 * * *"),
        ("每30分钟", "*/30 * * * *"),
        ("每半小时", "0,30 * * * *"),
        ("cron 0 8 * * 1-5", "0 8 * * 1-5"),
        ('cron: "0 8 * * 1-5"', "0 8 * * 1-5"),
        ("0 8 * * *", "0 8 * * *"),
    ],
)
def test_recurring_phrases_become_cron(text: str, cron: str) -> None:
    schedule = parse_when(text, SH, NOW)
    assert (schedule.kind, schedule.cron) == ("cron", cron)
    cron_trigger(cron, SH)  # and APScheduler accepts it


@pytest.mark.parametrize(
    ("text", "at"),
    [
        ("2026-12-24 20:00", "2026-12-24T20:00:00+08:00"),
        ("2026/12/24 20:00:30", "2026-12-24T20:00:30+08:00"),
        ("2026年12月24日 晚上8点", "2026-12-24T20:00:00+08:00"),
        ("12月24日 20:00", "2026-12-24T20:00:00+08:00"),
        ("11-30 8:00", "2027-11-30T08:00:00+08:00"),  # already past this year: next year
        ("明天8点", "2026-12-02T08:00:00+08:00"),
        ("今晚8点", "2026-12-01T20:00:00+08:00"),
        ("后天 9:15", "2026-12-03T09:15:00+08:00"),
        ("30分钟后", "2026-12-01T08:00:00+08:00"),
        ("2小时后", "2026-12-01T09:30:00+08:00"),
        ("20:00", "2026-12-01T20:00:00+08:00"),
        ("07:00", "2026-12-02T07:00:00+08:00"),  # a time alone that has passed: tomorrow
    ],
)
def test_one_off_phrases(text: str, at: str) -> None:
    schedule = parse_when(text, SH, NOW)
    assert (schedule.kind, schedule.at) == ("date", at)


def test_intervals_are_anchored_so_every_process_computes_the_same_times() -> None:
    every_45 = parse_when("每45分钟", SH, NOW)
    assert (every_45.kind, every_45.every_seconds, every_45.start) == ("interval", 2700, "2026-12-01T07:31:00+08:00")
    every_3_days = parse_when("每3天 08:00", SH, NOW)
    assert every_3_days.start == "2026-12-01T08:00:00+08:00" and every_3_days.every_seconds == 3 * 86400
    trigger = every_3_days.trigger(SH)
    fires = list(occurrences(trigger, NOW, NOW + timedelta(days=7)))
    assert [f.strftime("%m-%d %H:%M") for f in fires] == ["12-01 08:00", "12-04 08:00", "12-07 08:00"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("每天", "请写上时间"),
        ("每天 8:00、20:30", "同一分钟"),
        ("2026-02-30 8:00", "不存在"),
        ("25:00", "不存在"),
        ("每周一 25点", "不存在"),
        ("cron 0 8 * *", "5 个字段"),
        ("随便什么时候", "看不懂"),
        ("每天08:00 多余", "多了"),
    ],
)
def test_bad_times_get_a_chinese_explanation(text: str, problem: str) -> None:
    with pytest.raises(SpecError, match=problem):
        parse_when(text, SH, NOW)


def test_relative_times_need_a_now_so_yaml_rejects_them() -> None:
    with pytest.raises(SpecError, match="完整日期"):
        parse_when("明天8点", SH, None)
    assert parse_when("2026-12-24 20:00", SH, None).at == "2026-12-24T20:00:00"  # local, tz applied later


def test_crontab_weekdays_count_from_sunday() -> None:
    """APScheduler 3.x's from_crontab counts Monday = 0; the core's cron_trigger follows crontab."""
    assert crontab_weekdays("1-5") == "mon,tue,wed,thu,fri"
    assert crontab_weekdays("0") == crontab_weekdays("7") == "sun"
    assert crontab_weekdays("5-7") == "fri,sat,sun"
    assert crontab_weekdays("*/2") == "tue,thu,sat,sun"
    assert crontab_weekdays("mon-fri") == "mon-fri" and crontab_weekdays("*") == "*"
    monday = cron_trigger("0 8 * * 1", SH).get_next_fire_time(None, NOW)
    assert monday is not None and monday.strftime("%a %m-%d") == "Mon 12-07"
    with pytest.raises(ValueError, match="bad weekday"):
        cron_trigger("0 8 * * 8", SH)


def test_durations() -> None:
    assert parse_duration("10m") == timedelta(minutes=10)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("30分钟") == timedelta(minutes=30)
    assert parse_duration(90) == timedelta(seconds=90)
    with pytest.raises(SpecError):
        parse_duration("soon")


def test_next_after_steps_past_the_given_occurrence() -> None:
    trigger = cron_trigger("0 8 * * *", SH)
    first = trigger.get_next_fire_time(None, NOW)
    assert first is not None and next_after(trigger, first) == first + timedelta(days=1)


# --- the chat command -----------------------------------------------------------------------


def test_command_parts_in_any_order_and_multiline_content() -> None:
    parsed = parse_command("每天08:00 群=g1,g2、宝妈群 早上好 {group}！\n今天是{date}\n---\n第二条", NOW, SH)
    assert parsed.schedule.cron == "0 8 * * *"
    assert parsed.targets == ["g1", "g2", "宝妈群"]
    assert parsed.messages == ["早上好 {group}！\n今天是{date}", "第二条"]
    parsed = parse_command("全部群 宽限=30分钟 2026-12-24 20:00 圣诞快乐🎄 || 新年也快乐", NOW, SH)
    assert parsed.targets == [ALL] and parsed.grace == timedelta(minutes=30)
    assert parsed.schedule.at == "2026-12-24T20:00:00+08:00"
    assert parsed.messages == ["圣诞快乐🎄", "新年也快乐"]
    parsed = parse_command("cron 0 8 * * 1-5 分组=learning 打卡啦", NOW, SH)
    assert parsed.targets == ["set:learning"] and parsed.schedule.cron == "0 8 * * 1-5"
    parsed = parse_command("明天8点 本群 开会", NOW, SH)
    assert parsed.targets == [HERE]
    parsed = parse_command("每天8点 全部群友注意休息", NOW, SH)  # "全部群友" is content, not a target
    assert parsed.targets is None and parsed.messages == ["全部群友注意休息"]


@pytest.mark.parametrize(
    ("text", "problem"), [("群=g1 早上好", "没有看到时间"), ("每天08:00 群=g1", "没有要发送的内容")]
)
def test_command_without_time_or_content(text: str, problem: str) -> None:
    with pytest.raises(SpecError, match=problem):
        parse_command(text, NOW, SH)


def test_split_messages_ignores_empty_parts() -> None:
    assert split_messages("a\n---\n\n——\nb ||  || c") == ["a", "b", "c"]


# --- YAML entries ---------------------------------------------------------------------------


def test_yaml_entries_validate() -> None:
    cfg = BroadcastConfig.model_validate(
        {
            "default_grace": "15m",
            "broadcasts": {
                "morning": {"cron": "0 8 * * 1-5", "to": "all", "text": "早上好 {group}"},
                "evening": {"when": "每天 晚上9点", "to": ["g1", "set:learning"], "messages": ["a", "b {date}"]},
                "xmas": {"at": "2026-12-24 20:00", "to": "g1", "text": "圣诞快乐", "grace": "1h"},
                "ticker": {"every": "2h", "to": "g1,g2", "text": "tick"},
            },
        }
    )
    assert cfg.default_grace == timedelta(minutes=15)
    assert cfg.broadcasts["morning"].to == [ALL]
    assert cfg.broadcasts["ticker"].to == ["g1", "g2"]
    assert cfg.broadcasts["evening"].schedule(SH).cron == "0 21 * * *"
    xmas = cfg.broadcasts["xmas"].schedule(SH).trigger(SH).get_next_fire_time(None, NOW)
    assert xmas == datetime(2026, 12, 24, 20, 0, tzinfo=SH)
    ticker = cfg.broadcasts["ticker"].schedule(SH).trigger(SH)
    assert ticker.get_next_fire_time(None, NOW) == datetime(2026, 12, 1, 8, 0, tzinfo=SH)  # even local hours


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"cron": "0 8 * * *", "every": "1h", "to": "g1", "text": "x"}, "exactly one of"),
        ({"to": "g1", "text": "x"}, "exactly one of"),
        ({"cron": "0 25 * * *", "to": "g1", "text": "x"}, "not a cron expression.*25"),
        ({"cron": "0 8 * * *", "to": "g1"}, "content"),
        ({"cron": "0 8 * * *", "to": "g1", "text": "hi {user.__class__}"}, "attribute access"),
        ({"cron": "0 8 * * *", "to": "g1", "text": "hi {name}"}, "unknown placeholder"),
        ({"when": "明天8点", "to": "g1", "text": "x"}, "完整日期"),
        ({"at": "2026-12-24", "to": "g1", "text": "x"}, "date-time"),
        ({"cron": "0 8 * * *", "to": [], "text": "x"}, "list the groups"),
        ({"cron": "0 8 * * *", "to": "g1", "text": "x", "grace": "soon"}, "看不懂时长"),
    ],
)
def test_bad_yaml_entries(entry: dict[str, object], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        BroadcastConfig.model_validate({"broadcasts": {"b": entry}})


def test_names_must_not_look_like_chat_ids() -> None:
    with pytest.raises(ValidationError, match="start with a letter"):
        BroadcastConfig.model_validate({"broadcasts": {"12": {"cron": "0 8 * * *", "to": "g1", "text": "x"}}})


@pytest.mark.parametrize(
    ("text", "gap"),
    [
        ("cron * * * * *", "1分钟"),
        ("cron */2 * * * *", "2分钟"),
        ("cron 0,1 8 * * *", "1分钟"),
        ("cron 59 23,0 * * 1", "1小时"),  # not refused: 23:59 → 00:59
        ("每2分钟", "2分钟"),
        ("每3分钟", "3分钟"),
    ],
)
def test_the_shortest_gap_of_a_schedule(text: str, gap: str) -> None:
    assert describe_duration(parse_when(text, SH, NOW).shortest_gap()) == gap  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text", ["cron * * * * *", "cron */2 * * * *", "cron 0,3 8 * * *", "每2分钟", "cron 59,0 23,0 * * *"]
)
def test_every_schedule_under_the_minimum_is_refused_cron_included(text: str) -> None:
    with pytest.raises(SpecError, match="间隔至少 5分钟"):
        require_min_interval(parse_when(text, SH, NOW), timedelta(minutes=5))


@pytest.mark.parametrize(
    "text", ["cron */5 * * * *", "每5分钟", "每半小时", "cron 0 8 * * 1-5", "每天 8:00、20:00", "2026-12-24 20:00"]
)
def test_schedules_at_or_over_the_minimum_pass(text: str) -> None:
    require_min_interval(parse_when(text, SH, NOW), timedelta(minutes=5))
