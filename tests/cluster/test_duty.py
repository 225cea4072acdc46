"""Duty leases on PostgreSQL: several accounts (each with its own engine, as separate processes
would have) in one group. Exactly one acts; a dead one is replaced within the TTL; a stale holder
is refused by its fencing token; pinned duty is respected.

Leases here are short (lease_ttl 1.5 s: renewals every 0.5 s, rows valid 1 s after each) and the
rounds are driven by the test (`tick()`), so which account renews when is explicit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.cluster import ClusterDuty, ClusterSettings, ClusterUnavailable
from bot.core.events import BotJoinedGroup, BotLeftGroup, GroupMessage, Member, PrivateMessage
from bot.storage.db import Database
from tests.conftest import _empty_pg_database, run_in_thread

pytestmark = pytest.mark.postgres

FAST = ClusterSettings(enabled=True, lease_ttl=1.5, safety_margin=0.2)


@pytest.fixture
def pg_url(pg_module_url: str) -> Iterator[str]:
    yield pg_module_url
    run_in_thread(lambda: _empty_pg_database(pg_module_url))


@pytest.fixture
async def accounts(pg_url: str) -> AsyncIterator[Callable[..., Awaitable[ClusterDuty]]]:
    """A factory of started accounts, each on its own engine; all stopped (not released) at the end."""
    db = await Database.open(pg_url)  # migrates
    await db.close()
    engines: list[AsyncEngine] = []
    duties: list[ClusterDuty] = []

    async def make(
        account: str,
        groups: tuple[str, ...] = ("g1",),
        settings: ClusterSettings = FAST,
        monotonic: Callable[[], float] | None = None,
    ) -> ClusterDuty:
        engine = create_async_engine(pg_url)
        engines.append(engine)
        duty = ClusterDuty(engine, account, settings, monotonic=monotonic)
        await duty.start(groups, renew_in_background=False)
        duties.append(duty)
        return duty

    yield make
    for duty in duties:
        if duty._task is not None:
            duty._task.cancel()
    for engine in engines:
        await engine.dispose()


async def tick_all(*duties: ClusterDuty) -> None:
    for duty in duties:
        await duty.tick()


def on_duty(duties: tuple[ClusterDuty, ...] | list[ClusterDuty], group: str = "g1") -> list[str]:
    return [d.account_id for d in duties if d.on_duty(group)]


async def wait_for_takeover(alive: list[ClusterDuty], group: str = "g1") -> tuple[str, float]:
    """Tick the living accounts every renewal period (as their background tasks would) until
    one of them is on duty; returns who and after how many seconds."""
    started = time.monotonic()
    while time.monotonic() - started < 10:
        await tick_all(*alive)
        holders = on_duty(alive, group)
        if holders:
            return holders[0], time.monotonic() - started
        await asyncio.sleep(FAST.renew_every)
    raise AssertionError("nobody took over within 10 s")


def message(group: str = "g1", n: int = 1) -> GroupMessage:
    from datetime import UTC, datetime

    return GroupMessage(
        at=datetime(2026, 12, 1, tzinfo=UTC),
        group_id=group,
        sender=Member("alice", "Alice"),
        text="签到",
        message_id=f"m{n}",
    )


# --- settings ------------------------------------------------------------------------------


def test_settings_reject_unknown_keys_and_a_margin_longer_than_a_renewal() -> None:
    with pytest.raises(ValidationError, match="extra"):
        ClusterSettings.model_validate({"enabled": True, "ttl": 30})
    with pytest.raises(ValidationError, match="less than a third of lease_ttl"):
        ClusterSettings(lease_ttl=30, safety_margin=10)
    with pytest.raises(ValidationError, match="must not be empty"):
        ClusterSettings(pinned={"g1": " "})
    default = ClusterSettings()
    assert (default.lease_ttl, default.renew_every, default.lease_seconds) == (30.0, 10.0, 20.0)


async def test_sqlite_is_refused_with_a_clear_error(tmp_path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    try:
        with pytest.raises(ClusterUnavailable, match="needs PostgreSQL"):
            ClusterDuty(engine, "bot_a", FAST)
    finally:
        await engine.dispose()


# --- exactly one on duty -------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3])
async def test_exactly_one_account_is_on_duty(accounts, n: int) -> None:
    duties = [await accounts(f"bot_{i}") for i in range(n)]
    for _ in range(3):
        await tick_all(*duties)
        assert len(on_duty(duties)) == 1
    # The first one to claim keeps it; the others only record.
    assert on_duty(duties) == ["bot_0"]
    assert await duties[0].acts_in(message()) is True
    assert [await d.acts_in(message()) for d in duties[1:]] == [False] * (n - 1)
    # Only the holder has a token to stamp, and only its actions pass the fence.
    token = duties[0].token("g1")
    assert token == 1
    assert [d.token("g1") for d in duties[1:]] == [None] * (n - 1)
    assert await duties[0].may_act("g1", token) is True
    assert [await d.may_act("g1", token) for d in duties[1:]] == [False] * (n - 1)
    # Private messages and the bot's own joins are every account's own business.
    private = PrivateMessage(at=message().at, sender=Member("alice", "Alice"), text="hi", message_id="p1")
    assert [await d.acts_in(private) for d in duties] == [True] * n


async def test_renewals_keep_the_token(accounts) -> None:
    a = await accounts("bot_a")
    for _ in range(3):
        await asyncio.sleep(FAST.renew_every)
        await a.tick()
    assert a.duties == {"g1": 1}


# --- takeover ------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3])
async def test_killed_holder_is_replaced_within_the_ttl(accounts, n: int) -> None:
    duties = [await accounts(f"bot_{i}") for i in range(n)]
    await tick_all(*duties)
    holder = duties[0]
    assert on_duty(duties) == [holder.account_id]
    # Killed right after a renewal: it never ticks again (its rows stay as they were).
    await holder.tick()
    successor, seconds = await wait_for_takeover(duties[1:])
    assert seconds <= FAST.lease_ttl + 0.3  # 0.3 s for the test's own round trips
    assert seconds >= FAST.lease_seconds - 0.3  # and not before its lease ran out
    new = next(d for d in duties if d.account_id == successor)
    assert new.token("g1") == 2
    # Still exactly one among the living.
    await tick_all(*duties[1:])
    assert on_duty(duties[1:]) == [successor]


async def test_stale_holder_that_wakes_up_late_is_refused(accounts) -> None:
    a = await accounts("bot_a")
    b = await accounts("bot_b")
    old = a.token("g1")
    assert old == 1 and b.token("g1") is None
    # bot_a's process is paused; bot_b takes over once the lease has run out in the database.
    _, _ = await wait_for_takeover([b])
    assert b.token("g1") == old + 1
    # bot_a wakes up with its old cache and token. Its clock counted the pause, so its local
    # deadlines (account and duty) have passed: it refuses without asking anyone.
    assert await a.may_act("g1", old) is False
    assert a.on_duty("g1") is False
    assert await b.may_act("g1", old + 1) is True
    # Its next round re-registers the account but finds the duty taken: the cache entry goes,
    # and an action queued under the old token stays refused. bot_b keeps the duty.
    await a.tick()
    await b.tick()
    assert a.token("g1") is None
    assert await a.may_act("g1", old) is False
    assert on_duty([a, b]) == ["bot_b"]


async def test_stale_holder_is_refused_by_the_database_even_if_its_clock_lies(accounts) -> None:
    """The fence itself, without the local deadline's help: bot_a's clock says its lease has
    only just run out (its cache sends it to the database), but the database has moved on: the
    account lease is renewed (nobody else serves bot_a), the duty under the old token is not."""
    fake_now = [0.0]
    a = await accounts("bot_a", monotonic=lambda: fake_now[0])
    b = await accounts("bot_b")
    old = a.token("g1")
    await wait_for_takeover([b])
    fake_now[0] = a._held["g1"].deadline  # just past its deadline by its (lying) clock
    assert await a.may_act("g1", old) is False
    assert a.token("g1") is None


async def test_a_holder_that_is_only_late_renews_in_the_database(accounts) -> None:
    """Past its local deadline but nobody took over (no other account ticked): `may_act`
    renews in the database, keeping its token."""
    fake_now = [0.0]
    a = await accounts("bot_a", monotonic=lambda: fake_now[0])
    token = a.token("g1")
    fake_now[0] = a._held["g1"].deadline  # late by the local clock; in the database it is still valid
    assert await a.may_act("g1", token) is True
    assert a.token("g1") == token


async def test_the_holder_leaving_the_group_hands_over_at_once(accounts) -> None:
    a = await accounts("bot_a")
    b = await accounts("bot_b")
    left = BotLeftGroup(at=message().at, group_id="g1")
    assert await a.acts_in(left) is True  # its own leave is its own business
    assert a.on_duty("g1") is False  # stops acting at once...
    await a.tick()  # ...and the next round releases the lease (after the safety margin)
    await asyncio.sleep(FAST.safety_margin + 0.05)
    await b.tick()
    assert b.duties == {"g1": 2}
    async with b.engine.connect() as conn:
        members = (await conn.execute(sa.text("SELECT account_id FROM cluster_members WHERE group_id = 'g1'"))).all()
    assert [r.account_id for r in members] == ["bot_b"]


async def test_an_account_that_joins_later_takes_part(accounts) -> None:
    a = await accounts("bot_a", groups=())
    b = await accounts("bot_b", groups=())
    joined = BotJoinedGroup(at=message().at, group_id="g2")
    assert await b.acts_in(joined) is True
    await b.tick()
    assert b.duties == {"g2": 1}
    # bot_a sees a message in g2: it is in the group, but bot_b is on duty: record only.
    assert await a.acts_in(message("g2")) is False
    await a.tick()
    assert a.groups == frozenset({"g2"}) and on_duty([a, b], "g2") == ["bot_b"]


async def test_the_first_message_from_a_group_nobody_serves_is_answered(accounts) -> None:
    """A group the account did not know (the platform could not list it at start): its first
    message claims the duty there and then, rather than only being recorded."""
    a = await accounts("bot_a", groups=())
    assert await a.acts_in(message("g3")) is True
    assert a.duties == {"g3": 1}


async def test_a_late_round_is_made_up_on_the_message_path(accounts) -> None:
    fake_now = [0.0]
    a = await accounts("bot_a", monotonic=lambda: fake_now[0])
    fake_now[0] = a._held["g1"].deadline  # the background renewal is late
    assert a.on_duty("g1") is False
    assert await a.acts_in(message()) is True  # renewed in the database: still ours
    assert a.duties == {"g1": 1}


async def test_a_second_process_for_the_same_account_is_refused(accounts) -> None:
    await accounts("bot_a")
    with pytest.raises(ClusterUnavailable, match="already served by another running process"):
        await accounts("bot_a")


async def test_a_process_that_loses_its_account_lease_stops_acting(accounts, pg_url: str) -> None:
    a = await accounts("bot_a")
    token = a.token("g1")
    # Another process for the same account starts after bot_a's lease ran out (bot_a paused).
    await asyncio.sleep(FAST.lease_seconds + 0.1)
    a2 = await accounts("bot_a")
    assert a2.instance != a.instance
    await a.tick()  # bot_a wakes up: its account is served elsewhere
    assert a.on_duty("g1") is False and await a.may_act("g1", token) is False
    assert a2.duties == {"g1": token + 1}


# --- pinned duty ---------------------------------------------------------------------------


async def test_pinned_account_takes_the_duty_when_it_runs_and_hands_it_back_when_it_dies(accounts) -> None:
    pinned = ClusterSettings(enabled=True, lease_ttl=1.5, safety_margin=0.2, pinned={"g1": "bot_p"})
    other = await accounts("bot_o", settings=pinned)
    assert other.duties == {"g1": 1}  # the pinned account is not running: the other serves
    p = await accounts("bot_p", settings=pinned)
    assert p.on_duty("g1") is False  # the other's lease is still valid: no overlap
    await other.tick()  # sees the pinned account running in g1: stops, releases
    assert other.on_duty("g1") is False
    await asyncio.sleep(FAST.safety_margin + 0.05)
    await p.tick()
    assert p.duties == {"g1": 2}
    await other.tick()
    assert on_duty([other, p]) == ["bot_p"]
    # The pinned account dies: the other takes over within the TTL, as for any holder.
    successor, seconds = await wait_for_takeover([other])
    assert successor == "bot_o" and seconds <= FAST.lease_ttl + 0.3
    assert other.duties == {"g1": 3}


async def test_a_pinned_account_that_leaves_the_group_hands_it_over(accounts) -> None:
    pinned = ClusterSettings(enabled=True, lease_ttl=1.5, safety_margin=0.2, pinned={"g1": "bot_p"})
    p = await accounts("bot_p", settings=pinned)
    other = await accounts("bot_o", settings=pinned)
    assert p.duties == {"g1": 1} and other.duties == {}
    assert await p.acts_in(BotLeftGroup(at=message().at, group_id="g1")) is True
    await p.tick()  # still running, but no longer in g1: the pin no longer holds the group
    await asyncio.sleep(FAST.safety_margin + 0.05)
    await other.tick()
    assert other.duties == {"g1": 2}
    await p.tick()
    assert p.duties == {} and p.groups == frozenset()


async def test_pin_to_an_account_not_in_the_group_does_not_leave_it_unserved(accounts) -> None:
    pinned = ClusterSettings(enabled=True, lease_ttl=1.5, safety_margin=0.2, pinned={"g1": "bot_p"})
    await accounts("bot_p", groups=("g2",), settings=pinned)  # running, but not in g1
    other = await accounts("bot_o", settings=pinned)
    assert other.duties == {"g1": 1}


# --- background renewals and shutdown ------------------------------------------------------


async def test_background_renewals_keep_the_duty_and_stop_hands_it_over(accounts, pg_url: str) -> None:
    a = await accounts("bot_a")
    b = await accounts("bot_b")
    a._task = asyncio.create_task(a._run())
    await asyncio.sleep(FAST.lease_ttl * 2)  # several lease lengths: only renewals keep it
    await b.tick()
    assert a.duties == {"g1": 1} and b.duties == {}
    started = time.monotonic()
    await a.stop()
    assert a.on_duty("g1") is False
    _, seconds = await wait_for_takeover([b])
    assert seconds < FAST.lease_seconds  # released: no need to wait for the lease to run out
    async with b.engine.connect() as conn:
        expires = (
            await conn.execute(sa.text("SELECT expires_at <= now() FROM cluster_accounts WHERE account_id = 'bot_a'"))
        ).scalar_one()
    assert expires is True and time.monotonic() - started < FAST.lease_ttl
