"""Which groups the bot is in (`GroupDirectory.present`): cached briefly, None when the
platform cannot say, and forgotten when the bot joins or leaves a group."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.adapters.world import World, WorldPlatform
from bot.config.models import BotConfig
from bot.core.clock import VirtualClock
from bot.core.events import Member
from bot.core.groups import PRESENT_TTL, GroupDirectory

T0 = datetime(2026, 12, 1, 8, tzinfo=ZoneInfo("Asia/Shanghai"))


class CountingPlatform(WorldPlatform):
    calls = 0
    fail = False

    async def groups(self):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.fail:
            raise RuntimeError("puppet reconnecting")
        return await super().groups()


def setup() -> tuple[GroupDirectory, CountingPlatform, World, VirtualClock]:
    clock = VirtualClock(T0)
    world = World(Member("wxid_bot", "小助手"))
    world.add_group("g1", "宝妈群")
    world.add_group("g2", "读书群")
    platform = CountingPlatform(world, clock)
    return GroupDirectory(BotConfig(), platform, clock), platform, world, clock


async def test_the_list_is_read_at_most_once_a_minute_unless_fresh_or_forgotten() -> None:
    groups, platform, world, clock = setup()
    assert await groups.present() == {"g1", "g2"}
    world.leave("g2", ["wxid_bot"])
    assert await groups.present() == {"g1", "g2"} and platform.calls == 1  # cached
    assert await groups.present(fresh=True) == {"g1"} and platform.calls == 2
    world.join("g2", ["wxid_bot"])
    groups.forget("g2")  # what the dispatcher does when the bot joins or leaves
    assert await groups.present() == {"g1", "g2"} and platform.calls == 3
    clock.advance(PRESENT_TTL + timedelta(seconds=1))
    await groups.present()
    assert platform.calls == 4


async def test_none_when_the_platform_fails_or_lists_nothing() -> None:
    groups, platform, world, _clock = setup()
    platform.fail = True
    assert await groups.present() is None
    platform.fail = False
    world.leave("g1", ["wxid_bot"])
    world.leave("g2", ["wxid_bot"])
    assert await groups.present(fresh=True) is None  # "not loaded yet" more likely than "in none"
