"""What arrives while a group has nobody on duty is answered by the account that takes it over,
once (bot/cluster/catchup.py): the window of kept events, the handled marks, the replay."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from bot.cluster import ClusterDuty
from bot.cluster.catchup import CatchUp, EventWindow, event_key
from bot.core.events import Event, GroupMessage, GroupRenamed, Member, MembersJoined, MembersLeft, PrivateMessage
from tests.cluster.test_duty import FAST, accounts, pg_url, wait_for_takeover  # noqa: F401  (fixtures)

AT = datetime(2026, 12, 1, tzinfo=UTC)
ALICE = Member("alice", "Alice")


def msg(n: int, group: str = "g1") -> GroupMessage:
    return GroupMessage(at=AT, group_id=group, sender=ALICE, text=f"在吗 {n}", message_id=f"m{n}")


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# --- keys and the window (no database) -------------------------------------------------------


def test_event_keys_are_the_same_for_every_account_and_none_without_an_identity() -> None:
    assert event_key(msg(7)) == "m:m7"
    assert event_key(GroupMessage(at=AT, group_id="g1", sender=ALICE, text="x")) is None  # no platform id
    bob = Member("bob")
    joined = MembersJoined(at=AT, group_id="g1", members=(bob, ALICE))
    assert event_key(joined) == "j:alice,bob"
    assert event_key(MembersLeft(at=AT, group_id="g1", members=(ALICE,))) == "l:alice"
    assert event_key(GroupRenamed(at=AT, group_id="g1", old_topic="a", new_topic="b")) == "r:b"
    assert event_key(PrivateMessage(at=AT, sender=ALICE, text="hi", message_id="p1")) is None


def test_the_window_gives_a_groups_young_events_in_order_and_forgets_them() -> None:
    clock = FakeClock()
    window = EventWindow(keep_seconds=60, cap=100, monotonic=clock)
    window.add("g1", "m:m1", msg(1))
    clock.now += 50
    window.add("g2", "m:m2", msg(2, "g2"))
    window.add("g1", "m:m3", msg(3))
    clock.now += 20  # m1 is now 70 s old: too old to answer
    assert [k.key for k in window.take("g1")] == ["m:m3"]
    assert window.take("g1") == []  # taken once
    assert [k.key for k in window.take("g2")] == ["m:m2"]
    assert len(window) == 0


def test_the_window_is_bounded_and_counts_what_the_cap_pushed_out() -> None:
    clock = FakeClock()
    window = EventWindow(keep_seconds=60, cap=3, monotonic=clock)
    for n in range(5):
        window.add("g1", f"m:m{n}", msg(n))
    assert len(window) == 3 and window.dropped == 2
    assert [k.key for k in window.take("g1")] == ["m:m2", "m:m3", "m:m4"]
    off = EventWindow(keep_seconds=0, cap=3, monotonic=clock)  # catch_up_within: 0
    off.add("g1", "m:m1", msg(1))
    assert len(off) == 0


# --- marks and replay on PostgreSQL ----------------------------------------------------------


class Redo:
    """The dispatcher's `redo`, recorded."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, event: Event) -> None:
        self.events.append(event)

    @property
    def ids(self) -> list[str | None]:
        return [getattr(e, "message_id", None) for e in self.events]


async def gate(duty: ClusterDuty) -> tuple[CatchUp, Redo]:
    catch_up = CatchUp(duty.engine, duty, duty.settings)
    redo = Redo()
    catch_up.bind(redo)
    return catch_up, redo


@pytest.mark.postgres
async def test_the_new_holder_answers_what_the_dead_one_did_not_take_and_nothing_it_did(
    accounts: Callable[..., Awaitable[ClusterDuty]],  # noqa: F811
) -> None:
    a = await accounts("wxid_a")
    b = await accounts("wxid_b")
    gate_a, redo_a = await gate(a)
    gate_b, redo_b = await gate(b)

    async def everyone(event: Event) -> list[bool]:
        return [await gate_a.acts_in(event), await gate_b.acts_in(event)]

    # (One gate per process, in production: here a's event is handled before b's copy arrives.)
    assert await gate_a.acts_in(msg(1)) is True
    token = gate_a.token("g1")  # a handler queues a reply to m1 (the outbox asks for the token)
    assert await gate_b.acts_in(msg(1)) is False
    assert await gate_a.may_act("g1", token)  # the reply goes out: m1's mark is written first
    assert await everyone(msg(2)) == [True, False]  # taken by a, which dies before writing its mark
    # a is killed: it renews nothing and writes nothing more. m3 and m4 reach b only.
    assert await gate_b.acts_in(msg(3)) is False
    assert await gate_b.acts_in(msg(4)) is False
    holder, _ = await wait_for_takeover([b])
    assert holder == "wxid_b"
    await gate_b.settle()
    assert redo_b.ids == ["m2", "m3", "m4"]
    assert gate_b.stats == {"replayed": 3, "already_handled": 1}
    assert redo_a.events == []
    # The replayed ones are marked for the account after b (a second after being taken, or at
    # b's stop, as here); and a live one is not kept.
    assert await gate_b.acts_in(msg(5)) is True
    assert await gate_b.marked("g1", ["m:m2", "m:m5"]) == set()
    await gate_b.stop()
    assert await gate_b.marked("g1", ["m:m1", "m:m2", "m:m3", "m:m4", "m:m5"]) == {
        "m:m1",
        "m:m2",
        "m:m3",
        "m:m4",
        "m:m5",
    }
    assert len(gate_b.window) == 0


@pytest.mark.postgres
async def test_live_events_wait_for_the_catch_up_so_the_order_holds(
    accounts: Callable[..., Awaitable[ClusterDuty]],  # noqa: F811
) -> None:
    a = await accounts("wxid_a")
    b = await accounts("wxid_b")
    gate_b, _ = await gate(b)
    assert a.on_duty("g1")
    assert await gate_b.acts_in(msg(1)) is False
    order: list[str] = []
    release = asyncio.Event()

    async def slow_redo(event: Event) -> None:
        await release.wait()
        order.append(f"replay {getattr(event, 'message_id', '')}")

    gate_b.bind(slow_redo)
    await wait_for_takeover([b])  # a is dead: b takes over and starts replaying m1

    async def live() -> None:
        assert await gate_b.acts_in(msg(2)) is True
        order.append("live m2")

    waiting = asyncio.create_task(live())
    await asyncio.sleep(0.05)
    assert order == []  # m2 waits for m1
    release.set()
    await waiting
    await gate_b.settle()
    assert order == ["replay m1", "live m2"]


@pytest.mark.postgres
async def test_nothing_is_replayed_when_the_holder_handed_over_everything_it_took(
    accounts: Callable[..., Awaitable[ClusterDuty]],  # noqa: F811
) -> None:
    a = await accounts("wxid_a")
    b = await accounts("wxid_b")
    gate_a, _ = await gate(a)
    gate_b, redo_b = await gate(b)
    for n in (1, 2):
        assert await gate_a.acts_in(msg(n)) is True
        assert await gate_b.acts_in(msg(n)) is False
    await gate_a.stop()  # a graceful stop writes the last marks, then hands the duty over
    await a.stop()
    await wait_for_takeover([b])
    await gate_b.settle()
    assert redo_b.events == []
    assert gate_b.stats == {"replayed": 0, "already_handled": 2}


@pytest.mark.postgres
async def test_marks_that_cannot_be_written_wait_and_do_not_stall_the_sends(
    accounts: Callable[..., Awaitable[ClusterDuty]],  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    a = await accounts("wxid_a")
    catch_up, _ = await gate(a)
    good = catch_up.engine
    catch_up.engine = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")  # nothing listens
    try:
        assert await catch_up.acts_in(msg(1)) is True
        assert await catch_up.may_act("g1", catch_up.token("g1")) is True  # sent anyway, from the lease in memory
        assert await catch_up.acts_in(msg(2)) is True
        assert await catch_up.may_act("g1", catch_up.token("g1")) is True  # and the next one does not even try
        assert catch_up._pending == [("g1", "m:m1"), ("g1", "m:m2")]
        assert sum("could not write 1 handled mark" in r.getMessage() for r in caplog.records) == 1
    finally:
        await catch_up.engine.dispose()
        catch_up.engine = good
    await catch_up.flush()  # the timer's next round, once the database answers
    assert catch_up._pending == []
    assert await catch_up.marked("g1", ["m:m1", "m:m2"]) == {"m:m1", "m:m2"}
    assert any("written again" in r.getMessage() for r in caplog.records)


@pytest.mark.postgres
async def test_an_event_is_marked_when_its_first_action_goes_out_not_while_it_waits_in_the_outbox(
    accounts: Callable[..., Awaitable[ClusterDuty]],  # noqa: F811
) -> None:
    a = await accounts("wxid_a")
    b = await accounts("wxid_b")
    gate_a, _ = await gate(a)
    gate_b, redo_b = await gate(b)
    tokens: list[int | None] = []
    for n, replies in ((1, 2), (2, 1), (3, 1)):
        assert await gate_a.acts_in(msg(n)) is True
        tokens += [gate_a.token("g1") for _ in range(replies)]  # m1 queues two replies, m2 and m3 one
        assert await gate_b.acts_in(msg(n)) is False
    # Three of the four sends happen: m1's two, m2's one; a dies with m3's reply still queued.
    for token in tokens[:3]:
        assert await gate_a.may_act("g1", token)
    assert await gate_a.marked("g1", ["m:m1", "m:m2", "m:m3"]) == {"m:m1", "m:m2"}
    await wait_for_takeover([b])
    await gate_b.settle()
    assert redo_b.ids == ["m3"]


@pytest.mark.postgres
async def test_an_event_answered_from_another_task_is_marked_before_that_answer_goes_out(
    accounts: Callable[..., Awaitable[ClusterDuty]],  # noqa: F811
) -> None:
    """A merged check-in reply or a scheduled welcome is queued by another task than the one
    that took the event: the event counts as quiet, and any send of ours marks it first."""
    a = await accounts("wxid_a")
    gate_a, _ = await gate(a)
    assert await gate_a.acts_in(msg(1)) is True

    async def elsewhere() -> int | None:
        return gate_a.token("g1")  # no event being taken in this task

    token = await asyncio.create_task(elsewhere(), context=contextvars.Context())  # e.g. the scheduler's
    assert await gate_a.may_act("g1", token)
    assert await gate_a.marked("g1", ["m:m1"]) == {"m:m1"}
