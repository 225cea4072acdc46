"""Per-message structures stay bounded (issue 14, item 5): each cap has a test here."""

from __future__ import annotations

import io
import itertools
from datetime import UTC, datetime

from bot.adapters.console import ConsoleAdapter, console_world
from bot.adapters.world import World, WorldPlatform
from bot.core.clock import VirtualClock
from bot.core.events import Member

START = datetime(2026, 12, 1, 8, tzinfo=UTC)


async def test_the_console_prints_its_sends_and_keeps_none() -> None:
    clock = VirtualClock(START)
    out = io.StringIO()
    console = ConsoleAdapter(console_world(Member("wxid_bot", "小助手"), [("g1", "宝妈群")]), clock, out)
    for i in range(50):
        await console.platform.say("g1", f"第{i}条")
    assert console.platform.actions == []
    assert out.getvalue().count("小助手: 第") == 50


async def test_the_world_keeps_its_transcript_for_tests_by_default() -> None:
    world = World(Member("wxid_bot", "小助手"))
    world.add_group("g1", "宝妈群")
    platform = WorldPlatform(world, VirtualClock(START))
    await platform.say("g1", "你好")
    assert [a.text for a in platform.actions] == ["你好"]


def test_game_cooldowns_forget_ended_ones_and_stay_under_their_cap() -> None:
    from datetime import timedelta

    from plugins.games.base import Cooldowns

    cooldowns = Cooldowns(cap=100)
    for i in range(1000):  # one member a second, 30 s cooldowns: about 30 still running
        assert cooldowns.wait_left(("g1", f"m{i}"), START + timedelta(seconds=i), 30) == 0
        assert len(cooldowns) <= 31
    crowd = Cooldowns(cap=100)
    for i in range(1000):  # all at once: the cap holds, the newest are kept
        crowd.wait_left(("g1", f"m{i}"), START, 30)
        assert len(crowd) <= 100
    assert crowd.wait_left(("g1", "m999"), START, 30) == 30
    assert crowd.wait_left(("g1", "m0"), START, 30) == 0  # forgotten past the cap: may play again
    later = START + timedelta(seconds=10)
    assert 0 < cooldowns.wait_left(("g1", "m999"), later + timedelta(seconds=989), 30) <= 30


def test_new_member_tracker_holds_its_cap_and_drops_the_oldest_joins() -> None:
    from datetime import timedelta

    from plugins.antispam.tracker import MemberTracker

    tracker = MemberTracker(timedelta(hours=1), 3, cap=1000)
    for i in range(5000):
        tracker.joined(f"g{i % 7}", f"m{i}", START + timedelta(seconds=i))
        assert len(tracker) <= 1000
    assert tracker.peek("g0", "m0") is None  # the oldest joins went first
    joined_at = START + timedelta(seconds=4999)
    assert tracker.peek(f"g{4999 % 7}", "m4999") == (joined_at, 0)
    # Exact to the microsecond, counting as before; established members drop out.
    at = joined_at + timedelta(minutes=90, microseconds=7)
    for sent in range(3):
        assert tracker.observe(f"g{4999 % 7}", "m4999", at) == (at - joined_at, sent)
    assert tracker.observe(f"g{4999 % 7}", "m4999", at) == (None, None)
    assert len(tracker) == 999


def test_content_dedup_keeps_a_fixed_size_window() -> None:
    from bot.core.dispatcher import _Recent

    recent = _Recent(100)
    for i in range(1000):
        assert not recent.seen(hash(("g1", "m1", f"第{i}条")))
        assert len(recent._keys) <= 100 and len(recent._order) <= 100
    assert recent.seen(hash(("g1", "m1", "第999条")))
    assert not recent.seen(hash(("g1", "m1", "第0条")))  # long forgotten


def test_bulk_inserts_use_a_dozen_statement_sizes_whatever_the_batch() -> None:
    """sqlite3 keeps each distinct prepared statement (megabytes for a thousand rows): batch
    remainders of every size made that cache grow with every batch."""
    from sqlalchemy.dialects import sqlite

    from bot.storage.bulk import BulkStatement
    from bot.storage.models import EventLog

    columns = ("at", "type", "group_id", "member_id", "kind", "text", "message_id", "meta")
    bulk = BulkStatement(EventLog.__table__, columns, sqlite.dialect())
    sizes: set[int] = set()
    for rows in range(1, 10_001):
        chunks = bulk.chunks(rows)
        assert chunks[0][0] == 0 and chunks[-1][1] == rows
        assert all(a[1] == b[0] for a, b in itertools.pairwise(chunks))
        sizes.update(end - start for start, end in chunks)
    assert len(sizes) <= 13
    assert bulk.sql_for(3).count("(?, ?, ?, ?, ?, ?, ?, ?)") == 3
