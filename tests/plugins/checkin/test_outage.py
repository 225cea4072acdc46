"""The check-in plugin during a database outage, through the whole pipeline: a check-in is
held and done when the database is back (the member told both times, no double check-in),
the invite award likewise, and other database commands are refused with a hint to retry;
no traceback per message."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bot.core.dispatcher import OUTAGE_REPLY
from plugins.checkin.service import CheckinService
from tests.harness import Chat, chat, write_config
from tests.plugins.checkin.helpers import BASE_CONFIG, WORLD, ledger_sum

INVITES = (
    BASE_CONFIG
    + """    invite: {enabled: true, points: 10}
"""
)


def refused(*_args: Any, **_kwargs: Any) -> Any:
    raise sa.exc.OperationalError("SELECT", {}, ConnectionRefusedError("connection refused"))


def texts(bot: Chat) -> list[str]:
    return [a.text or "" for a in bot.new_actions()]


async def test_check_ins_are_held_and_other_commands_refused_during_an_outage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async with chat(write_config(tmp_path, INVITES), WORLD) as bot:
        db = bot.sim.app.db
        assert db is not None
        monkeypatch.setattr(CheckinService, "check_in", refused)
        monkeypatch.setattr(CheckinService, "status", refused)
        await bot.say("g1", "alice", "签到", id="m1")  # the first failure reveals the outage
        assert any("签到已记下" in t for t in texts(bot))
        assert not db.health.up
        await bot.say("g1", "alice", "签到", id="m2")  # the same member again: still one
        assert any("已经记下了" in t for t in texts(bot))
        await bot.say("g1", "bob", "我的积分", id="m3")
        assert any(OUTAGE_REPLY in t for t in texts(bot))
        await bot.join("g1", "erin", inviter="bob")  # the invite award waits too
        monkeypatch.undo()
        db.health.succeeded()  # the health probe would see it back
        assert bot.sim.app.dispatcher is not None
        await bot.sim.app.dispatcher.runtime.hosts["checkin"].state.pending.run_now()  # the run it started
        await bot.wait("5s")
        done = texts(bot)
        assert any("刚才记下的签到已补上" in t and "OK rank=1" in t for t in done), done
        await bot.say("g1", "alice", "签到", id="m4")
        assert any("ALREADY rank=1" in t for t in texts(bot))
        assert await ledger_sum(bot, "g1", "alice") == 5
        assert await ledger_sum(bot, "g1", "bob") == 10
    assert "Traceback" not in caplog.text
    warnings = [r.getMessage() for r in caplog.records if r.name == "qunbot.storage"]
    assert len(warnings) == 2, warnings
    assert "1 check-ins held" in warnings[1] and "1 commands refused" in warnings[1]
    assert "1 invite jobs held" in warnings[1]


DROPS = (
    BASE_CONFIG.replace("bot_admins: []", "bot_admins: [owner1]")
    + """storage:
  buffer_max_events: 1000
notify: {private_to_group_admins: false, private_to_bot_admins: true}
"""
)


async def test_dropped_messages_are_reported_to_the_bot_admins(tmp_path: Path) -> None:
    async with chat(write_config(tmp_path, DROPS), WORLD) as bot:
        db = bot.sim.app.db
        assert db is not None
        db.health.failed(ConnectionRefusedError("test outage"))
        for n in range(1_100):
            await bot.say("g1", "bob", f"聊天 {n}")
        recorder = bot.sim.app.recorder
        assert recorder is not None and recorder.dropped > 0
        await bot.wait("5s")
        notices = [a.text or "" for a in bot.new_actions() if a.action == "private" and a.to == "owner1"]
        assert len(notices) == 1 and "丢弃最早的聊天消息" in notices[0], notices
        db.health.succeeded()  # what the health probe does when it sees the database again
        await asyncio.sleep(0.05)  # a real turn of the loop: the notice task runs
        await bot.wait("1m")
        notices = [a.text or "" for a in bot.new_actions() if a.action == "private" and a.to == "owner1"]
        assert len(notices) == 1 and f"丢弃了 {recorder.dropped} 条" in notices[0], notices


async def test_a_held_check_in_survives_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'bot.db'}"
    config = write_config(tmp_path, INVITES)
    async with chat(config, WORLD, db_url=url) as bot:
        db = bot.sim.app.db
        assert db is not None
        monkeypatch.setattr(CheckinService, "check_in", refused)

        async def probe_refused() -> None:
            refused()

        monkeypatch.setattr(db.health, "_probe", probe_refused)  # the database stays away till the end
        await bot.say("g1", "alice", "签到", id="m1")
        await bot.join("g1", "erin", inviter="bob")
        assert any("签到已记下" in t for t in texts(bot))
        journal = tmp_path / "data" / "bot.held-checkins.jsonl"
        assert bot.sim.app.dispatcher is not None
        await bot.sim.app.dispatcher.runtime.hosts["checkin"].state.pending.settle()
        kinds = [line.split('"kind": "')[1].split('"')[0] for line in journal.read_text(encoding="utf-8").splitlines()]
        assert kinds == ["checkin", "invite"]
        # The bot stops with the database still away (the recorder sets its events aside).
    monkeypatch.undo()
    async with chat(config, {**WORLD, "clock": "2026-12-01T09:00:00+08:00"}, db_url=url) as bot:
        assert bot.sim.app.dispatcher is not None
        await bot.sim.app.dispatcher.runtime.hosts["checkin"].state.pending.run_now()
        await bot.wait("5s")
        done = texts(bot)
        assert any("刚才记下的签到已补上" in t and "OK rank=1" in t for t in done), done
        assert await ledger_sum(bot, "g1", "alice") == 5
        assert await ledger_sum(bot, "g1", "bob") == 10
        await bot.say("g1", "alice", "签到", id="m2")
        assert any("ALREADY rank=1" in t for t in texts(bot))
    assert not journal.exists()
