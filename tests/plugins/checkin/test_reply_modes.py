"""Check-in reply modes (`replies.mode`): each, merged, silent, and the daily summary.

Three levels: the pure rendering of a window (`render_batch`), the state's routing with a
recording fake (no database), and the full pipeline through the simulator."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.core.clock import VirtualClock
from bot.core.events import GroupMessage, Member
from bot.core.scheduler import Scheduler
from plugins.checkin import CheckinState
from plugins.checkin.config import CheckinConfig, CheckinTexts, ReplySettings
from plugins.checkin.replies import Batch, Entry, Kind, render_batch
from tests.harness import chat, write_config
from tests.plugins.checkin.helpers import WORLD

TZ = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 12, 1)


def done(i: int, *, day: date = DAY, bonus: int = 0, kind: Kind = Kind.DONE) -> Entry:
    values = {"rank": i, "streak": 7 if bonus else 1, "longest": 7, "points": 5 + bonus, "base": 5, "bonus": bonus}
    values |= {"total": 5 * i, "days": 1, "time": "08:00"}
    return Entry(kind, Member(f"m{i}", f"成员{i}"), day, values)


# --- units: one window rendered ---------------------------------------------------------------


def test_a_window_is_one_message_with_a_line_per_check_in_mentioning_each() -> None:
    entries = [done(1), done(2, bonus=20), Entry(Kind.ALREADY, Member("m9", "老王"), DAY)]
    [message] = render_batch(
        entries, CheckinTexts(), mention=True, window=None, group="g", max_lines=20, max_chars=1500
    )
    lines = message.text.split("\n")
    assert lines[0] == "✅ 12月1日签到（2 人）："
    assert lines[1] == "@成员1 第1位，连续 1 天，+5 积分（共 5）"
    assert lines[2] == "@成员2 第2位，连续 7 天，+25 积分（共 10） 🎁连签 7 天奖励 20"
    assert lines[3:] == ["今天已经签到过：", "@老王"]
    assert message.mentions == ("m1", "m2", "m9")


def test_a_long_window_is_split_within_the_line_and_length_caps_never_ending_on_a_heading() -> None:
    entries = [done(i) for i in range(1, 201)]
    entries += [Entry(Kind.OUTSIDE, Member(f"x{i}", f"迟{i}")) for i in range(100)]
    messages = render_batch(
        entries, CheckinTexts(), mention=True, window=("06:00", "09:00"), group="g", max_lines=20, max_chars=500
    )
    assert 10 < len(messages) < 30  # 300 answers: a dozen or two messages, not 300
    named: list[str] = []
    for message in messages:
        lines = message.text.split("\n")
        assert len(lines) <= 20 and len(message.text) <= 500 and len(message.mentions) <= 30
        assert message.mentions, "every message names someone (a heading is never left alone)"
        assert not lines[-1].endswith("：")
        named += message.mentions
    assert named == [f"m{i}" for i in range(1, 201)] + [f"x{i}" for i in range(100)]  # each once, in order
    assert any("⏰ 不在签到时间（每天 06:00–09:00），没有记上：" in m.text for m in messages)


def test_silent_keeps_only_what_was_not_recorded() -> None:
    entries = [done(1), Entry(Kind.HELD, Member("h", "H")), Entry(Kind.OUTSIDE, Member("o", "O"))]
    entries.append(Entry(Kind.NOT_HELD, Member("n", "N")))
    [message] = render_batch(
        entries, CheckinTexts(), mention=True, window=("06:00", "09:00"), group="g", max_lines=20, max_chars=1500,
        silent=True,
    )  # fmt: skip
    assert message.mentions == ("o", "n")
    assert "签到（" not in message.text and "已记下" not in message.text
    assert "没有记下，请过几分钟再发一次" in message.text
    assert render_batch([done(1)], CheckinTexts(), mention=True, window=None, group="g", max_lines=9, max_chars=99,
                        silent=True) == []  # fmt: skip


def test_late_check_ins_from_another_day_say_which_day_and_names_without_mentions() -> None:
    entries = [done(1), done(2, day=date(2026, 11, 30), kind=Kind.LATE)]
    [message] = render_batch(
        entries, CheckinTexts(), mention=False, window=None, group="g", max_lines=20, max_chars=1500
    )
    assert message.mentions == ()
    assert "⏳ 刚才记下的签到已补上：\n11月30日 成员2 第2位" in message.text
    assert "@" not in message.text


def test_a_member_is_listed_once_and_a_repeat_in_the_window_says_nothing_more() -> None:
    batch = Batch()
    assert batch.add(done(1))
    assert not batch.add(done(1))
    assert not batch.add(Entry(Kind.ALREADY, Member("m1", "成员1")))  # checked in in this window
    assert batch.add(Entry(Kind.ALREADY, Member("m2", "成员2")))
    assert len(batch) == 2


def test_summary_time_defaults_to_nine_pm_only_for_silent_groups() -> None:
    assert ReplySettings().summary_time is None
    assert ReplySettings(mode="silent").summary_time is not None
    assert ReplySettings(mode="silent").summary_time.hour == 21  # type: ignore[union-attr]
    assert ReplySettings(mode="each", summary_at="07:30").summary_time.minute == 30  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        ReplySettings(mode="loud")  # type: ignore[arg-type]


# --- the state's routing, with a recording fake --------------------------------------------


@dataclass
class Recorded:
    replies: list[str] = field(default_factory=list)
    said: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)


class FakeCtx:
    def __init__(self, config: CheckinConfig, event: GroupMessage | None, rec: Recorded) -> None:
        self.config, self.event, self.rec = config, event, rec

    def reply(self, text: str, *, mention: bool = False) -> None:
        self.rec.replies.append(text)

    def say(self, text: str, mentions: tuple[str, ...] = ()) -> None:
        self.rec.said.append((text, tuple(mentions)))


def fake_state(config: CheckinConfig, rec: Recorded) -> tuple[CheckinState, VirtualClock, Scheduler]:
    clock = VirtualClock(datetime(2026, 12, 1, 8, 0, tzinfo=TZ))
    scheduler = Scheduler(clock)
    services = SimpleNamespace(
        clock=clock,
        scheduler=scheduler,
        outbox=SimpleNamespace(settings=SimpleNamespace(max_chars=1500)),
        groups=SimpleNamespace(display_name=lambda gid, topic="": gid),
    )
    host: Any = SimpleNamespace(
        services=services, config_for=lambda gid: config, context=lambda group_id=None: FakeCtx(config, None, rec)
    )
    state = CheckinState(host, None, None, None, None)  # type: ignore[arg-type]
    return state, clock, scheduler


def message(who: str) -> GroupMessage:
    return GroupMessage(at=datetime(2026, 12, 1, 8, 0, tzinfo=TZ), group_id="g1", sender=Member(who, who), text="签到")


@pytest.mark.parametrize("mode", ["each", "merged", "silent"])
async def test_answers_go_where_the_mode_says(mode: str) -> None:
    config = CheckinConfig(replies={"mode": mode, "window_seconds": 60})
    rec = Recorded()
    state, clock, scheduler = fake_state(config, rec)
    for i, who in enumerate(["a", "b"], start=1):
        entry = done(i)
        entry.member = Member(who, who)
        state.answer(FakeCtx(config, message(who), rec), entry, f"✅ 签到成功 {who}")  # type: ignore[arg-type]
    state.answer(FakeCtx(config, message("c"), rec), Entry(Kind.OUTSIDE, Member("c", "c")), "⏰")  # type: ignore[arg-type]
    if mode == "each":
        assert rec.replies == ["✅ 签到成功 a", "✅ 签到成功 b", "⏰"] and not scheduler.jobs()
        return
    assert rec.replies == [] and rec.said == []  # nothing until the window closes
    clock.advance(timedelta(seconds=59))
    await scheduler.run_due()
    assert rec.said == []
    clock.advance(timedelta(seconds=1))
    await scheduler.run_due()
    [(text, mentions)] = rec.said
    assert mentions == (("a", "b", "c") if mode == "merged" else ("c",))
    assert ("签到（2 人）" in text) is (mode == "merged")
    assert not state.batches and not scheduler.jobs("checkin:replies:")


async def test_shutdown_says_the_open_window_at_once() -> None:
    config = CheckinConfig()  # merged by default
    rec = Recorded()
    state, _clock, scheduler = fake_state(config, rec)
    state.answer(FakeCtx(config, message("a"), rec), done(1), "")  # type: ignore[arg-type]
    assert scheduler.get("checkin:replies:g1") is not None
    await state.flush_replies()
    assert len(rec.said) == 1 and scheduler.get("checkin:replies:g1") is None


# --- the full pipeline ------------------------------------------------------------------------

CONFIG = """
timezone: Asia/Shanghai
plugins:
  checkin:
    day_starts_at: "04:00"
    replies: {window_seconds: 60}
    overrides:
      - groups: [g2]
        replies: {mode: silent}
        window: {start: "06:00", end: "22:00"}
"""


async def test_merged_by_default_one_message_per_window(tmp_path: Path) -> None:
    async with chat(write_config(tmp_path, CONFIG), WORLD) as bot:
        for who in ["alice", "bob", "carol"]:
            await bot.say("g1", who, "签到")
            await bot.wait("10s")
        await bot.say("g1", "alice", "打卡")  # again, in the same window: nothing more
        bot.assert_silent()
        await bot.wait("1m")
        said = bot.new_actions()
        assert len(said) == 1, said
        assert said[0].mentions == ["alice", "bob", "carol"]
        assert said[0].at.startswith("2026-12-01T08:01:00")  # the first check-in + 60 s
        text = said[0].text or ""
        assert text.startswith("✅ 12月1日签到（3 人）：\n@Alice 第1位") and "@Carol 第3位" in text
        await bot.say("g1", "bob", "签到")
        await bot.say("g1", "dave", "签到")
        await bot.wait("1m")
        [later] = bot.new_actions()
        assert later.text == "✅ 12月1日签到（1 人）：\n@Dave 第4位，连续 1 天，+5 积分（共 5）\n今天已经签到过：\n@Bob"
        assert later.mentions == ["dave", "bob"]


async def test_a_busy_morning_is_a_handful_of_messages(tmp_path: Path) -> None:
    members = [f"u{i:03d}" for i in range(200)]
    world = {**WORLD, "groups": [{"id": "g1", "topic": "打卡群", "owner": "owner1", "members": members}]}
    async with chat(write_config(tmp_path, CONFIG), world) as bot:
        for who in members:
            await bot.say("g1", who, "签到")
            await bot.wait("1s")
        await bot.wait("2m")
        said = bot.said("g1")
    # 200 check-ins over 200 s: four windows, each split into messages of at most 20 lines.
    assert len(said) <= 15, [a.text for a in said]
    mentioned = [m for a in said for m in a.mentions]
    assert sorted(mentioned) == members  # everyone answered, once
    assert all(len(a.text or "") <= 1500 and "已截断" not in (a.text or "") for a in said)


async def test_silent_group_hears_only_refusals_and_the_evening_summary(tmp_path: Path) -> None:
    async with chat(write_config(tmp_path, CONFIG), WORLD) as bot:
        await bot.wait("1h")  # 09:00
        await bot.say("g2", "alice", "签到")
        await bot.say("g2", "bob", "签到")
        await bot.say("g2", "alice", "签到")
        await bot.wait("5m")
        bot.assert_silent()
        await bot.wait("13h")  # 22:05: outside g2's window; the summary came at 21:00
        [summary] = bot.new_actions()
        await bot.say("g2", "owner1", "签到")
        await bot.wait("2m")
        [refusal] = bot.new_actions()
        assert refusal.mentions == ["owner1"] and "不在签到时间（每天 06:00–22:00）" in (refusal.text or "")
    assert summary.at.startswith("2026-12-01T21:00:00")
    assert summary.text == "📋 12月1日签到小结：共 2 人签到\n🏅 最早签到：\n1. Alice 09:00\n2. Bob 09:00"
    assert not bot.said("g1")  # no check-ins there: no summary either


async def test_a_window_open_at_the_end_is_said_before_the_run_ends(tmp_path: Path) -> None:
    async with chat(write_config(tmp_path, CONFIG), WORLD) as bot:
        await bot.say("g1", "alice", "签到")
        await bot.finish()
        said = bot.assert_said("g1", contains="签到（1 人）", count=1)
    assert said.mentions == ["alice"]


async def test_each_mode_keeps_one_reply_per_check_in(tmp_path: Path) -> None:
    config = CONFIG.replace("replies: {window_seconds: 60}", "replies: {mode: each}")
    async with chat(write_config(tmp_path, config), WORLD) as bot:
        await bot.say("g1", "alice", "签到")
        await bot.say("g1", "bob", "签到")
        first, second = bot.said("g1")
    assert first.mentions == ["alice"] and "签到成功！今日第1位" in (first.text or "")
    assert second.mentions == ["bob"] and "今日第2位" in (second.text or "")


async def test_the_summary_finds_its_groups_in_the_database_when_the_platform_cannot_list_them(
    tmp_path: Path,
) -> None:
    config = CONFIG.replace("replies: {window_seconds: 60}", 'replies: {window_seconds: 60, summary_at: "12:00"}')
    async with chat(write_config(tmp_path, config), WORLD) as bot:
        await bot.say("g1", "alice", "签到")
        await bot.say("g1", "bob", "签到")

        async def no_list() -> list[object]:
            raise RuntimeError("the puppet is reconnecting")

        bot.sim.app.services.platform.groups = no_list  # type: ignore[method-assign,union-attr]
        bot.sim.app.services.groups.forget("g1")  # type: ignore[union-attr]
        await bot.wait("5h")
    [summary] = bot.said("g1", contains="签到小结")
    assert summary.at.startswith("2026-12-01T12:00:00") and "共 2 人签到" in (summary.text or "")


def test_the_readme_example_prints_as_shown() -> None:
    """`qunbot simulate config/examples/checkin-merged.yaml`, as the README shows it."""
    import os
    import re
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[3]
    readme = (repo / "README.md").read_text(encoding="utf-8")
    shown = re.search(r"`qunbot simulate config/examples/checkin-merged.yaml` prints:\n\n```\n(.*?)```", readme, re.S)
    assert shown, "the README example is gone"
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "simulate", "config/examples/checkin-merged.yaml"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(repo)},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == shown.group(1)
