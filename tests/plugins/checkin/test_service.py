"""The check-in service and the activity buffer against a real database (SQLite and
PostgreSQL), without a bot."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

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
    out = await svc.make_up("g", "amy", "Amy", D1 + timedelta(days=skip), today, T1 + timedelta(days=7),
                            cost=20, monthly_limit=1, month_start=month_start, max_days_back=7)
    assert (out.streak, out.longest, out.used, out.cost) == (8, 8, 1, 20)
    month = await svc.month("g", "amy", D1, D1 + timedelta(days=30))
    assert [month[d].streak for d in sorted(month)] == [1, 2, 3, 4, 5, 6, 7, 8]
    # Bonuses were paid when each check-in happened, and are not recomputed by the repair.
    ledger = PointsLedger(db)
    assert out.total == await ledger.total("g", "amy") == 7 * 5 + 100 * (1 + 2 + 3 + 1 + 2 + 3 + 4) - 20
    with pytest.raises(MakeupRefused, match="次数已用完"):
        await svc.make_up("g", "amy", "Amy", D1 - timedelta(days=1), today, T1 + timedelta(days=7), cost=20,
                          monthly_limit=1, month_start=month_start, max_days_back=30)
    # An admin's make-up neither costs nor counts.
    free = await svc.make_up("g", "amy", "Amy", D1 - timedelta(days=1), today, T1 + timedelta(days=7), cost=20,
                             monthly_limit=1, month_start=month_start, max_days_back=30, by="boss")
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
    assert [(r.rank, r.member_id, r.value) for r in board] == [(1, "cat", 12), (2, "amy", 10), (2, "bob", 10),
                                                                (4, "dan", 5)]
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
