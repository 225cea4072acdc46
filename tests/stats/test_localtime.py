"""Local days in SQL: offsets per DST segment, computed once per report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from bot.stats.localtime import LocalTime, offset_segments
from bot.storage.db import Database


def test_segments_of_a_zone_without_dst() -> None:
    lo = datetime(2026, 1, 1, tzinfo=UTC)
    assert offset_segments(ZoneInfo("Asia/Shanghai"), lo, lo + timedelta(days=400)) == [(None, 480)]


def test_segments_find_the_transitions_to_the_second() -> None:
    segs = offset_segments(
        ZoneInfo("America/New_York"), datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 12, 31, tzinfo=UTC)
    )
    assert segs == [
        (None, -300),
        (datetime(2026, 3, 8, 7, 0, tzinfo=UTC), -240),
        (datetime(2026, 11, 1, 6, 0, tzinfo=UTC), -300),
    ]


async def test_sql_local_days_match_python(database: Database) -> None:
    tz = ZoneInfo("America/New_York")
    instants = [
        datetime(2026, 3, 8, 4, 59, tzinfo=UTC),
        datetime(2026, 3, 8, 5, 0, tzinfo=UTC),
        datetime(2026, 3, 9, 3, 59, tzinfo=UTC),
        datetime(2026, 3, 9, 4, 0, tzinfo=UTC),
        datetime(2026, 11, 1, 3, 59, tzinfo=UTC),
        datetime(2026, 11, 1, 4, 0, tzinfo=UTC),
        datetime(2026, 11, 2, 4, 59, tzinfo=UTC),
        datetime(2026, 11, 2, 5, 0, tzinfo=UTC),
    ]
    lt = LocalTime.build(database.dialect, tz, instants[0], instants[-1])
    async with database.engine.connect() as conn:
        for at in instants:
            col = sa.literal_column(lt.instant_literal(at))
            day, (weekday, hour) = lt.day(col), lt.weekday_hour(col)
            got = (await conn.execute(sa.select(day, weekday, hour))).one()
            local = at.astimezone(tz)
            assert (str(got[0])[:10], got[1], got[2]) == (
                local.date().isoformat(),
                (local.weekday() + 1) % 7,
                local.hour,
            ), at
