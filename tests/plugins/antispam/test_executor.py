"""The executor's policy with recording fakes (no outbox), the tracker, and the audit writer."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from bot.core.events import GroupMessage, Member
from bot.core.platform import Capability, GroupInfo
from bot.core.plugin import STOP, Permission
from bot.core.text import normalize
from bot.storage.db import Database
from plugins.antispam import AntispamState, screen
from plugins.antispam.audit import AuditEntry, AuditWriter
from plugins.antispam.checks import Message
from plugins.antispam.config import Action, AntispamConfig
from plugins.antispam.detector import Detector
from plugins.antispam.executor import Executor
from plugins.antispam.models import AntispamBan, AntispamDecision, AntispamStrike, Outcome
from plugins.antispam.store import AntispamStore, AuditRows, RecentJoin
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


def executor(services: FakeServices | None = None, earlier: int = 0) -> Executor:
    """An executor without a database; `earlier` strikes of member m in g1 in the last hours."""
    ex = Executor(services or FakeServices(), None, {})  # type: ignore[arg-type]
    for i in range(earlier):
        ex.strikes.add("g1", "m", NOW - timedelta(hours=i + 1))
    return ex


@pytest.mark.parametrize(
    ("member", "why"),
    [
        ("owner", "群主或管理员"),
        ("adm", "群主或管理员"),
        ("boss", "机器人管理员"),
        ("wxid_bot", "机器人账号"),
        ("bot2", "机器人账号"),
        ("friend", "白名单成员"),
    ],
)
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


@pytest.mark.parametrize(
    ("info", "why"),
    [
        (None, "无法确认群主和管理员身份"),
        (GroupInfo("g1", owner_id="owner", bot_can_remove=False), "我没有移出成员的权限"),
        (GroupInfo("g1", owner_id="owner", bot_can_remove=None), "无法确认我是否有移出权限"),
    ],
)
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


# --- the audit rows: written behind the chat --------------------------------------------------


@dataclass
class Sent:
    replies: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


class FakeCtx:
    """What `screen` and the executor use of a context, recording what they send."""

    def __init__(self, event: GroupMessage, sent: Sent) -> None:
        self.event, self.sent, self.text = event, sent, normalize(event.text)

    def now(self) -> datetime:
        return self.event.at

    def reply(self, text: str, *, mention: bool = False) -> None:
        self.sent.replies.append(text)

    def say(self, text: str) -> None:
        self.sent.replies.append(text)

    def remove(self, group_id: str, member_id: str, reason: str) -> None:
        self.sent.removed.append(member_id)

    async def notify_admins(self, text: str, group_id: str | None = None) -> None:
        self.sent.notices.append(text)


class HeldStore:
    """The real store behind a gate: a database whose write lock another writer holds."""

    def __init__(self, store: AntispamStore) -> None:
        self.store, self.gate, self.started = store, asyncio.Event(), 0

    async def record_actions(self, actions: list[AuditRows]) -> list[int]:
        self.started += 1
        await self.gate.wait()
        return await self.store.record_actions(actions)


def audited_services() -> FakeServices:
    services = FakeServices()
    services.config = type("C", (), {"other_bots": [], "storage": type("S", (), {"store_text": "full"})()})()
    services.groups.display_name = lambda gid, topic=None: gid  # type: ignore[attr-defined]
    return services


def screening(executor: Executor) -> AntispamState:
    return AntispamState(None, MemberTracker(timedelta(hours=1), 3), executor, None)  # type: ignore[arg-type]


async def test_screen_acts_at_once_and_the_rows_follow_in_one_transaction_each(database: Database) -> None:
    held = HeldStore(AntispamStore(database))
    ex = Executor(audited_services(), held, {})  # type: ignore[arg-type]
    state, config, sent = screening(ex), AntispamConfig(strikes={"limit": 2}), Sent()

    async def say(text: str, at: datetime) -> object:
        event = GroupMessage(at=at, group_id="g1", sender=Member("m", "小美"), text=text, message_id=f"x{at:%M}")
        return await screen(event, FakeCtx(event, sent), config, state)  # type: ignore[arg-type]

    assert await say("兼职日结，有意私聊", NOW) is STOP
    assert len(sent.replies) == 1 and "1/2" in sent.replies[0]  # warned while the write waits
    await asyncio.sleep(0.01)
    assert held.started == 1 and await AntispamStore(database).decisions() == []
    assert await say("兼职日结，有意私聊", NOW + timedelta(minutes=5)) is STOP
    assert sent.removed == ["m"] and sent.notices  # the strike counted from memory: removed
    assert ex.banned_in("m", "g2") is not None  # refused elsewhere at once
    assert held.started == 1  # the second action waits its turn behind the first

    held.gate.set()
    await ex.settle()
    store = AntispamStore(database)
    warned, removed = sorted(await store.decisions(), key=lambda d: d.id or 0)
    assert (warned.outcome, warned.strikes, removed.outcome, removed.strikes) == ("warned", 1, "removed", 2)
    async with database.session() as s:
        strikes = list((await s.exec(select(AntispamStrike))).all())
    assert [(s.member_id, s.decision_id) for s in strikes] == [("m", warned.id)]
    assert [(b.member_id, b.decision_id) for b in await store.bans()] == [("m", removed.id)]


class FlakyStore:
    def __init__(self, failures: int) -> None:
        self.failures, self.written, self.writes = failures, [], 0  # type: ignore[var-annotated]

    async def record_actions(self, actions: list[AuditRows]) -> list[int]:
        self.writes += 1
        if self.failures:
            self.failures -= 1
            raise OSError("database is locked")
        self.written.extend(decision.member_id for decision, _, _ in actions)
        return list(range(len(self.written) - len(actions), len(self.written)))


def entry(member: str) -> AuditEntry:
    return AuditEntry(
        AntispamDecision(
            at=NOW, group_id="g1", member_id=member, text="加V abc888", action="warn", outcome=Outcome.WARNED
        )
    )


async def test_what_is_queued_at_once_is_written_in_one_transaction() -> None:
    store = FlakyStore(failures=0)
    writer = AuditWriter(store, retry_after=0)  # type: ignore[arg-type]
    for member in "abc":
        writer.put(entry(member))
    await writer.settle()
    assert store.written == ["a", "b", "c"] and store.writes == 1


async def test_a_failed_write_is_retried_once_then_logged_with_its_rows(caplog: pytest.LogCaptureFixture) -> None:
    flaky = FlakyStore(failures=1)
    writer = AuditWriter(flaky, retry_after=0)  # type: ignore[arg-type]
    writer.put(entry("a"))
    writer.put(entry("b"))
    await writer.settle()
    assert flaky.written == ["a", "b"]  # in order, after one retry

    # Both tries of the batch fail, then each action alone: c fails once more and is dropped.
    broken = FlakyStore(failures=3)
    writer = AuditWriter(broken, retry_after=0)  # type: ignore[arg-type]
    writer.put(entry("c"))
    writer.put(entry("d"))
    await writer.settle()
    assert broken.written == ["d"] and writer.pending == 0 and writer.dropped == 1
    dropped = [r for r in caplog.records if "rows dropped" in r.getMessage()]
    assert len(dropped) == 1 and '"member_id": "c"' in dropped[0].getMessage()
    assert "加V abc888" in dropped[0].getMessage()  # the content is in the log


async def test_past_the_bound_actions_are_logged_not_queued(caplog: pytest.LogCaptureFixture) -> None:
    store = FlakyStore(failures=0)
    writer = AuditWriter(store, retry_after=0, max_pending=2)  # type: ignore[arg-type]
    for member in "abc":
        writer.put(entry(member))
    assert writer.pending == 2
    dropped = [r.getMessage() for r in caplog.records if "rows dropped" in r.getMessage()]
    assert len(dropped) == 1 and '"member_id": "c"' in dropped[0]
    await writer.settle()
    assert store.written == ["a", "b"] and writer.dropped == 1


async def test_an_unreachable_database_is_waited_out_and_nothing_dropped(caplog: pytest.LogCaptureFixture) -> None:
    from bot.storage.health import DatabaseHealth

    store = FlakyStore(failures=3)  # the database is away for three tries

    async def probe() -> None:
        if store.failures:
            store.failures -= 1
            raise ConnectionRefusedError("refused")

    health = DatabaseHealth(probe, "test-db", first_delay=0.01, max_delay=0.01)
    writer = AuditWriter(store, retry_after=0, health=health)  # type: ignore[arg-type]
    writer.put(entry("a"))
    writer.put(entry("b"))
    await asyncio.wait_for(writer.settle(), 10)
    assert store.written == ["a", "b"] and health.up
    assert not [r for r in caplog.records if "rows dropped" in r.getMessage()]
    assert "Traceback" not in caplog.text


async def test_shutdown_settles_the_audit_and_fails_when_rows_were_given_up_on() -> None:
    from types import SimpleNamespace

    from plugins.antispam import _shutdown

    state = object.__new__(AntispamState)
    state.slow = None
    state.reading = set()
    writer = AuditWriter(FlakyStore(failures=0), retry_after=0)  # type: ignore[arg-type]
    state.executor = SimpleNamespace(writer=writer, settle=writer.settle)  # type: ignore[assignment]
    writer.put(entry("a"))
    await _shutdown(SimpleNamespace(state=state))  # type: ignore[arg-type]
    assert writer.pending == 0 and writer.store.written == ["a"]  # type: ignore[attr-defined]

    writer.store = FlakyStore(failures=3)  # type: ignore[assignment]
    writer.put(entry("b"))
    with pytest.raises(RuntimeError, match="1 anti-spam action"):
        await _shutdown(SimpleNamespace(state=state))  # type: ignore[arg-type]
