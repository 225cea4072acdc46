"""Growth, activity, members, heatmap, action and check-in rates on hand-built histories,
on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from bot import stats
from bot.stats import Period, Scope
from bot.storage.db import Database
from tests.stats.history import History

SH = ZoneInfo("Asia/Shanghai")
WEEK = Period(date(2026, 12, 7), date(2026, 12, 13))  # Monday to Sunday
G1 = Scope.one("g1", exclude=("wxid_bot",))


@asynccontextmanager
async def without_checkin_table(db: Database) -> AsyncIterator[None]:
    """As if the check-in plugin were not installed (its table is put back afterwards)."""
    async with db.engine.begin() as conn:
        present = await conn.run_sync(lambda c: sa.inspect(c).has_table("checkin_records"))
        if present:
            await conn.execute(sa.text("ALTER TABLE checkin_records RENAME TO stats_test_hidden_checkins"))
    try:
        yield
    finally:
        if present:
            async with db.engine.begin() as conn:
                await conn.execute(sa.text("ALTER TABLE stats_test_hidden_checkins RENAME TO checkin_records"))


def week() -> History:
    h = History(SH)
    h.join("g1", "old", "2026-11-01 09:00")  # a member from before
    h.join("g1", "quiet", "2026-11-02 09:00")  # never says anything
    h.join("g1", "ann", "2026-12-07 09:00").join("g1", "bea", "2026-12-07 21:00")
    h.join("g1", "cat", "2026-12-08 10:00").leave("g1", "cat", "2026-12-08 11:00")  # same day
    h.leave("g1", "old", "2026-12-09 12:00", removed_by="owner1")
    h.join("g1", "old", "2026-12-11 12:00")  # back again
    h.leave("g1", "bea", "2026-12-12 23:59:59")
    h.join("g1", "wxid_bot", "2026-12-07 08:00")  # the bot: never counted
    # Messages: ann is the core; 23:30 and 00:30 fall on different local days.
    h.say("g1", "ann", "2026-12-07 10:00", times=6).say("g1", "ann", "2026-12-08 23:30", times=2)
    h.say("g1", "bea", "2026-12-09 00:30", "签到").say("g1", "ann", "2026-12-09 08:00", "我签到啦")
    h.say("g1", "old", "2026-12-13 20:15", times=2)
    h.say("g2", "ann", "2026-12-09 08:00")  # another group
    return h


async def test_growth_members_over_time(database: Database) -> None:
    await week().write(database)
    g = await stats.growth(database, SH, G1, WEEK)
    assert g.members_before == 2  # old, quiet
    rows = [(d.day.day, d.members, d.joins, d.left, d.removed, d.net) for d in g.days]
    assert rows == [
        (7, 4, 2, 0, 0, 2),
        (8, 4, 1, 1, 0, 0),
        (9, 3, 0, 0, 1, -1),
        (10, 3, 0, 0, 0, 0),
        (11, 4, 1, 0, 0, 1),
        (12, 3, 0, 1, 0, -1),
        (13, 3, 0, 0, 0, 0),
    ]
    assert (g.joins, g.left, g.removed, g.net, g.members_after) == (4, 2, 1, 1, 3)


async def test_activity_dau_wau_mau(database: Database) -> None:
    await week().write(database)
    a = await stats.activity(database, SH, G1, WEEK)
    # Members: in the group at some time that day (cat, in and out on the 8th, counts that day;
    # old, removed on the 9th and back on the 11th, counts on both).
    rows = [(d.day.day, d.active, d.messages, d.members) for d in a.days]
    assert rows == [
        (7, 1, 6, 4),
        (8, 1, 2, 5),
        (9, 2, 2, 4),
        (10, 0, 0, 3),
        (11, 0, 0, 4),
        (12, 0, 0, 4),
        (13, 1, 2, 3),
    ]
    assert a.messages == 12 and a.active_in_period == 3 and a.wau == 3 and a.mau == 3
    assert a.days[2].active_ratio == pytest.approx(2 / 4)
    assert [(w.start, w.end, w.active, w.messages) for w in a.weeks] == [(date(2026, 12, 7), date(2026, 12, 13), 3, 12)]
    assert [(m.start, m.end, m.active) for m in a.months] == [(date(2026, 12, 7), date(2026, 12, 13), 3)]
    everything = await stats.activity(database, SH, Scope(), WEEK)
    assert everything.messages == 13  # g2 too


async def test_members_core_lurkers_removals(database: Database) -> None:
    await week().write(database)
    m = await stats.members(database, SH, G1, WEEK, lurk_days=3, core_share=0.5, top=2)
    assert (m.members, m.members_in_period, m.posters, m.messages) == (3, 5, 3, 12)
    assert [(x.member_id, x.messages, x.name) for x in m.top] == [("ann", 9, "Ann"), ("old", 2, "Old")]
    assert [x.member_id for x in m.core] == ["ann"] and m.core_messages == 9
    # At the end of 12-13: old (rejoined 12-11, too recent), quiet (silent) and ann (last post 12-09).
    assert m.lurkers == 2
    assert [(x.member_id, x.last_active) for x in m.lurker_sample] == [("quiet", None), ("ann", date(2026, 12, 9))]
    assert [(x.member_id, x.at.hour) for x in m.removals] == [("old", 12)]  # type: ignore[union-attr]


async def test_heatmap_in_local_time(database: Database) -> None:
    await week().write(database)
    h = await stats.heatmap(database, SH, G1, WEEK)
    assert h.total == 12
    assert h.counts[0][10] == 6  # Monday 10:00
    assert h.counts[1][23] == 2  # Tuesday 23:30
    assert h.counts[2][0] == 1 and h.counts[2][8] == 1  # Wednesday 00:30, 08:00
    assert h.counts[6][20] == 2  # Sunday 20:15
    assert h.busiest(1) == [(0, 10, 6)]


async def test_action_rate_within_a_window(database: Database) -> None:
    await week().write(database)
    since = datetime(2026, 12, 9, 0, 0, tzinfo=SH)
    r = await stats.action_rate(database, G1, since, datetime(2026, 12, 10, tzinfo=SH), ["签到"])
    # Present at the start: old, quiet, ann, bea; ann and bea posted a message with 签到.
    assert (r.eligible, r.acted, r.rate) == (4, 2, 0.5)
    exact = await stats.action_rate(database, G1, since, datetime(2026, 12, 10, tzinfo=SH), ["签到"], match="exact")
    assert exact.acted == 1
    with pytest.raises(ValueError, match="keyword"):
        await stats.action_rate(database, G1, since, datetime(2026, 12, 10, tzinfo=SH), ["  "])


async def test_checkin_rate_from_records_or_messages(database: Database) -> None:
    await week().write(database)
    # The check-in plugin's table (present whenever its migration ran): a real check-in
    # counts, a make-up bought later does not.
    async with database.engine.begin() as conn:
        has_table = await conn.run_sync(lambda c: sa.inspect(c).has_table("checkin_records"))
    if has_table:
        t = sa.table(
            "checkin_records",
            *(sa.column(c) for c in ("group_id", "member_id", "day", "at", "name", "streak", "points", "makeup")),
        )
        at = datetime(2026, 12, 9, 8, tzinfo=SH)
        async with database.engine.begin() as conn:
            await conn.execute(
                sa.insert(t),
                [
                    {
                        "group_id": "g1",
                        "member_id": "ann",
                        "day": date(2026, 12, 9),
                        "at": at,
                        "name": "Ann",
                        "streak": 1,
                        "points": 5,
                        "makeup": False,
                    },
                    {
                        "group_id": "g1",
                        "member_id": "quiet",
                        "day": date(2026, 12, 10),
                        "at": at,
                        "name": "",
                        "streak": 1,
                        "points": 5,
                        "makeup": True,
                    },
                ],
            )
        r = await stats.checkin_rate(database, SH, G1, WEEK)
        assert r.source == "checkin_records"
        assert [(d.day.day, d.checked_in) for d in r.days if d.checked_in] == [(9, 1)]
        assert r.checked_in_once == 1 and r.members_end == 3 and r.members_in_period == 5
    async with without_checkin_table(database):
        r = await stats.checkin_rate(database, SH, G1, WEEK, fallback_keywords=["签到"])
    assert r.source == "messages"
    # On the 9th: old (removed at noon), quiet, ann and bea were in the group.
    assert [(d.day.day, d.checked_in, d.members) for d in r.days if d.checked_in] == [(9, 2, 4)]
    assert r.days[2].rate == pytest.approx(2 / 4)
    assert (r.checked_in_once, r.members_in_period, r.once_rate) == (2, 5, pytest.approx(2 / 5))


async def test_no_text_stored_means_not_available(database: Database) -> None:
    h = History(SH)
    h.join("g1", "ann", "2026-12-01 09:00").say("g1", "ann", "2026-12-09 08:00", "签到")
    await h.write(database)
    async with database.engine.begin() as conn:
        await conn.execute(sa.text("UPDATE event_log SET text = NULL"))
    r = await stats.action_rate(
        database, G1, datetime(2026, 12, 9, tzinfo=SH), datetime(2026, 12, 10, tzinfo=SH), ["签到"]
    )
    assert not r.available and r.rate is None
    assert "n/a" in r.table().rows[-1]
    async with without_checkin_table(database):
        c = await stats.checkin_rate(database, SH, G1, WEEK)
    assert c.source == "n/a" and c.avg_rate is None


async def test_empty_scope_gives_zeros_not_errors(database: Database) -> None:
    empty = Scope.one("nothing")
    g = await stats.growth(database, SH, empty, WEEK)
    assert g.members_after == 0 and all(d.members == 0 for d in g.days)
    a = await stats.activity(database, SH, empty, WEEK)
    assert a.messages == 0 and a.avg_active_ratio is None
    m = await stats.members(database, SH, empty, WEEK)
    assert m.members == 0 and m.top == [] and m.core == []
    h = await stats.heatmap(database, SH, Scope(), WEEK)
    assert h.total == 0 and h.busiest() == []
    s = await stats.summarize(database, SH, empty, WEEK, as_of=datetime(2026, 12, 14, 9, tzinfo=SH))
    text = stats.summary_text(s, "「空群」近7天")
    assert "成员 0 人" in text and "没有看到新成员入群" in text
