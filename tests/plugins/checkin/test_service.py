"""The check-in service and the activity buffer against a real database (SQLite and
PostgreSQL), without a bot."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, date, datetime, timedelta

import pytest

from bot.storage import bulk, points
from bot.storage.db import Database
from bot.storage.points import PointsLedger
from plugins.checkin.activity import ActivityBuffer
from plugins.checkin.service import CheckinService, MakeupRefused

D1 = date(2026, 12, 1)
T1 = datetime(2026, 12, 1, 0, 30, tzinfo=UTC)


def no_bonus(_streak: int) -> int:
    return 0


@pytest.fixture
def db(database: Database) -> Database:
    """The migrated database of tests/conftest.py: every test here runs on SQLite and PostgreSQL."""
    return database


async def test_same_second_check_ins_rank_in_recorded_order(db: Database) -> None:
    svc = CheckinService(db, PointsLedger(db))
    for member in ("zed", "amy", "kim"):
        out = await svc.check_in("g", member, member.title(), D1, T1, base=5, bonus_for=no_bonus)
        assert out.created
    board = await svc.today_board("g", D1)
    assert [(r.rank, r.member_id) for r in board] == [(1, "zed"), (2, "amy"), (3, "kim")]
    streaks = await svc.streak_board("g", D1)
    assert [(r.rank, r.member_id) for r in streaks] == [(1, "zed"), (1, "amy"), (1, "kim")]
    again = await svc.check_in("g", "amy", "Amy", D1, T1 + timedelta(hours=1), base=5, bonus_for=no_bonus)
    assert (again.created, again.rank, again.total, again.base) == (False, 2, 5, 0)


async def test_a_race_on_the_unique_day_reports_the_winner(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    svc = CheckinService(db, PointsLedger(db))
    await svc.check_in("g", "amy", "Amy", D1, T1, base=5, bonus_for=no_bonus)
    real = CheckinService._record
    calls = {"n": 0}

    async def blind_once(s, group_id, member_id, day):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        return None if calls["n"] == 1 else await real(s, group_id, member_id, day)

    # As if another process inserted the row between our look and our insert.
    monkeypatch.setattr(CheckinService, "_record", staticmethod(blind_once))
    out = await svc.check_in("g", "amy", "Amy", D1, T1 + timedelta(minutes=1), base=5, bonus_for=no_bonus)
    assert (out.created, out.rank, out.total) == (False, 1, 5)


async def test_a_makeup_joins_two_runs(db: Database) -> None:
    svc = CheckinService(db, PointsLedger(db))
    skip = 3  # Dec 4
    for n in range(8):
        if n != skip:
            day = D1 + timedelta(days=n)
            await svc.check_in("g", "amy", "Amy", day, T1 + timedelta(days=n), base=5, bonus_for=lambda s: 100 * s)
    today = D1 + timedelta(days=7)
    before = await svc.status("g", "amy", today)
    assert (before.streak, before.longest, before.days) == (4, 4, 7)
    month_start = datetime(2026, 11, 30, 16, tzinfo=UTC)
    out = await svc.make_up(
        "g",
        "amy",
        "Amy",
        D1 + timedelta(days=skip),
        today,
        T1 + timedelta(days=7),
        cost=20,
        monthly_limit=1,
        month_start=month_start,
        max_days_back=7,
    )
    assert (out.streak, out.longest, out.used, out.cost) == (8, 8, 1, 20)
    month = await svc.month("g", "amy", D1, D1 + timedelta(days=30))
    assert [month[d].streak for d in sorted(month)] == [1, 2, 3, 4, 5, 6, 7, 8]
    # Bonuses were paid when each check-in happened, and are not recomputed by the repair.
    ledger = PointsLedger(db)
    assert out.total == await ledger.total("g", "amy") == 7 * 5 + 100 * (1 + 2 + 3 + 1 + 2 + 3 + 4) - 20
    with pytest.raises(MakeupRefused, match="次数已用完"):
        await svc.make_up(
            "g",
            "amy",
            "Amy",
            D1 - timedelta(days=1),
            today,
            T1 + timedelta(days=7),
            cost=20,
            monthly_limit=1,
            month_start=month_start,
            max_days_back=30,
        )
    # An admin's make-up neither costs nor counts.
    free = await svc.make_up(
        "g",
        "amy",
        "Amy",
        D1 - timedelta(days=1),
        today,
        T1 + timedelta(days=7),
        cost=20,
        monthly_limit=1,
        month_start=month_start,
        max_days_back=30,
        by="boss",
    )
    assert (free.cost, free.used, free.streak) == (0, 1, 9)
    assert await svc.makeups_since("g", "amy", month_start) == 1


async def test_points_board_ties_share_a_rank(db: Database) -> None:
    ledger = PointsLedger(db)
    svc = CheckinService(db, ledger)
    await ledger.add("g", "bob", 10, "admin", T1 + timedelta(minutes=2))
    await ledger.add("g", "amy", 10, "admin", T1 + timedelta(minutes=1))
    await ledger.add("g", "cat", 12, "admin", T1)
    await ledger.add("g", "dan", 5, "admin", T1)
    await ledger.add("g", "eve", 3, "admin", T1)
    await ledger.add("g", "eve", -3, "admin", T1)  # zero: not on the board
    board = await svc.points_board("g")
    assert [(r.rank, r.member_id, r.value) for r in board] == [
        (1, "cat", 12),
        (2, "amy", 10),
        (2, "bob", 10),
        (4, "dan", 5),
    ]
    assert await svc.points_rank("g", "bob", 10) == 2
    assert await svc.points_rank("g", "eve", 0) == 5


async def test_ledger_accumulate_caps_and_finds_refs(db: Database) -> None:
    ledger = PointsLedger(db)
    assert await ledger.accumulate("g", "amy", 3, "activity", T1, ref="activity:d1", cap=5) == 3
    assert await ledger.accumulate("g", "amy", 3, "activity", T1, ref="activity:d1", cap=5) == 5
    assert await ledger.accumulate("g", "amy", 3, "activity", T1, ref="activity:d1", cap=5) == 5
    assert await ledger.total("g", "amy") == 5
    await ledger.add("g", "bob", 10, "invite", T1, ref="invite:zed")
    await ledger.add("g", "cat", 10, "invite", T1, ref="invite:zed")
    assert [e.member_id for e in await ledger.with_ref("g", "invite:zed")] == ["bob", "cat"]
    totals = {m: (t, at) for m, t, at in await ledger.totals("g")}
    assert totals == {"amy": (5, T1), "bob": (10, T1), "cat": (10, T1)}


@pytest.mark.parametrize("sqlite_json", [True, False], ids=["json", "values"])
async def test_ledger_accumulates_thousands_at_once_as_one_by_one(
    db: Database, sqlite_json: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thousands of keys at once: in one JSON parameter on SQLite or, where SQLite lacks JSON,
    more than one VALUES select takes: the existing rows are found in every chunk."""
    if not sqlite_json:
        if db.dialect != "sqlite":
            pytest.skip("the VALUES statements are SQLite's fallback")
        monkeypatch.setattr(bulk, "SQLITE_JSON", False)
        monkeypatch.setattr(points, "SQLITE_JSON", False)
    ledger = PointsLedger(db)
    later = T1 + timedelta(hours=1)
    first = [("g", f"m{i}", "activity:d1", 2 + i % 4, 4, T1) for i in range(7_000)]
    assert await ledger.accumulate_many("activity", first) == [min(2 + i % 4, 4) for i in range(7_000)]
    again = [("g", f"m{i}", "activity:d1", 1, 4, later) for i in range(0, 7_000, 7)]
    again.append(("g", "new", "activity:d1", 9, 4, later))
    assert await ledger.accumulate_many("activity", again) == [min(2 + i % 4 + 1, 4) for i in range(0, 7_000, 7)] + [4]
    assert await ledger.accumulate("g", "m7", 1, "activity", later, ref="activity:d1", cap=4) == 4  # capped
    totals = {m: (t, at) for m, t, at in await ledger.totals("g")}
    assert totals["m0"] == (3, later) and totals["m3"] == (4, T1)  # m3 was full: left alone, time kept
    assert totals["m1"] == (3, T1) and totals["new"] == (4, later) and len(totals) == 7_001


async def test_activity_buffer_counts_in_memory_and_writes_on_flush(db: Database) -> None:
    ledger = PointsLedger(db)
    wakeups: list[int] = []
    buf = ActivityBuffer(ledger, on_pending=lambda: wakeups.append(1))
    gap = timedelta(seconds=30)
    t = T1
    assert buf.count("g", "amy", D1, t, points=2, cap=5, min_interval=gap)
    assert not buf.count("g", "amy", D1, t + timedelta(seconds=10), points=2, cap=5, min_interval=gap)
    assert buf.count("g", "amy", D1, t + timedelta(seconds=40), points=2, cap=5, min_interval=gap)
    assert buf.count("g", "bob", D1, t, points=2, cap=5, min_interval=gap)
    assert len(wakeups) == 2  # once per tally that got something to write
    assert await ledger.total("g", "amy") == 0  # nothing written yet
    assert await buf.flush("g", "amy") == 4
    assert await ledger.total("g", "amy") == 4 and buf.pending == 2
    assert buf.count("g", "amy", D1, t + timedelta(minutes=2), points=2, cap=5, min_interval=gap)
    assert not buf.count("g", "amy", D1, t + timedelta(minutes=3), points=2, cap=5, min_interval=gap)  # capped
    await buf.flush()
    assert await ledger.total("g", "amy") == 5 and buf.pending == 0
    # A fresh buffer (a restart) forgets the tally; the write itself still holds the cap.
    fresh = ActivityBuffer(ledger)
    assert fresh.count("g", "amy", D1, t + timedelta(minutes=9), points=2, cap=5, min_interval=gap)
    await fresh.flush()
    assert await ledger.total("g", "amy") == 5
    assert not fresh.count("g", "amy", D1, t + timedelta(minutes=10), points=2, cap=5, min_interval=gap)
    # A new day starts a new tally; past days are pruned once written.
    assert fresh.count("g", "amy", D1 + timedelta(days=1), t + timedelta(days=1), points=2, cap=5, min_interval=gap)
    await fresh.flush()
    assert await ledger.total("g", "amy") == 7
    assert [k[2] for k in fresh._tallies] == [D1 + timedelta(days=1)]


async def test_activity_buffer_forgets_members_quiet_since_before_yesterday(db: Database) -> None:
    ledger = PointsLedger(db)
    buf = ActivityBuffer(ledger)
    gap = timedelta(seconds=30)
    assert buf.count("g1", "amy", D1, T1, points=2, cap=5, min_interval=gap)
    assert buf.count("g2", "bob", D1, T1, points=2, cap=5, min_interval=gap)
    day3 = D1 + timedelta(days=2)
    assert buf.count("g1", "cat", day3 - timedelta(days=1), T1 + timedelta(days=1), points=2, cap=5, min_interval=gap)
    assert buf.count("g1", "dan", day3, T1 + timedelta(days=2), points=2, cap=5, min_interval=gap)
    await buf.flush()
    # amy and bob last spoke two days ago: gone, with bob's whole group; yesterday's cat stays.
    assert buf._members.keys() == {"g1"} and buf._members["g1"].keys() == {"cat", "dan"}
    assert sorted(k[1] for k in buf._tallies) == ["cat", "dan"]
    # Coming back counts from scratch; the ledger already holds what they earned.
    assert buf.count("g1", "amy", day3, T1 + timedelta(days=2, minutes=1), points=2, cap=5, min_interval=gap)
    await buf.flush()
    assert await ledger.total("g1", "amy") == 4 and await ledger.total("g2", "bob") == 2


async def test_activity_buffer_keeps_unwritten_points_of_quiet_members(db: Database) -> None:
    ledger = PointsLedger(db)
    buf = ActivityBuffer(ledger)
    gap = timedelta(seconds=30)
    assert buf.count("g", "amy", D1, T1, points=2, cap=5, min_interval=gap)
    assert buf.count("g", "dan", D1 + timedelta(days=3), T1 + timedelta(days=3), points=2, cap=5, min_interval=gap)
    buf._prune()  # nothing written yet: amy's points must survive until a flush writes them
    assert "amy" in buf._members["g"] and buf.pending == 4
    await buf.flush()
    assert await ledger.total("g", "amy") == 2 and buf.pending == 0
    assert buf._members["g"].keys() == {"dan"}  # written, then forgotten by the same flush


async def test_activity_buffer_stays_under_its_member_cap_on_a_busy_day(db: Database) -> None:
    """Past `keep_members`, a flush forgets members whose points are written and whose
    interval has passed; the cap on the day still holds through the ledger's write."""
    ledger = PointsLedger(db)
    buf = ActivityBuffer(ledger, keep_members=50)
    gap = timedelta(seconds=30)
    t = T1
    for i in range(400):  # a new speaker every second, a flush every 20
        t = T1 + timedelta(seconds=i)
        assert buf.count("g", f"m{i}", D1, t, points=2, cap=5, min_interval=gap)
        if i % 20 == 19:
            await buf.flush()
            # Only those still inside their interval (the last 30 s) are kept past the cap.
            assert buf.members <= 50
    assert await ledger.total("g", "m0") == 2
    # m399 is kept (inside its interval): a second message within it earns nothing.
    assert not buf.count("g", "m399", D1, t + timedelta(seconds=5), points=2, cap=5, min_interval=gap)
    # m0 was forgotten: it counts again, and the ledger caps the day at 5.
    for minute in range(1, 6):
        buf.count("g", "m0", D1, t + timedelta(minutes=minute), points=2, cap=5, min_interval=gap)
        await buf.flush()
    assert await ledger.total("g", "m0") == 5


async def test_activity_buffer_on_the_database_writes_in_one_go(db: Database) -> None:
    """The same story as above with the buffer writing all due tallies in one transaction."""
    ledger = PointsLedger(db)
    buf = ActivityBuffer(ledger)
    gap = timedelta(seconds=30)
    t = T1
    assert buf.count("g", "amy", D1, t, points=2, cap=5, min_interval=gap)
    assert buf.count("g", "bob", D1, t, points=2, cap=5, min_interval=gap)
    assert await buf.flush("g", "amy") == 2
    assert await ledger.total("g", "amy") == 2 and buf.pending == 2
    assert buf.count("g", "amy", D1, t + timedelta(minutes=1), points=2, cap=5, min_interval=gap)
    assert buf.count("g", "amy", D1, t + timedelta(minutes=2), points=2, cap=5, min_interval=gap)
    assert not buf.count("g", "amy", D1, t + timedelta(minutes=3), points=2, cap=5, min_interval=gap)  # capped
    assert await buf.flush() == 5
    assert await ledger.total("g", "amy") == 5 and await ledger.total("g", "bob") == 2 and buf.pending == 0
    fresh = ActivityBuffer(ledger)  # a restart: the write still holds the cap
    assert fresh.count("g", "amy", D1, t + timedelta(minutes=9), points=2, cap=5, min_interval=gap)
    assert fresh.count("g", "amy", D1 + timedelta(days=1), t + timedelta(days=1), points=2, cap=5, min_interval=gap)
    assert await fresh.flush() == 4
    assert await ledger.total("g", "amy") == 7
    assert [k[2] for k in fresh._tallies] == [D1 + timedelta(days=1)]
    history = await ledger.history("g", "amy")
    assert [(e.ref, e.delta, e.at) for e in history] == [
        ("activity:2026-12-02", 2, t + timedelta(days=1)),
        ("activity:2026-12-01", 5, t + timedelta(minutes=2)),
    ]


async def test_writing_tallies_together_or_one_by_one_gives_the_same_ledger(db: Database) -> None:
    """Random chat over three days, two members joining late, caps changing, a restart
    and rows already past the cap: both ways of writing leave identical rows."""
    ledger = PointsLedger(db)
    rng = random.Random(7)
    # An entry already above today's cap (the cap was lowered): it must be left alone.
    for prefix in ("one", "all"):
        await ledger.accumulate(f"{prefix}:g", "m0", 30, "activity", T1, ref="activity:2026-12-01")
    buffers = {"one": ActivityBuffer(ledger, batched=False), "all": ActivityBuffer(ledger)}
    members = [f"m{i}" for i in range(12)]
    at = T1
    for step in range(400):
        at += timedelta(seconds=rng.choice([5, 20, 40, 90]))
        day = D1 + timedelta(days=step // 150)
        member, cap = rng.choice(members[: 6 + step // 40]), rng.choice([5, 8, 20])
        points = rng.choice([1, 2, 3])
        results = {
            p: b.count(f"{p}:g", member, day, at, points=points, cap=cap, min_interval=timedelta(seconds=30))
            for p, b in buffers.items()
        }
        assert results["one"] == results["all"]
        if step % 37 == 36:
            who = rng.choice([None, rng.choice(members)])
            handed = {p: await b.flush(f"{p}:g" if who else None, who) for p, b in buffers.items()}
            assert handed["one"] == handed["all"]
        if step == 250:  # a restart forgets every tally
            await buffers["one"].flush()
            await buffers["all"].flush()
            buffers = {"one": ActivityBuffer(ledger, batched=False), "all": ActivityBuffer(ledger)}
    for b in buffers.values():
        await b.flush()

    async def rows(prefix: str) -> list[tuple[str, str | None, int, datetime]]:
        entries = [e for m in members for e in await ledger.history(f"{prefix}:g", m, limit=100)]
        return sorted((e.member_id, e.ref, e.delta, e.at) for e in entries)

    assert await rows("one") == await rows("all")
    assert len(await rows("all")) > 20


async def test_a_member_flush_waits_for_the_scheduled_flush_in_flight(db: Database) -> None:
    # The scheduled flush has taken everyone's points and is writing them when a member
    # checks in: the check-in's own flush must not report a total without them.
    ledger = PointsLedger(db)
    buf = ActivityBuffer(ledger)
    for i in range(50):
        buf.count("g", f"m{i}", D1, T1, points=2, cap=5, min_interval=timedelta(seconds=30))
    scheduled = asyncio.create_task(buf.flush())
    await asyncio.sleep(0)  # it has started writing
    await buf.flush("g", "m7")
    assert await ledger.total("g", "m7") == 2
    assert await scheduled == 100
