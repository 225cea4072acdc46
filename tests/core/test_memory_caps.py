"""Per-message structures stay bounded (issue 14, item 5): each cap has a test here."""

from __future__ import annotations

import io
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
