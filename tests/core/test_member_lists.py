"""The core's member-list reader against the platform interface (the simulator's world, with
failures injected), recording what it would hand the recorder."""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.adapters.world import World, WorldPlatform
from bot.core.clock import VirtualClock
from bot.core.events import Event, Member, MemberList
from bot.core.members import MemberLists
from bot.core.platform import PlatformError

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


class FlakyPlatform(WorldPlatform):
    """The world's platform, where some groups cannot be read or come back empty."""

    def __init__(self, world: World, clock: VirtualClock) -> None:
        super().__init__(world, clock)
        self.broken: set[str] = set()
        self.empty: set[str] = set()
        self.list_fails = False
        self.reads: list[str] = []

    async def members(self, group_id: str) -> list[Member]:
        self.reads.append(group_id)
        if group_id in self.broken:
            raise PlatformError(f"members of {group_id}: no answer")
        if group_id in self.empty:
            return []
        return await super().members(group_id)

    async def groups(self):  # type: ignore[no-untyped-def]
        if self.list_fails:
            raise PlatformError("list groups: not logged in")
        return await super().groups()


@pytest.fixture
def world() -> World:
    w = World(Member("wxid_bot", "小助手"))
    w.add_contact("alice", "Alice")
    w.add_contact("bob", "Bob")
    w.add_group("g1", "宝妈交流群", "owner1", members=["alice", "bob"])
    w.add_group("g2", "读书群", "owner1", members=["alice"])
    w.add_group("g3", "英语群", "owner1", members=["bob"])
    return w


def reader(world: World) -> tuple[MemberLists, FlakyPlatform, list[Event]]:
    clock = VirtualClock(T0)
    platform = FlakyPlatform(world, clock)
    recorded: list[Event] = []
    return MemberLists(platform, clock, recorded.append), platform, recorded


async def test_every_group_the_bot_is_in_is_listed_without_the_bot(world: World) -> None:
    lists, _platform, recorded = reader(world)
    result = await lists.refresh()
    assert (result.groups, result.members, result.failed) == (3, 7, [])
    by_group = {e.group_id: e for e in recorded if isinstance(e, MemberList)}
    assert sorted(by_group) == ["g1", "g2", "g3"]
    assert [m.id for m in by_group["g1"].members] == ["alice", "bob", "owner1"]
    assert all(e.at == T0 for e in by_group.values())
    assert all(m.id != "wxid_bot" for e in by_group.values() for m in e.members)


async def test_a_group_that_cannot_be_read_is_skipped_and_named(world: World, caplog: pytest.LogCaptureFixture) -> None:
    lists, platform, recorded = reader(world)
    platform.broken.add("g2")
    platform.empty.add("g3")  # a group always holds the bot: empty means no answer
    with caplog.at_level(logging.WARNING, logger="qunbot.members"):
        result = await lists.refresh()
    assert sorted(result.failed) == ["g2", "g3"]
    assert [e.group_id for e in recorded] == ["g1"]
    # One warning for the run, naming the groups, not one per group.
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "2 of 3" in warnings[0] and "g2" in warnings[0]


async def test_a_group_holding_only_the_bot_is_an_empty_list(world: World) -> None:
    world.leave("g3", ["bob", "owner1"])
    lists, _platform, recorded = reader(world)
    await lists.refresh(["g3"])
    assert recorded == [MemberList(at=T0, group_id="g3", members=())]


async def test_no_group_list_means_nothing_recorded(world: World, caplog: pytest.LogCaptureFixture) -> None:
    lists, platform, recorded = reader(world)
    platform.list_fails = True
    result = await lists.refresh()
    assert recorded == [] and result.failed == ["*"]
    assert "cannot list the groups" in caplog.text
    # One group by id still works (the bot joined it: no need to list them all).
    await lists.refresh(["g1"])
    assert [e.group_id for e in recorded] == ["g1"]


async def test_nothing_is_read_while_the_database_is_away(world: World) -> None:
    clock = VirtualClock(T0)
    platform = FlakyPlatform(world, clock)
    recorded: list[Event] = []
    up = False
    lists = MemberLists(platform, clock, recorded.append, storage_up=lambda: up)
    result = await lists.refresh()
    assert (recorded, platform.reads, result.failed) == ([], [], ["*"])
    up = True
    await lists.refresh()
    assert len(recorded) == 3
