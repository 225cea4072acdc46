"""When a group talks: messages by local weekday and hour.

The daily rollup has no hours, so this one report reads the event log (by its
(group_id, at) index, one chunk of groups at a time) and aggregates in the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

import sqlalchemy as sa

from bot.stats.localtime import LocalTime
from bot.stats.scope import Period, Progress, ProgressFn, Scope, chunks, n_chunks
from bot.stats.table import Table
from bot.storage.db import Database
from bot.storage.models import EventLog, EventType, UTCDateTime

_LOG = EventLog.__table__
# Rows Monday first, as operators in China read a week.
WEEKDAYS = ("一", "二", "三", "四", "五", "六", "日")
WEEKDAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass
class Heatmap:
    scope: Scope
    period: Period
    counts: list[list[int]]  # [weekday Monday=0..Sunday=6][hour 0..23]

    @property
    def total(self) -> int:
        return sum(map(sum, self.counts))

    def busiest(self, n: int = 3) -> list[tuple[int, int, int]]:
        """[(weekday, hour, messages)], busiest first."""
        cells = [(self.counts[w][h], w, h) for w in range(7) for h in range(24) if self.counts[w][h]]
        cells.sort(key=lambda c: (-c[0], c[1], c[2]))
        return [(w, h, c) for c, w, h in cells[:n]]

    def as_json(self) -> dict[str, Any]:
        return {
            "report": "heatmap",
            "scope": self.scope.as_json(),
            "period": self.period.as_json(),
            "weekdays": list(WEEKDAYS_EN),
            "hours": list(range(24)),
            "messages": self.counts,
            "total": self.total,
        }

    def table(self) -> Table:
        t = Table(
            f"messages by hour × weekday — {self.scope.label}, {self.period.start}..{self.period.end}",
            ["weekday", *[f"{h:02d}" for h in range(24)], "total"],
        )
        for w in range(7):
            t.rows.append([WEEKDAYS_EN[w], *self.counts[w], sum(self.counts[w])])
        top = ", ".join(f"{WEEKDAYS_EN[w]} {h:02d}:00 ({c})" for w, h, c in self.busiest())
        t.notes.append(f"{self.total} messages; busiest: {top or '-'}")
        return t


async def heatmap(
    db: Database, tz: tzinfo, scope: Scope, period: Period, *, progress: ProgressFn | None = None
) -> Heatmap:
    start, end = period.utc_bounds(tz)
    lt = LocalTime.build(db.dialect, tz, start, end)
    c = _LOG.c
    weekday, hour = lt.weekday_hour(c.at)
    counts = [[0] * 24 for _ in range(7)]
    ids = await scope.group_ids(db)
    steps = Progress(n_chunks(ids), progress)
    for chunk in chunks(ids):
        where = [
            c.group_id.in_(chunk),
            c.at >= sa.literal(start, UTCDateTime()),
            c.at < sa.literal(end, UTCDateTime()),
            c.type == EventType.MESSAGE,
        ]
        if scope.exclude_members:
            where.append(c.member_id.not_in(scope.exclude_members))
        stmt = (
            sa.select(weekday.label("w"), hour.label("h"), sa.func.count())
            .where(*where)
            .group_by(sa.literal_column("w"), sa.literal_column("h"))
        )
        async with db.engine.connect() as conn:
            for w, h, n in await conn.execute(stmt):
                counts[(int(w) + 6) % 7][int(h)] += int(n)  # SQL weekdays count from Sunday = 0
        steps.step()
    return Heatmap(scope, period, counts)
