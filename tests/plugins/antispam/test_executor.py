"""The executor's policy with recording fakes (no database, no outbox), and the tracker."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.core.events import Member
from bot.core.platform import Capability, GroupInfo
from bot.core.plugin import Permission
from plugins.antispam.checks import Message
from plugins.antispam.config import Action, AntispamConfig
from plugins.antispam.detector import Detector
from plugins.antispam.executor import Executor
from plugins.antispam.models import AntispamBan, Outcome
from plugins.antispam.store import RecentJoin
from plugins.antispam.tracker import MemberTracker

NOW = datetime(2026, 12, 1, 8, tzinfo=UTC)
AD = Detector(AntispamConfig(), stateful=False).check(Message("兼职日结，日入300+，加V：abc888"))
MILD = Detector(AntispamConfig(), stateful=False).check(Message("兼职日结，有意私聊"))


ROLES = GroupInfo("g1", owner_id="owner", admin_ids=frozenset({"adm"}), bot_can_remove=True)


@dataclass
class FakeGroups:
    info_of: GroupInfo | None = ROLES

    async def permission(self, member_id: str, group_id: str | None) -> Permission:
        if member_id == "boss":
            return Permission.BOT_ADMIN
        info = self.info_of
        return Permission.GROUP_ADMIN if info and info.is_admin(member_id) else Permission.MEMBER

    async def info(self, group_id: str) -> GroupInfo | None:
        return self.info_of


@dataclass
class FakePlatform:
    bot: Member = field(default_factory=lambda: Member("wxid_bot"))
    capabilities: frozenset[Capability] = frozenset(Capability)


@dataclass
class FakeServices:
    groups: FakeGroups = field(default_factory=FakeGroups)
    platform: FakePlatform = field(default_factory=FakePlatform)
    config: Any = field(default_factory=lambda: type("C", (), {"other_bots": ["bot2"]})())

    @property
    def bot(self) -> Member:
        return self.platform.bot


class FakeStore:
    def __init__(self, earlier: int) -> None:
        self.earlier = earlier

    async def count_strikes(self, group_id: str, member_id: str, since: datetime) -> int:
        return self.earlier


def executor(services: FakeServices | None = None, earlier: int = 0) -> Executor:
    return Executor(services or FakeServices(), FakeStore(earlier), {})  # type: ignore[arg-type]


@pytest.mark.parametrize(("member", "why"), [
    ("owner", "群主或管理员"), ("adm", "群主或管理员"), ("boss", "机器人管理员"), ("wxid_bot", "机器人账号"),
    ("bot2", "机器人账号"), ("friend", "白名单成员"),
])
async def test_protected_members_are_never_acted_on(member: str, why: str) -> None:
    config = AntispamConfig(allow_members=["friend"])
    decision = await executor().decide("g1", member, AD, config, NOW)
    assert (decision.outcome, decision.action, decision.why) == (Outcome.EXEMPT, Action.NONE, why)


async def test_clear_ads_are_removed_and_mild_ones_warned_then_escalated() -> None:
    config = AntispamConfig()
    assert (await executor().decide("g1", "m", AD, config, NOW)).outcome == Outcome.REMOVED
    first = await executor().decide("g1", "m", MILD, config, NOW)
    assert (first.outcome, first.strikes) == (Outcome.WARNED, 1)
    third = await executor(earlier=2).decide("g1", "m", MILD, config, NOW)
    assert (third.outcome, third.action, third.strikes) == (Outcome.REMOVED, Action.REMOVE, 3)


@pytest.mark.parametrize(("info", "why"), [
    (None, "无法确认群主和管理员身份"),
    (GroupInfo("g1", owner_id="owner", bot_can_remove=False), "我没有移出成员的权限"),
    (GroupInfo("g1", owner_id="owner", bot_can_remove=None), "无法确认我是否有移出权限"),
])
async def test_removal_fails_closed_to_a_warning(info: GroupInfo | None, why: str) -> None:
    services = FakeServices(groups=FakeGroups(info))
    decision = await executor(services).decide("g1", "m", AD, AntispamConfig(), NOW)
    assert (decision.outcome, decision.action) == (Outcome.FAILED_CLOSED, Action.WARN)
    assert why in decision.why


async def test_a_platform_without_removals_fails_closed() -> None:
    services = FakeServices(platform=FakePlatform(capabilities=frozenset()))
    decision = await executor(services).decide("g1", "m", AD, AntispamConfig(), NOW)
    assert decision.outcome == Outcome.FAILED_CLOSED


async def test_dry_run_only_says_what_it_would_do() -> None:
    config = AntispamConfig(dry_run=True)
    services = FakeServices(groups=FakeGroups(None))  # even where removing would fail
    assert (await executor(services).decide("g1", "m", AD, config, NOW)).outcome == Outcome.WOULD_REMOVE
    assert (await executor(services).decide("g1", "m", MILD, config, NOW)).outcome == Outcome.WOULD_WARN


def test_bans_apply_everywhere_or_in_their_group() -> None:
    ex = executor()
    ex.bans["a"] = [AntispamBan(member_id="a", group_id="g1", everywhere=True, at=NOW)]
    ex.bans["b"] = [AntispamBan(member_id="b", group_id="g1", everywhere=False, at=NOW)]
    assert ex.banned_in("a", "g9") is not None
    assert ex.banned_in("b", "g1") is not None and ex.banned_in("b", "g9") is None
    assert ex.banned_in("c", "g1") is None


def test_tracker_counts_until_established_and_forgets_leavers() -> None:
    tracker = MemberTracker(timedelta(hours=1), 3)
    assert tracker.observe("g1", "old", NOW) == (None, None)  # never seen joining: established
    tracker.joined("g1", "new", NOW)
    assert tracker.observe("g1", "new", NOW + timedelta(minutes=1)) == (timedelta(minutes=1), 0)
    assert tracker.observe("g1", "new", NOW + timedelta(minutes=2)) == (timedelta(minutes=2), 1)
    tracker.observe("g1", "new", NOW + timedelta(minutes=3))
    assert tracker.observe("g1", "new", NOW + timedelta(hours=2)) == (None, None)  # old enough, 3 sent
    assert len(tracker) == 0
    tracker.load([RecentJoin("g2", "x", NOW, 1)])
    assert tracker.observe("g2", "x", NOW + timedelta(minutes=5)) == (timedelta(minutes=5), 1)
    tracker.left("g2", "x")
    assert tracker.peek("g2", "x") is None
