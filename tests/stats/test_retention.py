"""Cohort retention on small hand-built histories, with the exact expected tables, on SQLite
and PostgreSQL; the rollup-based report must equal the one computed from the raw events."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.stats import COHORT_BY, Period, RetentionReport, Scope, retention, retention_from_events
from bot.storage.db import Database
from tests.stats.history import History

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")
DECEMBER = Period(date(2026, 12, 1), date(2026, 12, 14))
LATE = datetime(2027, 1, 20, 10, 0, tzinfo=SH)  # every figure of the period is measurable
EARLY = datetime(2026, 12, 10, 9, 0, tzinfo=SH)  # horizon 12-09: only some are
G1 = Scope.one("g1", "宝妈交流群", exclude=("wxid_bot",))


def december() -> History:
    h = History(SH)
    # alice: stays and keeps posting.
    h.join("g1", "alice", "2026-12-01 09:00", inviter="owner1")
    for when in ("2026-12-02 10:00", "2026-12-08 10:00", "2026-12-31 10:00"):
        h.say("g1", "alice", when)
    # bob: leaves the next morning, comes back (same entry), posts, is removed later.
    h.join("g1", "bob", "2026-12-01 23:30", source="keyword:进群")
    h.leave("g1", "bob", "2026-12-02 08:00")
    h.join("g1", "bob", "2026-12-05 10:00")
    h.say("g1", "bob", "2026-12-06 12:00", times=3)
    h.leave("g1", "bob", "2026-12-20 10:00", removed_by="owner1")
    # carol: joins ten minutes after local midnight (still 12-01 in UTC); posts at 23:59
    # local on 12-08 and one minute after midnight on 12-16 (12-15 in UTC).
    h.join("g1", "carol", "2026-12-02 00:10")
    h.say("g1", "carol", "2026-12-08 23:59").say("g1", "carol", "2026-12-16 00:01")
    # dave: an earlier stay ended before the period; his rejoin in the period is an entry.
    h.join("g1", "dave", "2026-11-20 09:00").leave("g1", "dave", "2026-11-25 09:00")
    h.join("g1", "dave", "2026-12-03 12:00", inviter="alice")
    # erin: gone the same evening.
    h.join("g1", "erin", "2026-12-08 09:00", source="keyword:进群").leave("g1", "erin", "2026-12-08 20:00")
    # grace: the last second of the period.
    h.join("g1", "grace", "2026-12-14 23:59:59").say("g1", "grace", "2026-12-15 08:00")
    # Not entries: the bot itself, and a join after the period.
    h.join("g1", "wxid_bot", "2026-12-01 08:00")
    h.join("g1", "frank", "2026-12-15 09:00")
    # Another group, not in the scope.
    h.join("g2", "alice", "2026-12-03 09:00")
    return h


def table(report: RetentionReport) -> dict[str, tuple[int, list[str], list[str]]]:
    """cohort → (size, ["kept/measured" per N in group], [... active]); '-' when unmeasured."""

    def cell(c: object) -> str:
        return f"{c.count}/{c.measured}" if c.measured else "-"  # type: ignore[attr-defined]

    return {
        row.key: (row.size, [cell(row.in_group[n]) for n in report.days], [cell(row.active[n]) for n in report.days])
        for row in [*report.rows, report.total]
    }


async def test_cohorts_by_day_exact(database: Database) -> None:
    await december().write(database)
    report = await retention(database, SH, G1, DECEMBER, as_of=LATE, by="day")
    assert report.days == (1, 7, 30) and report.window == 7
    assert report.horizon == date(2027, 1, 19)
    assert table(report) == {
        "2026-12-01": (2, ["1/2", "2/2", "1/2"], ["2/2", "1/2", "1/2"]),
        "2026-12-02": (1, ["1/1", "1/1", "1/1"], ["1/1", "0/1", "0/1"]),
        "2026-12-03": (1, ["1/1", "1/1", "1/1"], ["0/1", "0/1", "0/1"]),
        "2026-12-08": (1, ["0/1", "0/1", "0/1"], ["0/1", "0/1", "0/1"]),
        "2026-12-14": (1, ["1/1", "1/1", "1/1"], ["1/1", "0/1", "0/1"]),
        "total": (6, ["4/6", "5/6", "4/6"], ["4/6", "1/6", "1/6"]),
    }
    assert report.total.in_group[7].share == pytest.approx(5 / 6)


async def test_cohorts_by_week_source_and_inviter(database: Database) -> None:
    await december().write(database)
    by_week = table(await retention(database, SH, G1, DECEMBER, as_of=LATE, by="week"))
    assert by_week == {
        "2026-11-30": (4, ["3/4", "4/4", "3/4"], ["3/4", "1/4", "1/4"]),
        "2026-12-07": (1, ["0/1", "0/1", "0/1"], ["0/1", "0/1", "0/1"]),
        "2026-12-14": (1, ["1/1", "1/1", "1/1"], ["1/1", "0/1", "0/1"]),
        "total": (6, ["4/6", "5/6", "4/6"], ["4/6", "1/6", "1/6"]),
    }
    by_source = table(await retention(database, SH, G1, DECEMBER, as_of=LATE, by="source"))
    assert by_source == {
        "invited": (2, ["2/2", "2/2", "2/2"], ["1/2", "1/2", "1/2"]),
        "keyword:进群": (2, ["0/2", "1/2", "0/2"], ["1/2", "0/2", "0/2"]),
        "unknown": (2, ["2/2", "2/2", "2/2"], ["2/2", "0/2", "0/2"]),
        "total": (6, ["4/6", "5/6", "4/6"], ["4/6", "1/6", "1/6"]),
    }
    by_inviter = await retention(database, SH, G1, DECEMBER, as_of=LATE, by="inviter")
    assert [r.key for r in by_inviter.rows] == ["-", "alice", "owner1"]  # biggest first, then by key
    assert table(by_inviter)["owner1"] == (1, ["1/1", "1/1", "1/1"], ["1/1", "1/1", "1/1"])
    assert table(by_inviter)["alice"] == (1, ["1/1", "1/1", "1/1"], ["0/1", "0/1", "0/1"])


async def test_only_complete_days_are_measured(database: Database) -> None:
    await december().write(database)
    report = await retention(database, SH, G1, DECEMBER, as_of=EARLY, by="day")
    assert report.horizon == date(2026, 12, 9)
    assert table(report) == {
        "2026-12-01": (2, ["1/2", "2/2", "-"], ["2/2", "-", "-"]),
        "2026-12-02": (1, ["1/1", "1/1", "-"], ["1/1", "-", "-"]),
        "2026-12-03": (1, ["1/1", "-", "-"], ["-", "-", "-"]),
        "2026-12-08": (1, ["0/1", "-", "-"], ["-", "-", "-"]),
        "2026-12-14": (1, ["-", "-", "-"], ["-", "-", "-"]),
        "total": (6, ["3/5", "3/3", "-"], ["3/3", "-", "-"]),
    }


async def test_window_of_one_day_is_active_exactly_on_day_n(database: Database) -> None:
    await december().write(database)
    report = await retention(database, SH, G1, DECEMBER, as_of=LATE, by="day", days=(1, 7), window=1)
    # alice posted on 12-02 (day 1) and 12-08 (day 7); carol on 12-08 is her day 6.
    assert table(report)["2026-12-01"] == (2, ["1/2", "2/2"], ["1/2", "1/2"])
    assert table(report)["2026-12-02"] == (1, ["1/1", "1/1"], ["0/1", "0/1"])


@pytest.mark.parametrize("by", COHORT_BY)
async def test_rollups_agree_with_the_raw_event_log(database: Database, by: str) -> None:
    await december().write(database)
    for as_of in (EARLY, LATE):
        fast = await retention(database, SH, G1, DECEMBER, as_of=as_of, by=by)
        slow = await retention_from_events(database, SH, G1, DECEMBER, as_of=as_of, by=by)
        assert fast.as_json() == slow.as_json()


async def test_day_boundaries_follow_the_zone_across_dst(database: Database) -> None:
    # New York springs forward at 02:00 on 2026-03-08 (UTC-5 → UTC-4).
    h = History(NY)
    h.join("ny", "ann", "2026-03-07 23:30")  # 04:30 UTC on 03-08
    h.join("ny", "ben", "2026-03-08 01:30")  # EST
    h.join("ny", "cid", "2026-03-08 23:30")  # EDT: 03:30 UTC on 03-09
    h.leave("ny", "ben", "2026-03-09 23:30")  # left on day 1: not in at its end
    h.leave("ny", "cid", "2026-03-10 00:30")  # left on day 2: still in at the end of day 1
    h.say("ny", "ann", "2026-03-14 23:45")  # ann's day 7 (03-15 03:45 UTC)
    await h.write(database)
    scope = Scope.one("ny")
    period = Period(date(2026, 3, 1), date(2026, 3, 14))
    as_of = datetime(2026, 5, 1, tzinfo=NY)
    report = await retention(database, NY, scope, period, as_of=as_of, by="day", days=(1, 7), window=1)
    assert table(report) == {
        "2026-03-07": (1, ["1/1", "1/1"], ["0/1", "1/1"]),
        "2026-03-08": (2, ["1/2", "0/2"], ["0/2", "0/2"]),
        "total": (3, ["2/3", "1/3"], ["0/3", "1/3"]),
    }
    slow = await retention_from_events(database, NY, scope, period, as_of=as_of, by="day", days=(1, 7), window=1)
    assert slow.as_json() == report.as_json()


async def test_empty_groups_and_empty_databases(database: Database) -> None:
    report = await retention(database, SH, Scope(), DECEMBER, as_of=LATE)
    assert report.rows == [] and report.total.size == 0
    assert all(c.measured == 0 and c.share is None for c in report.total.in_group.values())
    await december().write(database)
    quiet = await retention(database, SH, Scope.one("nobody-here"), DECEMBER, as_of=LATE, by="source")
    assert quiet.rows == [] and quiet.total.size == 0
    assert quiet.table().rows == [["total", 0, "-", "-", "-", "-", "-", "-"]]
    everyone = await retention(database, SH, Scope(exclude_members=("wxid_bot",)), DECEMBER, as_of=LATE)
    assert everyone.total.size == 7  # g1's six and alice in g2


async def test_bad_arguments_are_clear_errors(database: Database) -> None:
    with pytest.raises(ValueError, match="cohort breakdown"):
        await retention(database, SH, G1, DECEMBER, as_of=LATE, by="month")
    with pytest.raises(ValueError, match="window"):
        await retention(database, SH, G1, DECEMBER, as_of=LATE, window=0)
    with pytest.raises(ValueError, match="before it starts"):
        Period(date(2026, 12, 2), date(2026, 12, 1))
